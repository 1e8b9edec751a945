"""Durable runs on DBOS across real processes: a run killed mid-tool resumes on restart, runs
on a queue are executed by other workers, a paused run waits durably for its answers.

Each test starts `durable_process.py` processes (a DBOS application) against a SQLite system
database or PostgreSQL at 127.0.0.1:5432 (a database of its own, dropped afterwards).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverkit import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HERE = Path(__file__).parent
SCRIPT = HERE / "durable_process.py"
PG_SERVER = os.environ.get("PILOTHOUSE_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own, dropped afterwards; yields its URL."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a test dependency
        unavailable(f"psycopg is not installed: {exc}")
    name = f"pilothouse_durable_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_SERVER} is not reachable: {str(exc).strip()}")
    yield f"{PG_SERVER}/{name}"
    with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Processes:
    """The `durable_process.py` processes of one test; all are stopped at the end."""

    def __init__(self, system_db: str, agent_db: str, workdir: Path) -> None:
        self.base = [sys.executable, str(SCRIPT), "", system_db, agent_db, str(workdir)]
        self.workdir = workdir
        self.started: list[subprocess.Popen[str]] = []
        self.logs: list[Any] = []

    def start(self, role: str, *args: str) -> subprocess.Popen[str]:
        command = [*self.base[:2], role, *self.base[3:], *args]
        log = open(self.workdir / f"{role}-{len(self.started)}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        self.started.append(process)
        return process

    def result(self, process: subprocess.Popen[str], timeout: float = 60) -> Any:
        out, _ = process.communicate(timeout=timeout)
        for line in out.splitlines():
            if line.startswith("RESULT "):
                return json.loads(line.removeprefix("RESULT "))
        logs = "\n".join(p.read_text()[-3000:] for p in sorted(self.workdir.glob("*.log")))
        raise AssertionError(f"no result (exit {process.returncode}):\n{out}\n{logs}")

    def wait_for_line(self, process: subprocess.Popen[str], text: str, timeout: float) -> None:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if text in line:
                return
            if not line and process.poll() is not None:
                break
        raise AssertionError(f"process never printed {text!r}")

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
        for log in self.logs:
            log.close()


@pytest.fixture
def processes_for(tmp_path: Path) -> Iterator[Any]:
    made: list[Processes] = []

    def make(system_db: str, agent_db: str) -> Processes:
        made.append(Processes(system_db, agent_db, tmp_path))
        return made[-1]

    yield make
    for processes in made:
        processes.stop_all()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for_lines(path: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(lines(path)) < count:
        assert time.monotonic() < deadline, f"{path.name} never reached {count} lines"
        time.sleep(0.05)


def stored_run(agent_db: str, run_id: str) -> dict[str, Any] | None:
    """The run as the agent's store holds it, read by a fresh process-local store."""
    import asyncio

    from pilothouse.db import PostgresDb, SqliteDb

    async def read() -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        store: Any = (
            PostgresDb(agent_db, table_prefix="agents_")
            if agent_db.startswith("postgresql://")
            else SqliteDb(agent_db)
        )
        try:
            run = await store.get_run(run_id)
            runs = await store.list_runs(run["session_id"]) if run else []
            return run, runs
        finally:
            await store.close()

    run, runs = asyncio.run(read())
    if run is not None:
        run["_session_runs"] = [r["run_id"] for r in runs]
    return run


@pytest.mark.parametrize("system", ["sqlite", "postgres"])
def test_run_killed_mid_tool_resumes_on_restart_without_repeating_finished_steps(
    system: str, tmp_path: Path, request: pytest.FixtureRequest, processes_for: Any
) -> None:
    if system == "sqlite":
        system_db = f"sqlite:///{tmp_path / 'dbos.sqlite'}"
        agent_db = str(tmp_path / "agents.db")
    else:
        system_db = agent_db = request.getfixturevalue("pg_database")
    procs = processes_for(system_db, agent_db)
    run_id = f"run-{uuid.uuid4().hex[:8]}"

    first = procs.start("start", run_id)
    # Model request 1, the fast tool, model request 2, then the slow tool blocks: kill it there.
    wait_for_lines(tmp_path / "slow_calls", 1, timeout=60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert len(lines(tmp_path / "model_calls")) == 2
    interrupted = stored_run(agent_db, run_id)
    assert interrupted is not None and interrupted["status"] == "RUNNING"

    output = procs.result(procs.start("recover", run_id))

    assert output["status"] == "COMPLETED"
    assert output["content"] == "Done: answer=42"
    model_calls = lines(tmp_path / "model_calls")
    # The two requests that had finished were not made again: only the last one is new.
    assert len(model_calls) == 3, model_calls
    assert model_calls[2].endswith("after ['remember', 'slow_lookup']")
    assert model_calls[0].split()[0] == model_calls[1].split()[0] != model_calls[2].split()[0]
    # The finished tool call was not run again; the interrupted one was (at least once).
    assert len(lines(tmp_path / "remember_calls")) == 1
    assert len(lines(tmp_path / "slow_calls")) == 2
    # The replayed tool's change to the session state was not lost.
    assert output["session_state"] == {"fact": "blue"}
    assert output["tools"] == [["remember", "remembered blue"], ["slow_lookup", "answer=42"]]
    stored = stored_run(agent_db, run_id)
    assert stored is not None
    assert stored["status"] == "COMPLETED" and stored["content"] == "Done: answer=42"
    assert stored["_session_runs"] == [run_id]  # stored once


def test_two_workers_share_a_queue(pg_database: str, processes_for: Any) -> None:
    procs = processes_for(pg_database, pg_database)
    workers = [procs.start("worker", name) for name in ("a", "b")]
    for worker in workers:
        procs.wait_for_line(worker, "READY", timeout=60)

    outputs = procs.result(procs.start("client", "6"))

    assert [o["status"] for o in outputs] == ["COMPLETED"] * 6
    ran_in = {o["content"].removeprefix("ran in ") for o in outputs}
    # Every run was executed by a worker, not by the process that enqueued it, and with one
    # run at a time per worker, both took part.
    assert ran_in == {str(w.pid) for w in workers}


def test_paused_run_waits_durably_and_continues_with_answers_sent_elsewhere(
    pg_database: str, tmp_path: Path, processes_for: Any
) -> None:
    procs = processes_for(pg_database, pg_database)
    run_id = f"ask-{uuid.uuid4().hex[:8]}"
    worker = procs.start("worker", "a")
    procs.wait_for_line(worker, "READY", timeout=60)

    paused = procs.result(procs.start("ask", run_id))
    assert paused["status"] == "PAUSED"
    assert paused["tools"] == [["delete_logs", None]]

    # The worker whose workflow waits for the answers dies; the answers are sent meanwhile.
    worker.kill()
    worker.wait(10)
    answering = procs.start("answer", run_id)
    time.sleep(1.0)
    assert answering.poll() is None  # nobody can continue the run yet
    assert lines(tmp_path / "delete_calls") == []

    # The worker comes back (same executor): DBOS resumes the workflow, which finds the answers.
    restarted = procs.start("worker", "a")
    done = procs.result(answering)

    assert done["status"] == "COMPLETED"
    assert done["content"] == f"result: deleted logs in {restarted.pid}"
    assert lines(tmp_path / "delete_calls") == [str(restarted.pid)]
    stored = stored_run(pg_database, run_id)
    assert stored is not None and stored["status"] == "COMPLETED"
    assert stored["_session_runs"] == [run_id]
