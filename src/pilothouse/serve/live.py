"""The runs one worker drives: start, stream, cancel, notice abandoned streams, drain.

Every run an HTTP request starts runs in a task of its own (`RunManager.start`), never in the
request's task: a client that disconnects, or a request that times out, cannot interrupt a run
half-way through storing it. The task drains the agent's event stream; for streamed and
background runs it also numbers each event, keeps its SSE frame in memory for this worker's
subscribers, and appends it to the shared `EventLog` for everyone else's.

A foreground stream "watches" its run. When the last watcher leaves (the client went away)
and none comes back within ``disconnect_grace`` seconds — a reconnect on any worker counts —
the run is cancelled and stored ``cancelled``. Background runs go on without watchers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from pilothouse.serve.errors import ApiError
from pilothouse.serve.eventlog import EventLog, RunRecord, Signal
from pilothouse.serve.settings import ServeSettings
from pilothouse.serve.sse import KEEPALIVE, TERMINAL_EVENTS, sse_frame

if TYPE_CHECKING:
    from pilothouse.agent import Agent
    from pilothouse.agent.agent import AsyncRunStream
    from pilothouse.run.output import RunOutput

__all__ = ["LiveRun", "RunManager"]

logger = logging.getLogger("pilothouse")

# How often, and how many times, a cancel is retried while the run has not registered yet.
_CANCEL_RETRY = 0.01
_CANCEL_TRIES = 200


class LiveRun:
    """A run this worker drives, and what its subscribers need.

    ``frames`` holds the SSE frames of this leg of the run; the first one's id is
    ``base + 1`` (a continued run goes on numbering after the events of its earlier legs).
    """

    __slots__ = (
        "_grace",
        "_waiters",
        "agent",
        "agent_id",
        "base",
        "done",
        "error",
        "foreground",
        "frames",
        "last_event",
        "logged",
        "output",
        "run_id",
        "session_id",
        "task",
        "user_id",
        "watchers",
    )

    def __init__(
        self,
        agent: Agent,
        output: RunOutput,
        *,
        foreground: bool,
        logged: bool,
        base: int,
    ) -> None:
        self.agent = agent
        self.run_id = output.run_id
        self.agent_id = agent.id
        self.user_id = output.user_id
        self.session_id = output.session_id
        self.output = output
        self.foreground = foreground
        self.logged = logged
        self.base = base
        self.frames: list[str] = []
        self.last_event = ""
        self.done = False
        self.error: BaseException | None = None
        self.watchers = 0
        self.task: asyncio.Task[None] | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._waiters: list[asyncio.Future[bool]] = []

    @property
    def last_seq(self) -> int:
        """The id of the newest frame."""
        return self.base + len(self.frames)

    def append(self, name: str, data: str) -> int:
        """Add one event's frame; return its sequence number."""
        seq = self.base + len(self.frames) + 1
        self.frames.append(sse_frame(seq, name, data))
        self.last_event = name
        self._notify()
        return seq

    def finish(self) -> None:
        """Mark the run's task as finished."""
        self.done = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._notify()

    def _notify(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)

    async def wait(self, position: int, within: float) -> bool:
        """Wait (at most ``within`` seconds) until there is a frame past ``position`` or the
        run is done; False when the time ran out."""
        if len(self.frames) > position or self.done:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(within, _time_out, waiter)
        # Awaiting the future itself (not wait_for, which on Python 3.11 can swallow a
        # cancellation that arrives with the result): a stream whose client left stops here.
        try:
            return await waiter
        finally:
            timer.cancel()


def _time_out(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class RunManager:
    """This worker's live runs, by id."""

    def __init__(self, log: EventLog, settings: ServeSettings) -> None:
        self.log = log
        self.settings = settings
        self.runs: dict[str, LiveRun] = {}
        self.accepting = True
        log.on_signal(self._on_signal)

    # --- starting --------------------------------------------------------------------------

    def check_capacity(self) -> None:
        """Refuse a new run when shutting down (503) or at the concurrency limit (429)."""
        retry = {"Retry-After": str(self.settings.retry_after)}
        if not self.accepting:
            raise ApiError(503, "the server is shutting down; try again", headers=retry)
        if len(self.runs) >= self.settings.max_concurrent_runs:
            raise ApiError(
                429,
                f"this worker is running {len(self.runs)} runs, its limit; try again shortly",
                headers=retry,
            )

    def start(
        self,
        agent: Agent,
        stream: AsyncRunStream,
        *,
        foreground: bool,
        logged: bool,
        base: int = 0,
    ) -> LiveRun:
        """Drive ``stream`` (an ``arun``/``acontinue_run`` stream) in a task of its own.

        ``logged``: number the events, keep their frames and append them to the event log.
        ``foreground``: the run is cancelled when its last watcher leaves for good.
        """
        live = LiveRun(agent, stream.output, foreground=foreground, logged=logged, base=base)
        if live.run_id in self.runs:
            raise ApiError(409, f"run {live.run_id} is already running on this worker")
        self.runs[live.run_id] = live
        if logged:
            self.log.add_run(
                RunRecord(live.run_id, live.agent_id, live.user_id, live.session_id, time.time())
            )
        live.task = asyncio.get_running_loop().create_task(self._drive(live, stream))
        return live

    async def _drive(self, live: LiveRun, stream: AsyncRunStream) -> None:
        try:
            if live.logged:
                async for event in stream:
                    self._record(live, event.event, event.to_json())
            else:
                async for _ in stream:
                    pass
        except asyncio.CancelledError:
            self._synthesise(live, "RunCancelled", reason="the server stopped the run")
            raise
        except Exception as exc:
            # Raised by the library before or instead of its own terminal event (a refused
            # continue, a store that failed before the run began): report it in-band.
            live.error = exc
            logger.warning("serve: run %s ended with %s: %s", live.run_id, type(exc).__name__, exc)
            self._synthesise(live, "RunError", content=str(exc), error_type=type(exc).__name__)
        finally:
            live.output = stream.output
            if live.logged and live.error is None:
                self._close_log(live)
            live.finish()
            self.runs.pop(live.run_id, None)

    def _close_log(self, live: LiveRun) -> None:
        """End the logged events with the run's terminal event, if it sent none (a run
        streamed without ``stream_events`` sends no RunCompleted): followers on other
        workers know from it that the run is over."""
        from pilothouse.run.output import RunStatus

        if live.last_event in TERMINAL_EVENTS:
            return
        out = live.output
        if out.status is RunStatus.completed:
            self._synthesise(
                live, "RunCompleted", content=out.content, content_type=out.content_type
            )
        elif out.status is RunStatus.paused:
            self._synthesise(live, "RunPaused", tools=[t.to_dict() for t in out.tools])
        elif out.status is RunStatus.error:
            self._synthesise(live, "RunError", content=out.content)
        elif out.status is RunStatus.cancelled:
            self._synthesise(live, "RunCancelled", reason=out.content)

    def _record(self, live: LiveRun, name: str, data: str) -> None:
        seq = live.append(name, data)
        self.log.add_event(live.run_id, seq, name, data)

    def _synthesise(self, live: LiveRun, name: str, **fields: Any) -> None:
        if not live.logged:
            return
        from pilothouse.run.events import event_from_dict

        event = event_from_dict(
            {
                "event": name,
                "run_id": live.run_id,
                "session_id": live.session_id,
                "agent_id": live.agent_id,
                "agent_name": live.agent.name,
                **fields,
            }
        )
        self._record(live, name, event.to_json())

    # --- cancelling ------------------------------------------------------------------------

    def cancel(self, run_id: str, reason: str | None = None) -> bool:
        """Cancel a run this worker drives; False when it drives no such run."""
        live = self.runs.get(run_id)
        if live is None or live.done:
            return False
        self._try_cancel(live, reason, 0)
        return True

    def _try_cancel(self, live: LiveRun, reason: str | None, attempt: int) -> None:
        if live.done or live.agent.cancel_run(live.run_id, reason):
            return
        # Not registered yet (its task has not reached the loop's first step): try again.
        if attempt < _CANCEL_TRIES:
            asyncio.get_running_loop().call_later(
                _CANCEL_RETRY, self._try_cancel, live, reason, attempt + 1
            )
        elif live.task is not None:
            live.task.cancel()

    async def request_cancel(self, run_id: str, reason: str | None) -> None:
        """Cancel the run here, or ask the worker that drives it."""
        if not self.cancel(run_id, reason):
            await self.log.publish(Signal("cancel", run_id, self.log.worker_id, reason))

    # --- watching --------------------------------------------------------------------------

    def attach(self, live: LiveRun) -> None:
        """A client follows the run."""
        live.watchers += 1
        if live._grace is not None:
            live._grace.cancel()
            live._grace = None

    def detach(self, live: LiveRun) -> None:
        """A client stopped following the run."""
        live.watchers -= 1
        if live.watchers <= 0 and live.foreground and not live.done and live._grace is None:
            live._grace = asyncio.get_running_loop().call_later(
                self.settings.disconnect_grace, self._abandoned, live
            )

    def _abandoned(self, live: LiveRun) -> None:
        live._grace = None
        if live.watchers <= 0 and not live.done:
            logger.info("serve: run %s lost its client; cancelling it", live.run_id)
            self.cancel(live.run_id, "the client disconnected")

    def _on_signal(self, signal: Signal) -> None:
        live = self.runs.get(signal.run_id)
        if live is None:
            return
        if signal.kind == "cancel":
            self.cancel(signal.run_id, signal.reason)
        elif signal.kind == "attach":
            self.attach(live)
        elif signal.kind == "detach":
            self.detach(live)

    async def frames(
        self, live: LiveRun, after: int, *, attach: bool = True, flush_first: bool = False
    ) -> AsyncGenerator[str, None]:
        """The run's frames after sequence number ``after`` (at least ``live.base``), then
        the live ones until the run ends; keep-alive comments while it is quiet.

        ``attach``: count this stream as a watcher while it runs (False when the caller
        attached it already and detaches it itself). ``flush_first``: send nothing before
        the run's record is in the shared log, so that a client that has seen the run's id
        can ask any worker about it.
        """
        position = max(0, after - live.base)
        keepalive = self.settings.keepalive
        if attach:
            self.attach(live)
        try:
            if flush_first:
                await self.log.flush()
            while True:
                frames = live.frames
                if position < len(frames):
                    chunk = "".join(frames[position:])
                    position = len(frames)
                    yield chunk
                    continue
                if live.done:
                    return
                if not await live.wait(position, keepalive):
                    yield KEEPALIVE
        finally:
            if attach:
                self.detach(live)

    # --- draining --------------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        """Stop taking runs; give the running ones ``grace`` seconds, then cancel them and
        wait (bounded) until they are stored."""
        self.accepting = False
        tasks = [live.task for live in self.runs.values() if live.task is not None]
        if tasks:
            logger.info("serve: waiting up to %.0fs for %d runs", grace, len(tasks))
            await asyncio.wait(tasks, timeout=grace)
        left = list(self.runs.values())
        if not left:
            return
        logger.warning("serve: cancelling %d runs that did not finish in time", len(left))
        for live in left:
            self.cancel(live.run_id, "the server is shutting down")
        tasks = [live.task for live in left if live.task is not None]
        _, pending = await asyncio.wait(tasks, timeout=10.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)
