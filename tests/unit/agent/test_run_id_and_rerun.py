"""`run(..., run_id=...)` and `rerun=True`: a run executed again after its process died."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse import Agent, RunOutput, RunStatus
from pilothouse.db import InMemoryDb, SessionStore, SqliteDb
from pilothouse.models.test import FunctionModel
from pilothouse.run.bridge import run_sync


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield InMemoryDb()
        return
    store = SqliteDb(db_file=str(tmp_path / "agents.db"))
    yield store
    run_sync(store.close())


def answer(messages: object, tools: object) -> str:
    return "done"


def _interrupted(db: SessionStore, agent: Agent, run_id: str, session_id: str) -> None:
    """Store what a process that died mid-run leaves: a RUNNING row, and the session lease
    still held (for 30 s) by the owner a rerun derives from the run id."""
    run = RunOutput(
        run_id=run_id,
        agent_id=agent.id,
        session_id=session_id,
        status=RunStatus.running,
        content="half-way",
    )
    started = run_sync(
        db.start_run(run.to_dict(compact=True), lease_owner=f"run:{run_id}", lease_ttl=30.0)
    )
    assert started is not None


def test_run_id_names_the_run(db: SessionStore) -> None:
    agent = Agent(model=FunctionModel(answer), db=db)
    out = agent.run("hi", run_id="my-run-1", session_id="s")
    assert out.run_id == "my-run-1"
    assert out.status is RunStatus.completed
    stored = agent.get_run_output("my-run-1")
    assert stored is not None and stored.content == "done"


def test_run_id_must_be_a_non_empty_string() -> None:
    agent = Agent(model=FunctionModel(answer))
    with pytest.raises(TypeError, match="run_id"):
        agent.run("hi", run_id="")
    with pytest.raises(TypeError, match="run_id"):
        agent.run("hi", run_id=42)
    with pytest.raises(ValueError, match="rerun=True needs the run_id"):
        agent.run("hi", rerun=True)
    with pytest.raises(TypeError, match="rerun"):
        agent.run("hi", run_id="x", rerun="yes")


def test_rerun_takes_over_the_row_and_lease_of_a_dead_execution(db: SessionStore) -> None:
    agent = Agent(model=FunctionModel(answer), db=db)
    _interrupted(db, agent, "r1", "s1")
    started = time.monotonic()
    out = agent.run("hi", run_id="r1", session_id="s1", rerun=True)
    # The lease of the dead execution was taken over, not waited out (it had 30 s left).
    assert time.monotonic() - started < 10
    assert out.status is RunStatus.completed
    runs = run_sync(db.list_runs("s1"))
    assert [(r["run_id"], r["status"], r["content"]) for r in runs] == [("r1", "COMPLETED", "done")]
    # The lease was given back: another run of the session starts at once.
    assert agent.run("again", session_id="s1").status is RunStatus.completed


def test_rerun_of_a_run_never_stored_stores_it(db: SessionStore) -> None:
    agent = Agent(model=FunctionModel(answer), db=db)
    out = agent.run("hi", run_id="fresh", session_id="s2", rerun=True)
    assert out.status is RunStatus.completed
    assert [r["status"] for r in run_sync(db.list_runs("s2"))] == ["COMPLETED"]


def test_reusing_a_stored_run_id_without_rerun_fails_and_changes_nothing(
    db: SessionStore,
) -> None:
    agent = Agent(model=FunctionModel(answer), db=db)
    agent.run("hi", run_id="taken", session_id="s3")
    out = agent.run("hi again", run_id="taken", session_id="s3")
    assert out.status is RunStatus.error
    assert "already stored" in str(out.content)
    runs = run_sync(db.list_runs("s3"))
    assert [(r["status"], r["content"]) for r in runs] == [("COMPLETED", "done")]
