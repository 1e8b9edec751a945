"""Normalised chat messages: what the run loop sends to every model adapter."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Message", "Role", "ToolCall"]

Role = Literal["system", "user", "assistant", "tool"]


def _new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


@dataclass(slots=True)
class ToolCall:
    """A tool call requested by the model: the tool's name and its arguments.

    ``arguments`` is a dict once parsed; adapters may receive it as a JSON string, which
    `parsed_arguments` decodes.
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = field(default_factory=_new_call_id)

    def parsed_arguments(self) -> dict[str, Any]:
        """Return the arguments as a dict; raise ValueError when they are not a JSON object."""
        args = self.arguments
        if isinstance(args, dict):
            return args
        if not args or not args.strip():
            return {}
        value = json.loads(args)
        if not isinstance(value, dict):
            raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
        return value

    def arguments_json(self) -> str:
        """Return the arguments as a JSON string, the wire form most providers use."""
        if isinstance(self.arguments, str):
            return self.arguments or "{}"
        return json.dumps(self.arguments, ensure_ascii=False, default=str)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        """Rebuild a ToolCall from `to_dict` output."""
        return cls(name=data["name"], arguments=data.get("arguments") or {}, id=data["id"])


@dataclass(slots=True)
class Message:
    """One message of a conversation.

    ``content`` is text, or for user messages with media a list of content parts (dicts with
    a ``type``), with any media (`pilothouse.media`) in ``images``, ``audio``, ``videos`` and
    ``files``. ``from_history`` marks messages replayed from earlier runs of the session.
    Assistant messages may carry ``tool_calls``; tool messages carry the
    ``tool_call_id`` and ``name`` of the call they answer. ``metrics`` holds the usage and
    timing of the model call that produced an assistant message.
    """

    role: Role
    content: Any = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    reasoning_content: str | None = None
    tool_call_error: bool = False
    from_history: bool = False
    images: list[Any] | None = None
    audio: list[Any] | None = None
    videos: list[Any] | None = None
    files: list[Any] | None = None
    metrics: Any = None
    created_at: float | None = None

    def text(self) -> str:
        """Return the textual content ('' when there is none)."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, leaving out empty fields."""
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        if self.reasoning_content is not None:
            data["reasoning_content"] = self.reasoning_content
        if self.tool_call_error:
            data["tool_call_error"] = True
        if self.from_history:
            data["from_history"] = True
        for kind in ("images", "audio", "videos", "files"):
            items = getattr(self, kind)
            if items:
                data[kind] = [item.to_dict() for item in items]
        if self.metrics is not None:
            data["metrics"] = self.metrics.to_dict()
        if self.created_at is not None:
            data["created_at"] = self.created_at
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Rebuild a Message from `to_dict` output."""
        from pilothouse.media import Media
        from pilothouse.run.metrics import Metrics

        calls = data.get("tool_calls")
        media = {
            kind: [Media.from_dict(m) for m in data[kind]]
            for kind in ("images", "audio", "videos", "files")
            if data.get(kind)
        }
        metrics = data.get("metrics")
        return cls(
            role=data["role"],
            content=data.get("content"),
            tool_calls=[ToolCall.from_dict(c) for c in calls] if calls else None,
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            reasoning_content=data.get("reasoning_content"),
            tool_call_error=bool(data.get("tool_call_error", False)),
            from_history=bool(data.get("from_history", False)),
            metrics=Metrics.from_dict(metrics) if metrics else None,
            created_at=data.get("created_at"),
            **media,
        )
