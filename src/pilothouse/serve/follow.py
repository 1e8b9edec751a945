"""Following a run's events after a given sequence number, wherever the run is driven.

On the worker that drives the run the frames come from memory; elsewhere from the event log,
woken by the other worker's commits (PostgreSQL NOTIFY) or by polling (SQLite). A follower of
another worker's foreground run tells that worker it is there (``attach``), so that the run
is not cancelled as abandoned while its client reads it from here.

The stream ends with the run's terminal event (RunCompleted, RunError, RunCancelled,
RunPaused); for a run that logged no events (a non-streamed run) or whose worker died, it ends
when the stored run is no longer running, or after ``follow_idle_timeout`` quiet seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from pilothouse.db.base import SessionStore
from pilothouse.serve.eventlog import EventLog, LoggedEvent, Signal
from pilothouse.serve.live import RunManager
from pilothouse.serve.sse import KEEPALIVE, TERMINAL_EVENTS, sse_frame

__all__ = ["follow_run"]

_RUNNING = frozenset({"RUNNING", "PENDING"})
# How often a quiet follower asks the store whether the run is still going.
_STATUS_EVERY = 2.0
# How long a follower waits for the last events of a run the store says has ended.
_TAIL_WAIT = 2.0


def _chunk(rows: list[LoggedEvent]) -> str:
    return "".join(sse_frame(row.seq, row.name, row.data) for row in rows)


async def follow_run(
    run_id: str, after: int, manager: RunManager, log: EventLog, store: SessionStore
) -> AsyncGenerator[str, None]:
    """SSE frames of run ``run_id`` after sequence number ``after``, then the live ones."""
    live = manager.runs.get(run_id)
    if live is not None:
        if after < live.base:
            async for chunk in _logged(log, run_id, after, live.base):
                yield chunk
        async for chunk in manager.frames(live, after):
            yield chunk
        return
    async for chunk in _remote(run_id, after, manager, log, store):
        yield chunk


async def _logged(log: EventLog, run_id: str, after: int, upto: int) -> AsyncGenerator[str, None]:
    """The logged events in (after, upto]."""
    while after < upto:
        rows = [r for r in await log.events_after(run_id, after) if r.seq <= upto]
        if not rows:
            return
        after = rows[-1].seq
        yield _chunk(rows)


async def _remote(
    run_id: str, after: int, manager: RunManager, log: EventLog, store: SessionStore
) -> AsyncGenerator[str, None]:
    settings = manager.settings
    attached = False
    now = time.monotonic()
    last_event = last_ping = now
    next_status = now  # the first quiet moment asks the store at once
    ended_at: float | None = None
    try:
        while True:
            rows = await log.events_after(run_id, after)
            if rows:
                after = rows[-1].seq
                last_event = last_ping = time.monotonic()
                yield _chunk(rows)
                if rows[-1].name in TERMINAL_EVENTS:
                    return
                continue
            live = manager.runs.get(run_id)
            if live is not None:
                # The run (a continued leg) is now driven here.
                async for chunk in follow_run(run_id, after, manager, log, store):
                    yield chunk
                return
            now = time.monotonic()
            if now >= next_status:
                next_status = now + _STATUS_EVERY
                if ended_at is None and not await _still_running(store, run_id):
                    ended_at = now
            if ended_at is not None and (
                now - ended_at >= _TAIL_WAIT or await log.get_run(run_id) is None
            ):
                return
            if now - last_event >= settings.follow_idle_timeout:
                return
            if not attached:
                attached = True
                await log.publish(Signal("attach", run_id, log.worker_id))
            if now - last_ping >= settings.keepalive:
                last_ping = now
                yield KEEPALIVE
            await log.wait_for_events(run_id, settings.keepalive)
    finally:
        if attached:
            # Not awaited here: the generator may be closing because its task was cancelled.
            detach = log.publish(Signal("detach", run_id, log.worker_id))
            _background(asyncio.get_running_loop().create_task(detach))


async def _still_running(store: SessionStore, run_id: str) -> bool:
    run = await store.get_run(run_id)
    # Not stored yet: the run is starting on another worker.
    return run is None or run.get("status") in _RUNNING


_tasks: set[asyncio.Task[None]] = set()


def _background(task: asyncio.Task[None]) -> None:
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
