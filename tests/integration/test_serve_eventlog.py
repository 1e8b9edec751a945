"""The serve event log on SQLite and PostgreSQL: two logs on one database stand for two
workers; what one writes the other reads, its commits wake the other's waiters, and signals
cross between them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from serve_kit import PG_URL, pg_schema

from pilothouse.db import PostgresDb, SqliteDb
from pilothouse.serve.eventlog import EventLog, RunRecord, Signal, event_log_for, is_shared

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with pg_schema() as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
async def logs(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[EventLog, EventLog]]:
    if request.param == "sqlite":
        store: SqliteDb | PostgresDb = SqliteDb(tmp_path / "log.db")
    else:
        prefix = f"t{uuid.uuid4().hex[:8]}_"
        store = PostgresDb(PG_URL, schema=request.getfixturevalue("schema"), table_prefix=prefix)
    assert is_shared(store)
    first = event_log_for(store, "worker-1", retention=60)
    second = event_log_for(store, "worker-2", retention=60)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_one_worker_reads_what_another_wrote(logs: tuple[EventLog, EventLog]) -> None:
    one, two = logs
    one.add_run(RunRecord("r1", "agent", "ann", "s1", time.time()))
    for seq in range(1, 6):
        one.add_event("r1", seq, "RunContent", f'{{"n": {seq}}}')
    assert await one.flush()
    record = await two.get_run("r1")
    assert record is not None
    assert (record.agent_id, record.user_id, record.session_id) == ("agent", "ann", "s1")
    assert [e.seq for e in await two.events_after("r1", 2)] == [3, 4, 5]
    assert (await two.events_after("r1", 0, limit=2))[1].data == '{"n": 2}'
    assert await two.last_seq("r1") == 5 and await two.last_seq("nope") == 0
    last = await two.last_event("r1")
    assert last is not None and last.seq == 5
    # Writing the same rows again (a retried batch) changes nothing.
    one.add_run(RunRecord("r1", "other", None, None, time.time()))
    one.add_event("r1", 5, "RunCompleted", "{}")
    assert await one.flush()
    again = await two.get_run("r1")
    last = await two.last_event("r1")
    assert again is not None and again.agent_id == "agent"
    assert last is not None and last.name == "RunContent"


async def test_a_commit_wakes_a_waiting_worker(logs: tuple[EventLog, EventLog]) -> None:
    one, two = logs
    one.add_run(RunRecord("r2", "agent", None, None, time.time()))
    assert await one.flush()
    waiting = asyncio.ensure_future(two.wait_for_events("r2", 5))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    one.add_event("r2", 1, "RunStarted", "{}")
    await asyncio.wait_for(waiting, 5)
    # PostgreSQL wakes on NOTIFY; SQLite within its polling interval.
    assert time.monotonic() - started < 1.0
    assert [e.seq for e in await two.events_after("r2", 0)] == [1]


async def test_signals_cross_workers_but_not_back(logs: tuple[EventLog, EventLog]) -> None:
    one, two = logs
    got_one: list[Signal] = []
    got_two: list[Signal] = []
    both = asyncio.Event()

    def on_two(signal: Signal) -> None:
        got_two.append(signal)
        if len(got_two) == 2:
            both.set()

    one.on_signal(got_one.append)
    two.on_signal(on_two)
    await one.publish(Signal("cancel", "r3", one.worker_id, "stop it"))
    await one.publish(Signal("attach", "r3", one.worker_id))
    await asyncio.wait_for(both.wait(), 5)
    assert [(s.kind, s.run_id, s.reason) for s in got_two] == [
        ("cancel", "r3", "stop it"),
        ("attach", "r3", None),
    ]
    assert got_one == []


async def test_prune_forgets_old_runs(logs: tuple[EventLog, EventLog]) -> None:
    one, two = logs
    one.add_run(RunRecord("old", "agent", None, None, time.time() - 1000))
    one.add_event("old", 1, "RunStarted", "{}")
    one.add_run(RunRecord("new", "agent", None, None, time.time()))
    one.add_event("new", 1, "RunStarted", "{}")
    assert await one.flush()
    await two.prune(time.time() - 100)
    assert await one.get_run("old") is None and await one.events_after("old", 0) == []
    assert await one.get_run("new") is not None


async def test_counting_sessions_in_the_store(tmp_path: Path) -> None:
    store = SqliteDb(tmp_path / "count.db")
    for i in range(3):
        await store.upsert_session(f"s{i}", user_id="ann" if i else "bob", agent_id="a")
    log = event_log_for(store, "w", retention=60)
    await log.start()
    assert await log.count_sessions(None, None) == 3
    assert await log.count_sessions("ann", None) == 2
    assert await log.count_sessions("ann", "b") == 0
    await log.close()
    await store.close()
