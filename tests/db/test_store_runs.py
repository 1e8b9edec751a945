"""Conformance: runs (insert, finalise, read, history) on every store."""

from __future__ import annotations

import pytest
from storekit import finished, make_run

from pilothouse.db import DuplicateRunError, RunNotFoundError, SessionStore
from pilothouse.run.output import RunOutput, RunStatus


async def test_a_run_round_trips_as_an_equal_dict(store: SessionStore) -> None:
    run = make_run("s-1", "r-1", content={"answer": 42, "text": "héllo ✓"})
    await store.insert_run(run)

    stored = await store.get_run("r-1")

    assert stored == run
    rebuilt = RunOutput.from_dict(stored)
    assert rebuilt.run_id == "r-1"
    assert rebuilt.status is RunStatus.running
    assert rebuilt.content == {"answer": 42, "text": "héllo ✓"}


async def test_get_run_of_unknown_id_is_none(store: SessionStore) -> None:
    assert await store.get_run("missing") is None


async def test_insert_run_creates_the_session_and_counts_runs(store: SessionStore) -> None:
    await store.insert_run(make_run("s-1", user_id="u-7", agent_id="a-7"))
    await store.insert_run(make_run("s-1"))

    session = await store.get_session("s-1")

    assert session is not None
    assert session.run_count == 2
    assert (session.user_id, session.agent_id) == ("u-7", "a-7")


async def test_update_run_finalises_only_that_run(store: SessionStore) -> None:
    first = make_run("s-1", "r-1")
    second = make_run("s-1", "r-2")
    await store.insert_run(first)
    await store.insert_run(second)

    await store.update_run(finished(second, "done"))

    assert await store.get_run("r-1") == first
    assert await store.get_run("r-2") == finished(second, "done")
    # Finalising is not a new run.
    session = await store.get_session("s-1")
    assert session is not None and session.run_count == 2


async def test_update_of_a_run_never_inserted_raises(store: SessionStore) -> None:
    with pytest.raises(RunNotFoundError):
        await store.update_run(make_run("s-1", "ghost"))
    assert await store.get_run("ghost") is None


async def test_update_cannot_move_a_run_to_another_session(store: SessionStore) -> None:
    run = make_run("s-1", "r-1")
    await store.insert_run(run)
    with pytest.raises(RunNotFoundError):
        await store.update_run({**run, "session_id": "s-2"})
    assert await store.get_run("r-1") == run


async def test_inserting_a_run_id_twice_raises_and_changes_nothing(store: SessionStore) -> None:
    run = make_run("s-1", "r-1", content="original")
    await store.insert_run(run)

    with pytest.raises(DuplicateRunError):
        await store.insert_run({**run, "content": "impostor"})

    assert await store.get_run("r-1") == run
    session = await store.get_session("s-1")
    assert session is not None and session.run_count == 1


@pytest.mark.parametrize("missing", ["run_id", "session_id"])
async def test_a_run_needs_run_and_session_ids(store: SessionStore, missing: str) -> None:
    run = make_run("s-1")
    run[missing] = None
    with pytest.raises(ValueError, match=missing):
        await store.insert_run(run)


async def test_get_last_runs_is_the_tail_in_order(store: SessionStore) -> None:
    ids = [f"r-{i:02d}" for i in range(10)]
    for run_id in ids:
        await store.insert_run(make_run("s-1", run_id))
    await store.insert_run(make_run("s-other", "elsewhere"))

    last = await store.get_last_runs("s-1", limit=3)

    assert [r["run_id"] for r in last] == ids[-3:]
    everything = await store.get_last_runs("s-1", limit=50)
    assert [r["run_id"] for r in everything] == ids
    assert await store.get_last_runs("s-1", limit=0) == []
    assert await store.get_last_runs("no-such-session", limit=3) == []


async def test_get_last_runs_orders_by_insertion_not_timestamp(store: SessionStore) -> None:
    # Clocks of different machines disagree; insertion order is what a session saw.
    await store.insert_run(make_run("s-1", "later-clock", created_at=2_000_000_000))
    await store.insert_run(make_run("s-1", "earlier-clock", created_at=1_000_000_000))
    last = await store.get_last_runs("s-1", limit=2)
    assert [r["run_id"] for r in last] == ["later-clock", "earlier-clock"]


async def test_get_last_runs_filters_by_status(store: SessionStore) -> None:
    statuses = [
        RunStatus.completed,
        RunStatus.error,
        RunStatus.completed,
        RunStatus.paused,
        RunStatus.completed,
        RunStatus.cancelled,
        RunStatus.running,
    ]
    for i, status in enumerate(statuses):
        await store.insert_run(make_run("s-1", f"r-{i}", status=status))

    completed = await store.get_last_runs("s-1", limit=2, statuses=[RunStatus.completed])
    assert [r["run_id"] for r in completed] == ["r-2", "r-4"]
    as_names = await store.get_last_runs("s-1", limit=10, statuses=["completed", "PAUSED"])
    assert [r["run_id"] for r in as_names] == ["r-0", "r-2", "r-3", "r-4"]
    one_string = await store.get_last_runs("s-1", limit=10, statuses="ERROR")
    assert [r["run_id"] for r in one_string] == ["r-1"]
    assert await store.get_last_runs("s-1", limit=10, statuses=[]) == []


async def test_status_filter_sees_the_final_status(store: SessionStore) -> None:
    run = make_run("s-1", "r-1")
    await store.insert_run(run)
    assert await store.get_last_runs("s-1", limit=3, statuses=[RunStatus.completed]) == []
    await store.update_run(finished(run, "ok"))
    done = await store.get_last_runs("s-1", limit=3, statuses=[RunStatus.completed])
    assert [r["content"] for r in done] == ["ok"]


async def test_list_runs_in_order_with_paging(store: SessionStore) -> None:
    ids = [f"r-{i}" for i in range(6)]
    for run_id in ids:
        await store.insert_run(make_run("s-1", run_id))

    assert [r["run_id"] for r in await store.list_runs("s-1")] == ids
    assert [r["run_id"] for r in await store.list_runs("s-1", limit=2)] == ids[:2]
    assert [r["run_id"] for r in await store.list_runs("s-1", limit=2, offset=3)] == ids[3:5]
    assert await store.list_runs("nobody") == []


async def test_runs_must_be_json_serialisable(store: SessionStore) -> None:
    run = make_run("s-1", "r-1")
    run["metadata"] = {"handle": object()}
    with pytest.raises(TypeError, match="JSON"):
        await store.insert_run(run)
    assert await store.get_run("r-1") is None
