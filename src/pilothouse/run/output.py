"""What a run produces: `RunOutput` with its `RunInput`, `RunStatus` and `ToolExecution`s."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any

from pilothouse.models.message import Message
from pilothouse.run.metrics import Metrics

__all__ = [
    "MEDIA_KINDS",
    "RunInput",
    "RunOutput",
    "RunStatus",
    "ToolExecution",
    "UserInputField",
    "restore_input_media",
]

MEDIA_KINDS = ("images", "audio", "videos", "files")


class RunStatus(StrEnum):
    """The state of a run. The value is the upper-case wire form."""

    pending = "PENDING"
    running = "RUNNING"
    completed = "COMPLETED"
    paused = "PAUSED"
    cancelled = "CANCELLED"
    error = "ERROR"


def _to_jsonable(value: Any) -> Any:
    """Convert nested dataclasses, pydantic models and media objects to JSON-ready values."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return str(value)


@dataclass(slots=True)
class UserInputField:
    """A value a tool marked ``requires_user_input`` asks the user for.

    Set ``value`` before continuing the paused run; the model's own value, if it gave one, is
    there already.
    """

    name: str
    field_type: str = "string"
    description: str | None = None
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "field_type": self.field_type,
            "description": self.description,
            "value": _to_jsonable(self.value),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserInputField:
        """Rebuild a field from `to_dict` output."""
        return cls(
            name=data["name"],
            field_type=data.get("field_type", "string"),
            description=data.get("description"),
            value=data.get("value"),
        )


@dataclass(slots=True)
class ToolExecution:
    """One tool call of a run: what was asked, what came back, and how it went."""

    tool_name: str
    tool_args: dict[str, Any] = field(default_factory=dict)
    tool_call_id: str | None = None
    result: Any = None
    tool_call_error: bool = False
    metrics: Metrics | None = None
    requires_confirmation: bool = False
    confirmed: bool | None = None
    confirmation_note: str | None = None
    requires_user_input: bool = False
    user_input_schema: list[UserInputField] | None = None
    answered: bool | None = None
    external_execution_required: bool = False
    stop_after_tool_call: bool = False
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {f.name: _to_jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolExecution:
        """Rebuild a ToolExecution from `to_dict` output."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("metrics") is not None:
            values["metrics"] = Metrics.from_dict(values["metrics"])
        if values.get("user_input_schema") is not None:
            values["user_input_schema"] = [
                f if isinstance(f, UserInputField) else UserInputField.from_dict(f)
                for f in values["user_input_schema"]
            ]
        return cls(**values)


@dataclass(slots=True)
class RunInput:
    """The input of a run as the caller gave it, with its media."""

    input_content: Any = None
    images: list[Any] | None = None
    audio: list[Any] | None = None
    videos: list[Any] | None = None
    files: list[Any] | None = None

    def input_content_string(self) -> str:
        """Return the input as text (JSON for structured input)."""
        content = self.input_content
        if isinstance(content, str):
            return content
        return json.dumps(_to_jsonable(content), ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {f.name: _to_jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInput:
        """Rebuild a RunInput from `to_dict` output, media as `pilothouse.media` objects."""
        from pilothouse.media import Media

        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for kind in MEDIA_KINDS:
            items = values.get(kind)
            if items:
                values[kind] = [Media.from_dict(m) if isinstance(m, dict) else m for m in items]
        return cls(**values)

    def media(self) -> dict[str, list[Any]]:
        """The media given with the input, by kind (only the kinds present)."""
        found = {kind: getattr(self, kind) for kind in MEDIA_KINDS}
        return {kind: items for kind, items in found.items() if items}


@dataclass(slots=True, eq=False)
class RunOutput:
    """The result of one run.

    ``status`` says how the run ended; with status ``error`` the ``content`` is the error
    message. ``messages`` are the messages of this run (system, user, assistant, tool);
    ``metrics`` are summed over its model calls; ``tools`` lists its tool executions.
    """

    run_id: str
    agent_id: str | None = None
    agent_name: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    input: RunInput | None = None
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    model: str | None = None
    model_provider: str | None = None
    messages: list[Message] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    tools: list[ToolExecution] = field(default_factory=list)
    images: list[Any] | None = None
    audio: list[Any] | None = None
    videos: list[Any] | None = None
    files: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    session_state: dict[str, Any] | None = None
    events: list[Any] | None = None
    references: list[Any] | None = None  # knowledge chunks used (pilothouse.knowledge.Reference)
    status: RunStatus = RunStatus.running
    created_at: int = field(default_factory=lambda: int(time.time()))
    # With tracing on (pilothouse.observe): the W3C trace context of the run's last execution,
    # stored with the run so that continuing it links the new span to that one.
    trace_context: dict[str, str] | None = None

    @property
    def is_paused(self) -> bool:
        """True when the run waits for a confirmation, user input or an external result."""
        return self.status is RunStatus.paused

    @property
    def tools_requiring_confirmation(self) -> list[ToolExecution]:
        """Tool calls waiting for the user to confirm them."""
        return [t for t in self.tools if t.requires_confirmation and t.confirmed is None]

    @property
    def tools_requiring_user_input(self) -> list[ToolExecution]:
        """Tool calls waiting for values from the user."""
        return [t for t in self.tools if t.requires_user_input and not t.answered]

    @property
    def tools_awaiting_external_execution(self) -> list[ToolExecution]:
        """Tool calls the caller must execute and report back."""
        return [t for t in self.tools if t.external_execution_required and t.result is None]

    def get_content_as_string(self, **json_kwargs: Any) -> str:
        """Return the content as text: JSON for structured content."""
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return json.dumps(_to_jsonable(self.content), ensure_ascii=False, **json_kwargs)

    def to_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict of every field.

        With ``compact`` (the form session stores keep) the messages leave their media out:
        the run's own media are in ``input`` already, and history messages are other runs'
        messages, whose media those runs store. `from_dict` puts the input media back.
        """
        data = {f.name: _to_jsonable(getattr(self, f.name)) for f in fields(self)}
        data["status"] = self.status.value
        if compact:
            for message in data["messages"]:
                for kind in MEDIA_KINDS:
                    message.pop(kind, None)
        return data

    def to_json(self, indent: int | None = 2) -> str:
        """Return the run as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOutput:
        """Rebuild a RunOutput from `to_dict` output."""
        from pilothouse.run.events import event_from_dict

        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("input") is not None:
            values["input"] = RunInput.from_dict(values["input"])
        values["messages"] = [Message.from_dict(m) for m in values.get("messages") or []]
        if values.get("input") is not None:
            restore_input_media(values["messages"], values["input"])
        values["metrics"] = Metrics.from_dict(values.get("metrics") or {})
        values["tools"] = [ToolExecution.from_dict(t) for t in values.get("tools") or []]
        if values.get("events") is not None:
            values["events"] = [event_from_dict(e) for e in values["events"]]
        if values.get("references") is not None:
            from pilothouse.knowledge.document import Reference

            values["references"] = [Reference.from_dict(r) for r in values["references"]]
        if "status" in values:
            values["status"] = RunStatus(values["status"])
        return cls(**values)


def restore_input_media(messages: list[Message], run_input: RunInput) -> None:
    """Give a run's input message back the input's media, where a compact dict left them out.

    The input message is the last user message of the run's own messages before its first
    answer (history messages come before it and are skipped).
    """
    media = run_input.media()
    if not media:
        return
    target: Message | None = None
    for message in messages:
        if message.from_history or message.role == "system":
            continue
        if message.role == "assistant":
            break
        if message.role == "user":
            target = message
    if target is None or any(getattr(target, kind) for kind in MEDIA_KINDS):
        return
    for kind, items in media.items():
        setattr(target, kind, list(items))
