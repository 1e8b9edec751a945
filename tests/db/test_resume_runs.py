"""Failed and interrupted runs resume from their last checkpoint in another process, without
repeating a finished tool call (SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import resuming_process
from storekit import PG_URL, new_id

from pilothouse import RunStatus
from pilothouse.run.session import INTERRUPTED, LEASE_TTL

HERE = Path(__file__).parent


def _target(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "runs.db")
    return f"{PG_URL}#{request.getfixturevalue('pg_schema')}"


def _command(kind: str, target: str, prefix: str, mode: str, log: Path, session: str) -> list[str]:
    return [
        sys.executable,
        str(HERE / "resuming_process.py"),
        kind,
        target,
        prefix,
        mode,
        str(log),
        session,
    ]


def _agent_here(kind: str, target: str, prefix: str, log: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(resuming_process, "MODE", "ok")
    monkeypatch.setattr(resuming_process, "LOG_PATH", str(log))
    return resuming_process.agent_for(resuming_process.open_store(kind, target, prefix))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_errored_run_is_continued_by_another_process(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, prefix, session = _target(kind, tmp_path, request), new_id("r") + "_", new_id("s")
    log = tmp_path / "steps.log"
    done = subprocess.run(
        _command(kind, target, prefix, "fail", log, session),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status, run_id = done.stdout.split()
    assert status == RunStatus.error.value
    assert log.read_text().split("\n")[:-1] == ["start 1", "end 1"]

    agent = _agent_here(kind, target, prefix, log, monkeypatch)
    resumed = agent.continue_run(run_id=run_id, session_id=session)
    assert resumed.status is RunStatus.completed
    assert resumed.content == "finished after step 2 done"
    assert log.read_text().split("\n")[:-1] == ["start 1", "end 1", "start 2", "end 2"]
    stored = agent.get_run_output(run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert [t.tool_args["n"] for t in stored.tools] == [1, 2]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_run_killed_mid_tool_is_detected_within_seconds_and_continued(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, prefix, session = _target(kind, tmp_path, request), new_id("r") + "_", new_id("s")
    log = tmp_path / "steps.log"
    process = subprocess.Popen(
        _command(kind, target, prefix, "hang", log, session),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "start 2" in log.read_text()):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the process never reached step 2"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    killed_at = time.monotonic()

    agent = _agent_here(kind, target, prefix, log, monkeypatch)
    last = agent.get_last_run_output(session)
    assert last is not None
    run_id = last.run_id
    while last is not None and last.status is RunStatus.running:
        assert time.monotonic() - killed_at < LEASE_TTL + 5, "not detected in time"
        time.sleep(0.2)
        last = agent.get_run_output(run_id)
    assert last is not None and last.status is RunStatus.error
    assert last.content == INTERRUPTED
    detected_after = time.monotonic() - killed_at
    assert detected_after < LEASE_TTL + 5
    assert [t.tool_args["n"] for t in last.tools] == [1, 2]  # the checkpoint has both calls

    resumed = agent.continue_run(run_id=run_id, session_id=session)
    assert resumed.status is RunStatus.completed
    assert resumed.content == "finished after step 2 done"
    # Step 1 finished before the crash and is not run again; step 2 was interrupted: it
    # runs again (at least once for an interrupted step).
    assert log.read_text().split("\n")[:-1] == ["start 1", "end 1", "start 2", "start 2", "end 2"]
