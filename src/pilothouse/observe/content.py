"""Messages, tool arguments and results in the shape the GenAI conventions give them.

Used only when the user opts in to content capture. The conventions describe
``gen_ai.input.messages`` / ``gen_ai.output.messages`` as lists of ``{role, parts}`` where a
part is ``{"type": "text", "content": ...}``, ``{"type": "tool_call", "id", "name",
"arguments"}``, ``{"type": "tool_call_response", "id", "response"}`` or ``{"type":
"reasoning", "content": ...}``; on spans they are recorded as JSON strings. Media are recorded
as a part naming their kind (and their URL when they have one), never their bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.models.base import ModelResponse, ToolDefinition
    from pilothouse.models.message import Message, ToolCall

__all__ = [
    "arguments_json",
    "messages_json",
    "output_json",
    "result_json",
    "text_output_json",
    "tool_definitions_json",
]

_MEDIA_MODALITY = {"images": "image", "audio": "audio", "videos": "video", "files": "document"}


def messages_json(messages: Iterable[Message]) -> str:
    """The messages sent to a model, as the JSON of ``gen_ai.input.messages``."""
    return _dumps([_message(m) for m in messages])


def output_json(response: ModelResponse) -> str:
    """A model's response, as the JSON of ``gen_ai.output.messages``."""
    parts: list[dict[str, Any]] = []
    if response.reasoning:
        parts.append({"type": "reasoning", "content": response.reasoning})
    if response.content:
        parts.append({"type": "text", "content": response.content})
    parts.extend(_tool_call(call) for call in response.tool_calls)
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    reason = getattr(response, "finish_reason", None)
    if reason:
        message["finish_reason"] = reason
    return _dumps([message])


def text_output_json(text: str) -> str:
    """A run's answer, as the JSON of ``gen_ai.output.messages`` on its ``invoke_agent`` span."""
    return _dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])


def tool_definitions_json(definitions: Sequence[ToolDefinition]) -> str:
    """The tools offered to a model, as the JSON of ``gen_ai.tool.definitions``."""
    return _dumps(
        [
            {
                "type": "function",
                "name": d.name,
                "description": d.description,
                "parameters": d.parameters,
            }
            for d in definitions
        ]
    )


def arguments_json(arguments: Any) -> str:
    """A tool call's arguments, as the JSON of ``gen_ai.tool.call.arguments``."""
    if isinstance(arguments, str):
        return arguments
    return _dumps(arguments)


def result_json(result: Any) -> str:
    """A tool call's result: text as it is, anything else as JSON."""
    if isinstance(result, str):
        return result
    return _dumps(result)


def _message(message: Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if message.role == "tool":
        parts.append(
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.text()}
        )
    else:
        if message.reasoning_content:
            parts.append({"type": "reasoning", "content": message.reasoning_content})
        parts.extend(_content_parts(message.content))
        for kind, modality in _MEDIA_MODALITY.items():
            for item in getattr(message, kind) or ():
                parts.append(_media_part(item, modality))
        for call in message.tool_calls or ():
            parts.append(_tool_call(call))
    data: dict[str, Any] = {"role": message.role, "parts": parts}
    if message.name is not None and message.role != "tool":
        data["name"] = message.name
    return data


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append({"type": "text", "content": str(part.get("text", ""))})
            elif isinstance(part, dict):
                parts.append({"type": str(part.get("type", "unknown"))})
        return parts
    return [{"type": "text", "content": str(content)}]


def _media_part(item: Any, modality: str) -> dict[str, Any]:
    url = getattr(item, "url", None)
    if url:
        return {"type": "uri", "modality": modality, "uri": url}
    # Bytes and local paths stay out of telemetry: the part only says that media was sent.
    return {"type": modality}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    try:
        arguments: Any = call.parsed_arguments()
    except (ValueError, RecursionError):
        arguments = call.arguments
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
