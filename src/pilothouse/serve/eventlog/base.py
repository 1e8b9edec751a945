"""`EventLog`: the service's own record of its runs' events, shared by every worker.

Each worker streams the events of the runs it drives straight from memory; it also appends
them here, so that a client that lost its stream can pick it up again from any worker
(``Last-Event-ID`` / ``?after=N``). Workers also signal each other through it (cancel a run,
a client attached to or left a run), on the database they already share: PostgreSQL's
LISTEN/NOTIFY, or a small table that SQLite workers poll.

Writes are group-committed: `add_run` and `add_event` only queue; one writer task per worker
writes everything queued in one transaction, and while it does, the next batch gathers. Under
load a commit carries many runs' events; at rest each event is written at once.

Tables (prefixed with the store's ``table_prefix``): ``serve_runs`` (run id, agent, user,
session, when), ``serve_events`` (run id, sequence number, event name, the event's JSON),
and for SQLite ``serve_signals``. Rows older than ``retention`` seconds are pruned.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["EventLog", "LoggedEvent", "RunRecord", "Signal"]

logger = logging.getLogger("pilothouse")

# A failed write is tried again this often (with backoff) before its rows are dropped.
_WRITE_ATTEMPTS = 5


@dataclass(slots=True)
class RunRecord:
    """A run the service started: enough to route and authorise requests about it."""

    run_id: str
    agent_id: str
    user_id: str | None
    session_id: str | None
    created_at: float


@dataclass(slots=True)
class LoggedEvent:
    """One event of a run: its sequence number (the SSE id), name and JSON."""

    seq: int
    name: str
    data: str


@dataclass(slots=True)
class Signal:
    """A message from one worker to all: ``cancel`` a run, or a client ``attach``-ed to or
    ``detach``-ed from a run's stream. ``origin`` is the sending worker."""

    kind: str
    run_id: str
    origin: str
    reason: str | None = None


SignalHandler = Callable[[Signal], None]


class EventLog(ABC):
    """Append-only event storage with group commit, reads, wake-ups and worker signals."""

    #: How often a worker waiting for another worker's events looks again, at most.
    poll_interval = 0.1

    def __init__(self, worker_id: str, *, retention: float = 86400.0) -> None:
        self.worker_id = worker_id
        self.retention = retention
        self._runs: list[RunRecord] = []
        self._events: list[tuple[str, int, str, str, float]] = []
        self._flushed: list[asyncio.Future[bool]] = []
        self._writer: asyncio.Task[None] | None = None
        self._handlers: list[SignalHandler] = []
        self._wakeups: dict[str, asyncio.Event] = {}
        self._closed = False

    # --- writing ---------------------------------------------------------------------------

    def add_run(self, record: RunRecord) -> None:
        """Queue the run's record (kept once: a continued run adds it again harmlessly)."""
        self._runs.append(record)
        self._kick()

    def add_event(self, run_id: str, seq: int, name: str, data: str) -> None:
        """Queue one event of a run."""
        self._events.append((run_id, seq, name, data, time.time()))
        self._kick()

    async def flush(self) -> bool:
        """Wait until everything queued so far is written; False when it could not be."""
        if not self._runs and not self._events and (self._writer is None or self._writer.done()):
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._flushed.append(future)
        self._kick()
        return await future

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        attempt = 0
        while self._runs or self._events or self._flushed:
            runs, events, flushed = self._runs, self._events, self._flushed
            self._runs, self._events, self._flushed = [], [], []
            ok = True
            if runs or events:
                try:
                    await self._write(runs, events)
                    attempt = 0
                except Exception as exc:
                    attempt += 1
                    if attempt < _WRITE_ATTEMPTS and not self._closed:
                        logger.warning("serve event log: write failed (%s), retrying", exc)
                        self._runs[:0], self._events[:0], self._flushed[:0] = runs, events, flushed
                        await asyncio.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1))
                        continue
                    logger.error("serve event log: dropped %d events: %s", len(events), exc)
                    attempt, ok = 0, False
                self._wake(run_id for run_id, *_ in events)
            for future in flushed:
                if not future.done():
                    future.set_result(ok)

    @abstractmethod
    async def _write(
        self, runs: list[RunRecord], events: list[tuple[str, int, str, str, float]]
    ) -> None:
        """Write the rows in one transaction (ignoring rows already there) and tell other
        workers which runs have new events."""

    # --- reading ---------------------------------------------------------------------------

    @abstractmethod
    async def events_after(self, run_id: str, after: int, limit: int = 500) -> list[LoggedEvent]:
        """The run's events with a sequence number above ``after``, in order."""

    @abstractmethod
    async def last_seq(self, run_id: str) -> int:
        """The highest sequence number logged for the run (0 when none)."""

    @abstractmethod
    async def last_event(self, run_id: str) -> LoggedEvent | None:
        """The run's newest logged event, or None."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""

    async def count_sessions(self, user_id: str | None, agent_id: str | None) -> int | None:
        """How many sessions the store holds (of the user / agent), when the log can count
        them in the store's own database; None otherwise."""
        return None

    # --- waiting for other workers' events -------------------------------------------------

    async def wait_for_events(self, run_id: str, within: float) -> None:
        """Return when the run may have new events, or after ``within`` seconds."""
        event = self._wakeups.get(run_id)
        if event is None:
            event = self._wakeups[run_id] = asyncio.Event()
        waiter = asyncio.ensure_future(event.wait())
        try:
            # asyncio.wait, not wait_for, which can swallow a cancellation on Python 3.11.
            await asyncio.wait((waiter,), timeout=min(within, self._wait_bound()))
        finally:
            waiter.cancel()
            if self._wakeups.get(run_id) is event:
                del self._wakeups[run_id]

    def _wait_bound(self) -> float:
        """How long a wait may go without looking at the database again."""
        return self.poll_interval

    def _wake(self, run_ids: Iterable[str] | None) -> None:
        """Wake the waiters of ``run_ids`` (all of them when None)."""
        if not self._wakeups:
            return
        if run_ids is None:
            targets = list(self._wakeups)
        else:
            targets = [r for r in set(run_ids) if r in self._wakeups]
        for run_id in targets:
            self._wakeups.pop(run_id).set()

    # --- signals between workers -----------------------------------------------------------

    def on_signal(self, handler: SignalHandler) -> None:
        """Call ``handler`` with every signal another worker publishes."""
        self._handlers.append(handler)

    def _dispatch(self, signal: Signal) -> None:
        if signal.origin == self.worker_id:
            return
        for handler in self._handlers:
            try:
                handler(signal)
            except Exception:
                logger.exception("serve: a signal handler failed")

    @abstractmethod
    async def publish(self, signal: Signal) -> None:
        """Send ``signal`` to every other worker."""

    # --- lifecycle -------------------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None:
        """Create the tables when missing and start listening for signals."""

    async def close(self) -> None:
        """Write what is queued, stop listening, release connections."""
        await self.flush()
        self._closed = True
        await self._close()

    @abstractmethod
    async def _close(self) -> None:
        """Release the backend's connections and tasks."""

    @abstractmethod
    async def prune(self, older_than: float) -> None:
        """Delete the runs (and their events) recorded before ``older_than`` (Unix time)."""
