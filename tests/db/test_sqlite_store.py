"""SqliteDb beyond the shared contract: the file, its settings, several processes, failures."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from storekit import make_run

from pilothouse.db import SqliteDb, StoreError

WRITER = Path(__file__).with_name("sqlite_writer.py")


def _query(db_file: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_file) as conn:
        return conn.execute(sql).fetchall()


async def test_first_use_creates_directory_file_and_prefixed_tables(tmp_path: Path) -> None:
    db_file = tmp_path / "new" / "dir" / "agents.db"
    async with SqliteDb(db_file, table_prefix="ph_") as store:
        assert not db_file.exists()  # constructing touches nothing
        await store.upsert_session("s-1")
    assert db_file.exists()
    tables = {
        name for (name,) in _query(db_file, "SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert {"ph_sessions", "ph_runs", "ph_memories", "ph_session_leases", "ph_meta"} <= tables
    assert _query(db_file, "SELECT value FROM ph_meta WHERE key = 'schema_version'") == [("1",)]
    assert _query(db_file, "PRAGMA journal_mode") == [("wal",)]


async def test_history_read_is_a_range_of_the_session_index(tmp_path: Path) -> None:
    db_file = tmp_path / "p.db"
    async with SqliteDb(db_file) as store:
        await store.insert_run(make_run("s-1"))
    plan = _query(
        db_file,
        "EXPLAIN QUERY PLAN SELECT data FROM pilothouse_runs WHERE session_id = 's-1' "
        "AND run_no > (SELECT run_count FROM pilothouse_sessions WHERE session_id = 's-1') - 3 "
        "AND status IN ('COMPLETED') ORDER BY run_no DESC LIMIT 3",
    )
    details = " ".join(str(row[-1]) for row in plan)
    assert "pilothouse_runs_session_run_no (session_id=? AND run_no>?)" in details
    assert "TEMP B-TREE" not in details  # no sort: the index delivers the order


async def test_two_stores_with_different_prefixes_share_a_file(tmp_path: Path) -> None:
    db_file = tmp_path / "p.db"
    async with SqliteDb(db_file, table_prefix="a_") as a, SqliteDb(db_file, table_prefix="b_") as b:
        await a.insert_run(make_run("s-1", "r-a"))
        assert await b.get_run("r-a") is None
        assert await b.list_runs("s-1") == []


async def test_two_processes_write_the_same_file(tmp_path: Path) -> None:
    db_file = tmp_path / "shared.db"
    per_process = 150
    async with SqliteDb(db_file) as store:
        await store.upsert_session("s-1")  # create the file and tables first
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(WRITER),
                str(db_file),
                "s-1",
                tag,
                str(per_process),
                stderr=asyncio.subprocess.PIPE,
            )
            for tag in ("proc-a", "proc-b")
        ]

        # This process writes at the same time.
        async def one(i: int) -> None:
            run = make_run("s-1", f"parent-{i}")
            await store.insert_run(run)
            await store.update_run({**run, "status": "COMPLETED"})

        for start in range(0, per_process, 10):
            await asyncio.gather(*(one(i) for i in range(start, start + 10)))
        for child in children:
            _, err = await asyncio.wait_for(child.communicate(), timeout=120)
            assert child.returncode == 0, err.decode()

        runs = await store.list_runs("s-1")
        assert len(runs) == 3 * per_process
        assert {r["run_id"] for r in runs} == {
            f"{tag}-{i}" for tag in ("proc-a", "proc-b", "parent") for i in range(per_process)
        }
        assert all(r["status"] == "COMPLETED" for r in runs)
        session = await store.get_session("s-1")
        assert session is not None and session.run_count == 3 * per_process


async def test_a_write_lock_held_too_long_is_a_store_error_not_a_hang(tmp_path: Path) -> None:
    db_file = tmp_path / "locked.db"
    async with SqliteDb(db_file, busy_timeout=0.2) as store:
        await store.upsert_session("s-1")
        blocker = sqlite3.connect(db_file, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match="locked"):
                await store.insert_run(make_run("s-1", "r-1"))
            assert time.monotonic() - started < 5
            # Readers are not blocked by a writer in WAL mode.
            assert await store.get_session("s-1") is not None
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await store.insert_run(make_run("s-1", "r-1"))
        assert (await store.get_run("r-1") or {}).get("run_id") == "r-1"


async def test_database_gone_is_a_store_error_and_coming_back_heals(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db_file = home / "p.db"
    async with SqliteDb(db_file) as store:
        await store.insert_run(make_run("s-1", "r-1"))
        away = tmp_path / "away"
        home.rename(away)  # the volume went away under the running store
        # Connections opened before keep their file handles (SQLite writes through them even
        # to a moved file); the loss shows when the store next opens connections.
        await store.close()
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match=r"SqliteDb\(.*unable to open database file"):
                await store.insert_run(make_run("s-1", "r-2"))
            with pytest.raises(StoreError, match="unable to open"):
                await store.get_run("r-1")
            assert time.monotonic() - started < 10
        finally:
            away.rename(home)
        await store.insert_run(make_run("s-1", "r-3"))
        assert [r["run_id"] for r in await store.list_runs("s-1")] == ["r-1", "r-3"]


async def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    db_file = tmp_path / "p.db"
    async with SqliteDb(db_file) as store:
        await store.upsert_session("s-1")
    with sqlite3.connect(db_file) as conn:
        conn.execute("UPDATE pilothouse_meta SET value = '99' WHERE key = 'schema_version'")
    async with SqliteDb(db_file) as store:
        with pytest.raises(StoreError, match="schema version 99"):
            await store.get_session("s-1")


def test_a_file_path_is_required() -> None:
    with pytest.raises(ValueError, match="InMemoryDb"):
        SqliteDb(":memory:")
    with pytest.raises(ValueError, match="synchronous"):
        SqliteDb("x.db", synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="table_prefix"):
        SqliteDb("x.db", table_prefix="bad-prefix")
