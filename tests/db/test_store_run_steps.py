"""Conformance: a run's two steps, `start_run` and `finish_run`, and `SessionIO` on top of
them (including resuming a stored run), on every store."""

from __future__ import annotations

import asyncio

import pytest
from storekit import StoreFactory, finished, make_run

from pilothouse.db import DuplicateRunError, RunNotFoundError, SessionStore
from pilothouse.run.output import RunOutput, RunStatus
from pilothouse.run.session import SessionIO


async def test_start_run_takes_the_lease_creates_the_session_and_stores_the_run(
    store: SessionStore,
) -> None:
    run = make_run("s-1", "r-1", user_id="u-1", agent_id="a-1")
    started = await store.start_run(run, lease_owner="alice", lease_ttl=30)
    assert started is not None
    assert (started.session_state, started.state_version) == ({}, 0)
    assert await store.get_run("r-1") == run
    session = await store.get_session("s-1")
    assert session is not None
    assert (session.user_id, session.agent_id, session.run_count) == ("u-1", "a-1", 1)
    # The lease is alice's now.
    assert not await store.acquire_session_lease("s-1", "bob", 30)
    assert await store.release_session_lease("s-1", "alice")


async def test_start_run_reads_the_stored_state_and_fills_missing_ids(store: SessionStore) -> None:
    await store.upsert_session("s-1")
    assert await store.set_session_state("s-1", {"k": [1, 2]}, expected_version=0) == 1
    started = await store.start_run(
        make_run("s-1", "r-1", user_id="u-9", agent_id=None), lease_owner="alice", lease_ttl=30
    )
    assert started is not None
    assert (started.session_state, started.state_version) == ({"k": [1, 2]}, 1)
    session = await store.get_session("s-1")
    assert session is not None and (session.user_id, session.agent_id) == ("u-9", None)


async def test_start_run_under_another_owners_lease_changes_nothing(store: SessionStore) -> None:
    assert await store.acquire_session_lease("s-1", "bob", 30)
    assert await store.start_run(make_run("s-1", "r-1"), lease_owner="alice", lease_ttl=30) is None
    assert await store.get_run("r-1") is None
    session = await store.get_session("s-1")
    assert session is None or session.run_count == 0
    assert await store.release_session_lease("s-1", "bob")
    assert await store.start_run(make_run("s-1", "r-1"), lease_owner="alice", lease_ttl=30)


async def test_a_duplicate_run_leaves_the_lease_free_and_the_count_alone(
    store: SessionStore,
) -> None:
    run = make_run("s-1", "r-1")
    await store.insert_run(run)
    with pytest.raises(DuplicateRunError):
        await store.start_run(make_run("s-1", "r-1"), lease_owner="alice", lease_ttl=30)
    assert await store.acquire_session_lease("s-1", "bob", 30)
    session = await store.get_session("s-1")
    assert session is not None and session.run_count == 1
    assert await store.get_run("r-1") == run


async def test_resume_reads_the_state_without_storing_the_run_again(store: SessionStore) -> None:
    paused = make_run("s-1", "r-1", status=RunStatus.paused)
    await store.insert_run(paused)
    await store.set_session_state("s-1", {"step": 1}, expected_version=0)
    started = await store.start_run(paused, lease_owner="alice", lease_ttl=30, resume=True)
    assert started is not None and (started.session_state, started.state_version) == (
        {"step": 1},
        1,
    )
    session = await store.get_session("s-1")
    assert session is not None and session.run_count == 1
    assert [r["run_id"] for r in await store.list_runs("s-1")] == ["r-1"]
    assert not await store.acquire_session_lease("s-1", "bob", 30)


async def test_resuming_a_run_that_is_not_stored_is_refused(store: SessionStore) -> None:
    await store.insert_run(make_run("s-2", "r-elsewhere"))
    for run in (make_run("s-1", "r-missing"), make_run("s-1", "r-elsewhere")):
        with pytest.raises(RunNotFoundError):
            await store.start_run(run, lease_owner="alice", lease_ttl=30, resume=True)
    assert await store.acquire_session_lease("s-1", "bob", 30)


async def test_finish_run_stores_run_and_state_and_releases_the_lease(store: SessionStore) -> None:
    run = make_run("s-1", "r-1")
    started = await store.start_run(run, lease_owner="alice", lease_ttl=30)
    assert started is not None
    done = finished(run, "answer")
    assert await store.finish_run(
        done, lease_owner="alice", state={"n": 1}, expected_version=started.state_version
    )
    assert await store.get_run("r-1") == done
    assert await store.get_session_state("s-1") == ({"n": 1}, 1)
    assert await store.acquire_session_lease("s-1", "bob", 30)


async def test_finish_run_without_state_leaves_the_state_alone(store: SessionStore) -> None:
    run = make_run("s-1", "r-1")
    assert await store.start_run(run, lease_owner="alice", lease_ttl=30)
    await store.set_session_state("s-1", {"kept": True}, expected_version=0)
    assert await store.finish_run(finished(run, "x"), lease_owner="alice")
    assert await store.get_session_state("s-1") == ({"kept": True}, 1)
    assert await store.acquire_session_lease("s-1", "bob", 30)


async def test_a_lost_compare_and_set_keeps_the_run_and_the_lease(store: SessionStore) -> None:
    run = make_run("s-1", "r-1")
    started = await store.start_run(run, lease_owner="alice", lease_ttl=30)
    assert started is not None
    # Someone writes the state without the lease in between.
    assert await store.set_session_state("s-1", {"other": 1}, expected_version=0) == 1
    done = finished(run, "answer")
    written = await store.finish_run(
        done, lease_owner="alice", state={"mine": 1}, expected_version=started.state_version
    )
    assert written is False
    assert await store.get_run("r-1") == done
    assert await store.get_session_state("s-1") == ({"other": 1}, 1)
    assert not await store.acquire_session_lease("s-1", "bob", 30)  # still alice's


async def test_finishing_a_run_never_started_changes_nothing(store: SessionStore) -> None:
    assert await store.acquire_session_lease("s-1", "alice", 30)
    with pytest.raises(RunNotFoundError):
        await store.finish_run(
            finished(make_run("s-1", "r-x"), "x"), lease_owner="alice", state={"n": 1}
        )
    assert await store.get_session_state("s-1") == ({}, 0)
    assert not await store.acquire_session_lease("s-1", "bob", 30)


async def test_run_steps_refuse_values_json_cannot_hold(store: SessionStore) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await store.start_run(
            {**make_run("s-1", "r-1"), "metadata": {"x": object()}},
            lease_owner="alice",
            lease_ttl=30,
        )
    run = make_run("s-1", "r-2")
    assert await store.start_run(run, lease_owner="alice", lease_ttl=30)
    with pytest.raises(ValueError, match="JSON"):
        await store.finish_run(run, lease_owner="alice", state={"x": float("nan")})


# --- SessionIO, as the run loop drives it ---------------------------------------------------


def _output(session_id: str, run_id: str | None = None) -> RunOutput:
    out = RunOutput.from_dict(make_run(session_id, run_id))
    out.status = RunStatus.running
    return out


async def _one_run(store: SessionStore, session_id: str, key: str) -> RunOutput:
    io = SessionIO(store)
    out = _output(session_id)
    state = await io.begin(out, default_state={"n": 0}, run_state=None)
    await asyncio.sleep(0)  # let other runs try to interleave
    state[key] = state.get(key, 0) + 1
    out.session_state = state
    out.status = RunStatus.completed
    await io.finish(out)
    await io.release()
    assert io.finished
    return out


async def test_session_io_runs_on_one_session_take_turns_and_lose_nothing(
    store: SessionStore,
) -> None:
    outs = await asyncio.gather(*(_one_run(store, "s-1", "n") for _ in range(100)))
    state, version = await store.get_session_state("s-1")
    assert state == {"n": 100}
    assert version == 100
    runs = await store.list_runs("s-1")
    assert {r["run_id"] for r in runs} == {o.run_id for o in outs}
    assert all(r["status"] == RunStatus.completed.value for r in runs)


async def test_session_io_resumes_a_paused_run_from_another_store_object(
    store: SessionStore, store_factory: StoreFactory
) -> None:
    # The first part of the run, paused.
    first = SessionIO(store)
    out = _output("s-1", "r-paused")
    state = await first.begin(out, default_state=None, run_state={"asked": 1})
    out.session_state = state
    out.status = RunStatus.paused
    await first.finish(out)
    assert await store.get_session_state("s-1") == ({"asked": 1}, 1)

    # Continued later, perhaps by another process: the row is not stored a second time.
    other = store_factory()
    try:
        resumed = SessionIO(other)
        again = RunOutput.from_dict(await other.get_run("r-paused") or {})
        state = await resumed.begin(again, default_state={"d": 0}, run_state=None, resume=True)
        assert state == {"d": 0, "asked": 1}
        # It holds the session while it runs.
        assert not await other.acquire_session_lease("s-1", "intruder", 30)
        state["answered"] = True
        again.session_state = state
        again.status = RunStatus.completed
        again.content = "done"
        await resumed.finish(again)
    finally:
        if other is not store:
            await other.close()

    runs = await store.list_runs("s-1")
    assert [(r["run_id"], r["status"], r["content"]) for r in runs] == [
        ("r-paused", RunStatus.completed.value, "done")
    ]
    session = await store.get_session("s-1")
    assert session is not None and session.run_count == 1
    assert await store.get_session_state("s-1") == ({"asked": 1, "d": 0, "answered": True}, 2)
    assert await store.acquire_session_lease("s-1", "after", 30)


async def test_session_io_resuming_an_unknown_run_holds_nothing(store: SessionStore) -> None:
    io = SessionIO(store)
    with pytest.raises(RunNotFoundError):
        await io.begin(_output("s-1", "r-nope"), default_state=None, run_state=None, resume=True)
    await io.finish(_output("s-1", "r-nope"))  # as the loop does after a failed start
    assert await store.get_run("r-nope") is None
    assert await store.acquire_session_lease("s-1", "after", 30)


async def test_session_io_merges_when_the_state_changed_under_the_run(
    store: SessionStore,
) -> None:
    io = SessionIO(store)
    out = _output("s-1")
    state = await io.begin(out, default_state=None, run_state=None)
    # A write that does not go through the lease.
    await store.update_session_state("s-1", lambda s: {**s, "other": "x"})
    state["mine"] = 1
    out.session_state = state
    out.status = RunStatus.completed
    await io.finish(out)
    assert (await store.get_session_state("s-1"))[0] == {"other": "x", "mine": 1}
    assert await store.acquire_session_lease("s-1", "after", 30)
