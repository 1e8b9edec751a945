"""The typed events a run emits while it works.

One small dataclass per event, all sharing `BaseRunEvent`'s fields. ``event`` holds the
`RunEvent` value (the class name without "Event"), which is also the key for turning a JSON
dict back into the right class with `event_from_dict`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, get_args

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


class RunEvent(StrEnum):
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


@dataclass(slots=True, kw_only=True)
class RunStartedEvent(BaseRunEvent):
    """The run has begun; names the model it uses."""

    event: ClassVar[str] = RunEvent.run_started.value

    model: str | None = None
    model_provider: str | None = None


@dataclass(slots=True, kw_only=True)
class RunContentEvent(BaseRunEvent):
    """A piece of the answer as the model streams it."""

    event: ClassVar[str] = RunEvent.run_content.value

    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None


@dataclass(slots=True, kw_only=True)
class RunContentCompletedEvent(BaseRunEvent):
    """The model finished streaming the answer's content."""

    event: ClassVar[str] = RunEvent.run_content_completed.value


@dataclass(slots=True, kw_only=True)
class RunIntermediateContentEvent(BaseRunEvent):
    """Content produced before the final answer (e.g. text alongside tool calls)."""

    event: ClassVar[str] = RunEvent.run_intermediate_content.value

    content: Any = None
    content_type: str = "str"


@dataclass(slots=True, kw_only=True)
class RunCompletedEvent(BaseRunEvent):
    """The run finished with an answer."""

    event: ClassVar[str] = RunEvent.run_completed.value

    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    metrics: Metrics | None = None
    session_state: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class RunErrorEvent(BaseRunEvent):
    """The run ended with an error; ``content`` is the message."""

    event: ClassVar[str] = RunEvent.run_error.value

    content: str | None = None
    error_type: str | None = None


@dataclass(slots=True, kw_only=True)
class RunCancelledEvent(BaseRunEvent):
    """The run was cancelled."""

    event: ClassVar[str] = RunEvent.run_cancelled.value

    reason: str | None = None


@dataclass(slots=True, kw_only=True)
class RunPausedEvent(BaseRunEvent):
    """The run waits for a confirmation, user input or an external tool result."""

    event: ClassVar[str] = RunEvent.run_paused.value

    tools: list[ToolExecution] | None = None
    content: Any = None


@dataclass(slots=True, kw_only=True)
class RunContinuedEvent(BaseRunEvent):
    """A paused run resumed."""

    event: ClassVar[str] = RunEvent.run_continued.value


@dataclass(slots=True, kw_only=True)
class PreHookStartedEvent(BaseRunEvent):
    """A pre-hook started."""

    event: ClassVar[str] = RunEvent.pre_hook_started.value

    pre_hook_name: str | None = None


@dataclass(slots=True, kw_only=True)
class PreHookCompletedEvent(BaseRunEvent):
    """A pre-hook finished."""

    event: ClassVar[str] = RunEvent.pre_hook_completed.value

    pre_hook_name: str | None = None


@dataclass(slots=True, kw_only=True)
class PostHookStartedEvent(BaseRunEvent):
    """A post-hook started."""

    event: ClassVar[str] = RunEvent.post_hook_started.value

    post_hook_name: str | None = None


@dataclass(slots=True, kw_only=True)
class PostHookCompletedEvent(BaseRunEvent):
    """A post-hook finished."""

    event: ClassVar[str] = RunEvent.post_hook_completed.value

    post_hook_name: str | None = None


@dataclass(slots=True, kw_only=True)
class ToolCallStartedEvent(BaseRunEvent):
    """A tool call is about to run."""

    event: ClassVar[str] = RunEvent.tool_call_started.value

    tool: ToolExecution | None = None


@dataclass(slots=True, kw_only=True)
class ToolCallCompletedEvent(BaseRunEvent):
    """A tool call finished; ``tool.result`` holds what it returned (or the error)."""

    event: ClassVar[str] = RunEvent.tool_call_completed.value

    tool: ToolExecution | None = None
    content: Any = None


@dataclass(slots=True, kw_only=True)
class ReasoningStartedEvent(BaseRunEvent):
    """The model started reasoning."""

    event: ClassVar[str] = RunEvent.reasoning_started.value


@dataclass(slots=True, kw_only=True)
class ReasoningStepEvent(BaseRunEvent):
    """A step of the model's reasoning."""

    event: ClassVar[str] = RunEvent.reasoning_step.value

    content: Any = None
    reasoning_content: str | None = None


@dataclass(slots=True, kw_only=True)
class ReasoningCompletedEvent(BaseRunEvent):
    """The model finished reasoning."""

    event: ClassVar[str] = RunEvent.reasoning_completed.value

    content: Any = None


@dataclass(slots=True, kw_only=True)
class MemoryUpdateStartedEvent(BaseRunEvent):
    """User memories are being updated."""

    event: ClassVar[str] = RunEvent.memory_update_started.value


@dataclass(slots=True, kw_only=True)
class MemoryUpdateCompletedEvent(BaseRunEvent):
    """User memories were updated."""

    event: ClassVar[str] = RunEvent.memory_update_completed.value


@dataclass(slots=True, kw_only=True)
class SessionSummaryStartedEvent(BaseRunEvent):
    """The session summary is being updated."""

    event: ClassVar[str] = RunEvent.session_summary_started.value


@dataclass(slots=True, kw_only=True)
class SessionSummaryCompletedEvent(BaseRunEvent):
    """The session summary was updated."""

    event: ClassVar[str] = RunEvent.session_summary_completed.value

    session_summary: Any = None


@dataclass(slots=True, kw_only=True)
class ParserModelResponseStartedEvent(BaseRunEvent):
    """The parser model started."""

    event: ClassVar[str] = RunEvent.parser_model_response_started.value


@dataclass(slots=True, kw_only=True)
class ParserModelResponseCompletedEvent(BaseRunEvent):
    """The parser model finished."""

    event: ClassVar[str] = RunEvent.parser_model_response_completed.value


@dataclass(slots=True, kw_only=True)
class OutputModelResponseStartedEvent(BaseRunEvent):
    """The output model started."""

    event: ClassVar[str] = RunEvent.output_model_response_started.value


@dataclass(slots=True, kw_only=True)
class OutputModelResponseCompletedEvent(BaseRunEvent):
    """The output model finished."""

    event: ClassVar[str] = RunEvent.output_model_response_completed.value


@dataclass(slots=True, kw_only=True)
class CustomEvent(BaseRunEvent):
    """An event of the user's own, e.g. emitted by a tool; ``data`` is free-form."""

    event: ClassVar[str] = RunEvent.custom_event.value

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

_REGISTRY: dict[str, type[BaseRunEvent]] = {cls.event: cls for cls in get_args(RunOutputEvent)}


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
