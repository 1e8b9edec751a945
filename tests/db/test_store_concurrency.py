"""Conformance: many concurrent writers on one session lose nothing, on every store."""

from __future__ import annotations

import asyncio
from typing import Any

from storekit import StoreFactory, finished, make_run

from pilothouse.db import SessionStore
from pilothouse.run.output import RunStatus

WRITERS = 100


async def test_concurrent_runs_on_one_session_are_all_stored(store: SessionStore) -> None:
    await store.upsert_session("s-1", user_id="u-1")

    async def one_run(i: int) -> None:
        run = make_run("s-1", f"r-{i:03d}")
        await store.insert_run(run)
        await asyncio.sleep(0)  # let others interleave between start and end of the run
        await store.update_run(finished(run, f"answer {i}"))

    await asyncio.gather(*(one_run(i) for i in range(WRITERS)))

    runs = await store.list_runs("s-1")
    assert len(runs) == WRITERS
    assert {r["run_id"] for r in runs} == {f"r-{i:03d}" for i in range(WRITERS)}
    assert all(r["status"] == RunStatus.completed.value for r in runs)
    assert {r["content"] for r in runs} == {f"answer {i}" for i in range(WRITERS)}
    session = await store.get_session("s-1")
    assert session is not None and session.run_count == WRITERS
    # The bounded read agrees with the full listing on what is last.
    last = await store.get_last_runs("s-1", limit=5, statuses=[RunStatus.completed])
    assert [r["run_id"] for r in last] == [r["run_id"] for r in runs[-5:]]


async def test_concurrent_runs_on_many_sessions(store: SessionStore) -> None:
    async def one_run(i: int) -> None:
        await store.insert_run(make_run(f"s-{i % 10}", f"r-{i}"))

    await asyncio.gather(*(one_run(i) for i in range(WRITERS)))
    counts = [(await store.get_session(f"s-{k}")) for k in range(10)]
    assert [c.run_count if c else None for c in counts] == [WRITERS // 10] * 10


async def test_concurrent_state_updates_keep_every_increment(
    store: SessionStore, store_factory: StoreFactory
) -> None:
    # Half of the writers go through a second store object on the same database: they do not
    # share its in-process queue, so only the compare-and-set keeps them from losing updates.
    other = store_factory()

    def increment(state: dict[str, Any]) -> dict[str, Any]:
        return {**state, "n": state.get("n", 0) + 1}

    try:
        results = await asyncio.gather(
            *(
                (store if i % 2 else other).update_session_state("s-1", increment)
                for i in range(WRITERS)
            )
        )
    finally:
        if other is not store:
            await other.close()

    assert await store.get_session_state("s-1") == ({"n": WRITERS}, WRITERS)
    # Every writer saw its own increment land at a distinct version.
    assert sorted(version for _, version in results) == list(range(1, WRITERS + 1))
    assert sorted(state["n"] for state, _ in results) == list(range(1, WRITERS + 1))
