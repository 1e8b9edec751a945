"""`RunState`: one run between its steps.

The run loop is a short driver over named steps (prepare, model request, tool batch, finish).
Everything that passes from one step to the next lives on one `RunState`, so that a reader can
see it in one place and a checkpoint can save it: the run's progress is its `RunOutput`
(messages, tool executions, metrics, session state) and the few counters below it. The rest
(the event buffer, the cancellation handle, the session store connection) is machinery that
belongs to this process only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pilothouse.run import registry

if TYPE_CHECKING:
    from pilothouse.models.base import ModelRequest, ModelResponse
    from pilothouse.models.message import Message
    from pilothouse.observe.run_tracer import RunTracer
    from pilothouse.run import events as ev
    from pilothouse.run.output import RunOutput, ToolExecution
    from pilothouse.run.plan import RunPlan
    from pilothouse.run.session import SessionIO
    from pilothouse.tools import Function

__all__ = ["CancelledByUser", "RunState", "StepLimitError"]


class CancelledByUser(Exception):
    """Raised at a step boundary when `cancel_run` (or the run's timeout) asked to stop."""


class StepLimitError(Exception):
    """The run went past one of its limits (model requests, tool calls, time)."""


class RunState:
    """One run between its steps: its progress, and the machinery that drives it.

    Progress (saved with the run by a checkpoint): ``out`` (messages, tools, metrics, session
    state), ``calls_made``, ``model_requests``, ``output_retries_left``, ``over_limit`` and
    ``request`` (the tools offered and the tool choice of the next model request).

    The step in hand: ``response`` (the last model response), ``batch`` (the tool calls of
    that response), ``to_run`` / ``settled`` (those to run now, and those answered without
    running), ``paused_on`` (those waiting for a person) and ``stopped`` (a tool ended the
    run).
    """

    # Plain attributes with class-level defaults, rather than slots: a run sets only what it
    # uses, and most runs use few of them (this is built once per run, on the hot path).
    session_io: SessionIO | None = None
    by_name: Mapping[str, Function] = MappingProxyType({})
    ids: Mapping[str, Any] = MappingProxyType({})
    calls_made = 0
    model_requests = 0
    over_limit = False
    response: ModelResponse | None = None
    batch: Sequence[ToolExecution] = ()
    to_run: Sequence[ToolExecution] = ()
    settled: Sequence[ToolExecution] = ()
    paused_on: Sequence[ToolExecution] = ()
    stopped = False
    open_stream: Any = None
    # [observe] The run's spans and metrics (pilothouse.observe); None when telemetry is off,
    # which is all the step boundaries check.
    tracer: RunTracer | None = None

    def __init__(self, plan: RunPlan) -> None:
        agent = plan.agent
        self.plan = plan
        self.agent = agent
        self.model = plan.model
        self.out: RunOutput = plan.output
        self.ctx = plan.context
        self.stream = stream = plan.stream
        self.store_events = store_events = agent.store_events
        self.stream_events = stream and plan.stream_events
        # Lifecycle events are built when the caller streams them or when they are stored.
        self.lifecycle = self.stream_events or store_events
        if stream or store_events:
            self.ids = self.event_ids()
        self.handle = registry.RunHandle(asyncio.get_running_loop())
        # The task driving the run: one for a drained run; a sync stream steps it in a new
        # task each time, so the steps look it up again before every interruptible await.
        self.task = asyncio.current_task()
        self.started = time.perf_counter()
        # Whether the run's progress is stored after every step (a store, checkpoint="step").
        self.checkpoints = plan.store is not None and agent.checkpoint == "step"
        self.messages: list[Message] = []
        # Events for the driver to yield after the step that produced them.
        self.events: list[ev.BaseRunEvent] = []
        self.output_retries_left = agent.output_retries

    # The tools offered and the tool choice of the next model request (set by *prepare*).
    request: ModelRequest

    def current_task(self) -> asyncio.Task[Any] | None:
        """The task driving the run now. A sync stream resumes every step in a new task, so
        a streaming run looks it up again; a drained run keeps the one it started in."""
        if self.stream:
            self.task = asyncio.current_task()
        return self.task

    def event_ids(self) -> dict[str, Any]:
        """The fields every event of this run carries."""
        out = self.out
        return {
            "run_id": out.run_id,
            "session_id": out.session_id,
            "agent_id": out.agent_id,
            "agent_name": out.agent_name,
        }

    def emit(self, event: ev.BaseRunEvent) -> None:
        """A lifecycle event: kept on the run's output with ``store_events``, and streamed
        with ``stream_events`` (the driver yields it after the step)."""
        if self.store_events:
            self.keep(event)
        if self.stream_events:
            self.events.append(event)

    def queue(self, event: ev.BaseRunEvent) -> None:
        """An event for the driver to yield after the step."""
        self.events.append(event)

    def keep(self, event: ev.BaseRunEvent) -> None:
        """Record an event on the run's output (``store_events``)."""
        out = self.out
        if out.events is None:
            out.events = []
        out.events.append(event)

    def take_events(self) -> Sequence[ev.BaseRunEvent]:
        """The events the last step produced, in order; the buffer starts empty again."""
        events = self.events
        if events:
            self.events = []
        return events

    def elapsed(self) -> float:
        """Seconds since the run started (a continued run counts its time before too)."""
        return time.perf_counter() - self.started

    def check_boundary(self) -> None:
        """Between two steps: stop here if the run was cancelled (or timed out)."""
        if self.handle.cancel_requested:
            raise CancelledByUser
