"""Probes of what users do to agents with stores: odd ids, two processes on one session,
broken, read-only and full SQLite files (docs/reliability.md lists them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import session_runner
from storekit import IN_CI, PG_URL, new_id

from pilothouse import Agent, RunStatus
from pilothouse.db import SqliteDb
from pilothouse.models.test import TestModel

HERE = Path(__file__).parent


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_200_runs_from_two_processes_on_one_session_lose_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        target = str(tmp_path / "shared.db")
    else:
        target = f"{PG_URL}#{request.getfixturevalue('pg_schema')}"
    prefix, session = new_id("p") + "_", new_id("s")
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "session_runner.py"),
                kind,
                target,
                prefix,
                session,
                tag,
                "100",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
    agent = session_runner.agent_for(session_runner.open_store(kind, target, prefix))
    state = agent.get_session_state(session)
    assert state["count"] == 200
    assert sorted(state["tags"]) == sorted(f"{t}-{i}" for t in "ab" for i in range(100))
    record = agent.get_session(session)
    assert record is not None and record.run_count == 200
    assert len(agent.get_chat_history(session)) == 400


@pytest.mark.parametrize(
    "odd",
    ["x'; DROP TABLE pilothouse_runs; --", 'a"b', "100%_like", "../../etc/passwd", "日本 語"],
)
def test_ids_are_data_never_sql(odd: str, tmp_path: Path) -> None:
    store = SqliteDb(tmp_path / "ids.db")
    agent = Agent(model=TestModel(text="ok"), db=store, add_history_to_context=True)
    first = agent.run("hello", session_id=odd, user_id=odd)
    second = agent.run("again", session_id=odd, user_id=odd)
    assert first.status is RunStatus.completed and second.status is RunStatus.completed
    assert [m.content for m in agent.get_chat_history(odd)] == ["hello", "ok", "again", "ok"]
    assert [s.session_id for s in agent.get_sessions(odd)] == [odd]
    other = agent.run("third", session_id="plain")
    assert other.status is RunStatus.completed  # the tables are all still there


def test_a_corrupted_sqlite_file_fails_the_run_with_a_clear_error(tmp_path: Path) -> None:
    db_file = tmp_path / "broken.db"
    db_file.write_bytes(b"this is not a database, " * 200)
    agent = Agent(model=TestModel(text="ok"), db=SqliteDb(db_file))
    out = agent.run("hello", session_id="s")
    assert out.status is RunStatus.error
    assert "session store failed" in out.content and "not a database" in out.content


@pytest.fixture
def read_only_file(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file with the immutable attribute (not even root may write to it)."""
    db_file = tmp_path / "ro.db"
    agent = Agent(model=TestModel(text="ok"), db=SqliteDb(db_file))
    assert agent.run("before", session_id="s").status is RunStatus.completed
    for extra in ("-wal", "-shm"):
        Path(f"{db_file}{extra}").unlink(missing_ok=True)
    if shutil.which("chattr") is None or os.geteuid() != 0:
        if IN_CI:
            pytest.fail("chattr as root is needed to make a read-only file")
        pytest.skip("chattr as root is needed to make a read-only file")
    subprocess.run(["chattr", "+i", str(db_file), str(tmp_path)], check=True)
    yield db_file
    subprocess.run(["chattr", "-i", str(db_file), str(tmp_path)], check=True)


def test_a_read_only_sqlite_file_fails_the_run_with_a_clear_error(read_only_file: Path) -> None:
    agent = Agent(model=TestModel(text="ok"), db=SqliteDb(read_only_file))
    out = agent.run("hello", session_id="s")
    assert out.status is RunStatus.error
    assert "session store failed" in out.content


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB file system, to fill up."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a small file system: {done.stderr}")
        pytest.skip(f"cannot mount a small file system: {done.stderr}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_run_and_the_store_recovers(tiny_disk: Path) -> None:
    store = SqliteDb(tiny_disk / "agents.db")
    agent = Agent(model=TestModel(text="ok"), db=store)
    assert agent.run("small", session_id="s").status is RunStatus.completed
    filler = tiny_disk / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass  # full
    out = agent.run("x" * 200_000, session_id="s")
    assert out.status is RunStatus.error
    assert "session store failed" in out.content
    filler.unlink()
    assert agent.run("room again", session_id="s").status is RunStatus.completed
    from pilothouse.run.bridge import run_sync

    run_sync(store.close())
