"""OpenAPI descriptions of the run routes' bodies, which are read by hand (JSON or form)."""

from __future__ import annotations

from typing import Any

__all__ = ["CONTINUE_BODY", "RUN_BODY", "RUN_RESPONSES"]

_COMMON: dict[str, Any] = {
    "stream": {"type": "boolean", "default": True, "description": "Answer with SSE events."},
    "stream_events": {
        "type": "boolean",
        "default": True,
        "description": "Include lifecycle events (RunStarted, ToolCallStarted, ...).",
    },
    "background": {
        "type": "boolean",
        "default": False,
        "description": "Keep running when the client leaves; without stream, answer 202.",
    },
    "session_id": {"type": "string"},
    "user_id": {"type": "string", "description": "Ignored when a JWT names the user."},
}
_RUN_FIELDS: dict[str, Any] = {
    "message": {
        "description": "The user's message (an object for agents with an input schema).",
        "anyOf": [{"type": "string"}, {"type": "object"}],
    },
    **_COMMON,
    "session_state": {"type": "object"},
    "dependencies": {"type": "object"},
    "metadata": {"type": "object"},
}
_JSON_FILES = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "content": {"type": "string", "format": "byte"},
            "filename": {"type": "string"},
            "content_type": {"type": "string"},
        },
        "required": ["content"],
    },
}
_FORM_FILES = {"type": "array", "items": {"type": "string", "format": "binary"}}


def _body(fields: dict[str, Any], required: list[str], files: bool) -> dict[str, Any]:
    json_props = {**fields, **({"files": _JSON_FILES} if files else {})}
    form_props = {**fields, **({"files": _FORM_FILES} if files else {})}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": json_props, "required": required}
                },
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": form_props, "required": required}
                },
            },
        }
    }


RUN_BODY = _body(_RUN_FIELDS, ["message"], files=True)
CONTINUE_BODY = _body(
    {
        "tools": {
            "type": "array",
            "items": {"type": "object"},
            "description": "The paused run's tool executions, answered (JSON text in a form).",
        },
        **_COMMON,
    },
    ["tools"],
    files=False,
)
RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "SSE events (`id:` sequence number, `event:` name, `data:` JSON), or "
        "the run's JSON when not streamed",
        "content": {"text/event-stream": {}},
    },
    202: {"description": "background run accepted: run_id, session_id, status"},
    404: {"description": "unknown agent, run or session"},
    422: {"description": "a field is missing or wrong; `field` names it"},
    429: {"description": "too many runs on this worker; see Retry-After"},
}
