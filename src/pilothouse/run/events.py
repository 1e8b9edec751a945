"""The typed events a run emits while it works.

One small dataclass per event, all sharing `BaseRunEvent`'s fields. ``event`` holds the
`RunEvent` value (the class name without "Event"), which is also the key for turning a JSON
dict back into the right class with `event_from_dict`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar

from pilothouse.run.metrics import Metrics
from pilothouse.run.output import ToolExecution, _to_jsonable

__all__ = [
    "BaseRunEvent",
    "CustomEvent",
    "RunEvent",
    "RunOutputEvent",
    "event_from_dict",
    "event_from_json",
]


class RunEvent(str, Enum):
    """Names of the events a run emits."""

    run_started = "RunStarted"
    run_content = "RunContent"
    run_content_completed = "RunContentCompleted"
    run_intermediate_content = "RunIntermediateContent"
    run_completed = "RunCompleted"
    run_error = "RunError"
    run_cancelled = "RunCancelled"
    run_paused = "RunPaused"
    run_continued = "RunContinued"
    pre_hook_started = "PreHookStarted"
    pre_hook_completed = "PreHookCompleted"
    post_hook_started = "PostHookStarted"
    post_hook_completed = "PostHookCompleted"
    tool_call_started = "ToolCallStarted"
    tool_call_completed = "ToolCallCompleted"
    reasoning_started = "ReasoningStarted"
    reasoning_step = "ReasoningStep"
    reasoning_completed = "ReasoningCompleted"
    memory_update_started = "MemoryUpdateStarted"
    memory_update_completed = "MemoryUpdateCompleted"
    session_summary_started = "SessionSummaryStarted"
    session_summary_completed = "SessionSummaryCompleted"
    parser_model_response_started = "ParserModelResponseStarted"
    parser_model_response_completed = "ParserModelResponseCompleted"
    output_model_response_started = "OutputModelResponseStarted"
    output_model_response_completed = "OutputModelResponseCompleted"
    custom_event = "CustomEvent"

    def __str__(self) -> str:
        return self.value


def _now() -> int:
    return int(time.time())


@dataclass(slots=True, kw_only=True)
class BaseRunEvent:
    """Fields every event has. ``event`` is the event's name (a `RunEvent` value)."""

    event: ClassVar[str] = ""
    run_id: str = ""
    session_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    created_at: int = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with the event's name under ``event``."""
        data: dict[str, Any] = {"event": self.event}
        for f in fields(self):
            data[f.name] = _to_jsonable(getattr(self, f.name))
        return data

    def to_json(self, indent: int | None = None) -> str:
        """Return the event as JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


_REGISTRY: dict[str, type[BaseRunEvent]] = {}


def _event(name: RunEvent) -> Any:
    """Class decorator: make a slotted event dataclass and register it under ``name``."""

    def wrap(cls: type[BaseRunEvent]) -> type[BaseRunEvent]:
        cls.event = name.value
        made = dataclass(slots=True, kw_only=True)(cls)
        _REGISTRY[name.value] = made
        return made

    return wrap


@_event(RunEvent.run_started)
class RunStartedEvent(BaseRunEvent):
    """The run has begun; names the model it uses."""

    model: str | None = None
    model_provider: str | None = None


@_event(RunEvent.run_content)
class RunContentEvent(BaseRunEvent):
    """A piece of the answer as the model streams it."""

    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None


@_event(RunEvent.run_content_completed)
class RunContentCompletedEvent(BaseRunEvent):
    """The model finished streaming the answer's content."""


@_event(RunEvent.run_intermediate_content)
class RunIntermediateContentEvent(BaseRunEvent):
    """Content produced before the final answer (e.g. text alongside tool calls)."""

    content: Any = None
    content_type: str = "str"


@_event(RunEvent.run_completed)
class RunCompletedEvent(BaseRunEvent):
    """The run finished with an answer."""

    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    metrics: Metrics | None = None
    session_state: dict[str, Any] | None = None


@_event(RunEvent.run_error)
class RunErrorEvent(BaseRunEvent):
    """The run ended with an error; ``content`` is the message."""

    content: str | None = None
    error_type: str | None = None


@_event(RunEvent.run_cancelled)
class RunCancelledEvent(BaseRunEvent):
    """The run was cancelled."""

    reason: str | None = None


@_event(RunEvent.run_paused)
class RunPausedEvent(BaseRunEvent):
    """The run waits for a confirmation, user input or an external tool result."""

    tools: list[ToolExecution] | None = None
    content: Any = None


@_event(RunEvent.run_continued)
class RunContinuedEvent(BaseRunEvent):
    """A paused run resumed."""


@_event(RunEvent.pre_hook_started)
class PreHookStartedEvent(BaseRunEvent):
    """A pre-hook started."""

    pre_hook_name: str | None = None


@_event(RunEvent.pre_hook_completed)
class PreHookCompletedEvent(BaseRunEvent):
    """A pre-hook finished."""

    pre_hook_name: str | None = None


@_event(RunEvent.post_hook_started)
class PostHookStartedEvent(BaseRunEvent):
    """A post-hook started."""

    post_hook_name: str | None = None


@_event(RunEvent.post_hook_completed)
class PostHookCompletedEvent(BaseRunEvent):
    """A post-hook finished."""

    post_hook_name: str | None = None


@_event(RunEvent.tool_call_started)
class ToolCallStartedEvent(BaseRunEvent):
    """A tool call is about to run."""

    tool: ToolExecution | None = None


@_event(RunEvent.tool_call_completed)
class ToolCallCompletedEvent(BaseRunEvent):
    """A tool call finished; ``tool.result`` holds what it returned (or the error)."""

    tool: ToolExecution | None = None
    content: Any = None


@_event(RunEvent.reasoning_started)
class ReasoningStartedEvent(BaseRunEvent):
    """The model started reasoning."""


@_event(RunEvent.reasoning_step)
class ReasoningStepEvent(BaseRunEvent):
    """A step of the model's reasoning."""

    content: Any = None
    reasoning_content: str | None = None


@_event(RunEvent.reasoning_completed)
class ReasoningCompletedEvent(BaseRunEvent):
    """The model finished reasoning."""

    content: Any = None


@_event(RunEvent.memory_update_started)
class MemoryUpdateStartedEvent(BaseRunEvent):
    """User memories are being updated."""


@_event(RunEvent.memory_update_completed)
class MemoryUpdateCompletedEvent(BaseRunEvent):
    """User memories were updated."""


@_event(RunEvent.session_summary_started)
class SessionSummaryStartedEvent(BaseRunEvent):
    """The session summary is being updated."""


@_event(RunEvent.session_summary_completed)
class SessionSummaryCompletedEvent(BaseRunEvent):
    """The session summary was updated."""

    session_summary: Any = None


@_event(RunEvent.parser_model_response_started)
class ParserModelResponseStartedEvent(BaseRunEvent):
    """The parser model started."""


@_event(RunEvent.parser_model_response_completed)
class ParserModelResponseCompletedEvent(BaseRunEvent):
    """The parser model finished."""


@_event(RunEvent.output_model_response_started)
class OutputModelResponseStartedEvent(BaseRunEvent):
    """The output model started."""


@_event(RunEvent.output_model_response_completed)
class OutputModelResponseCompletedEvent(BaseRunEvent):
    """The output model finished."""


@_event(RunEvent.custom_event)
class CustomEvent(BaseRunEvent):
    """An event of the user's own, e.g. emitted by a tool; ``data`` is free-form."""

    data: dict[str, Any] | None = None


RunOutputEvent = (
    RunStartedEvent
    | RunContentEvent
    | RunContentCompletedEvent
    | RunIntermediateContentEvent
    | RunCompletedEvent
    | RunErrorEvent
    | RunCancelledEvent
    | RunPausedEvent
    | RunContinuedEvent
    | PreHookStartedEvent
    | PreHookCompletedEvent
    | PostHookStartedEvent
    | PostHookCompletedEvent
    | ToolCallStartedEvent
    | ToolCallCompletedEvent
    | ReasoningStartedEvent
    | ReasoningStepEvent
    | ReasoningCompletedEvent
    | MemoryUpdateStartedEvent
    | MemoryUpdateCompletedEvent
    | SessionSummaryStartedEvent
    | SessionSummaryCompletedEvent
    | ParserModelResponseStartedEvent
    | ParserModelResponseCompletedEvent
    | OutputModelResponseStartedEvent
    | OutputModelResponseCompletedEvent
    | CustomEvent
)
"""Any event a run can emit."""


def event_from_dict(data: dict[str, Any]) -> BaseRunEvent:
    """Rebuild an event from `BaseRunEvent.to_dict` output, choosing the class by ``event``."""
    name = data.get("event")
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown event {name!r}; expected one of {sorted(_REGISTRY)}")
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in known}
    if isinstance(values.get("tool"), dict):
        values["tool"] = ToolExecution.from_dict(values["tool"])
    if isinstance(values.get("tools"), list):
        values["tools"] = [ToolExecution.from_dict(t) for t in values["tools"]]
    if isinstance(values.get("metrics"), dict):
        values["metrics"] = Metrics.from_dict(values["metrics"])
    return cls(**values)


def event_from_json(text: str) -> BaseRunEvent:
    """Rebuild an event from its JSON form."""
    return event_from_dict(json.loads(text))
