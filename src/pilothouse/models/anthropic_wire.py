"""Anthropic Messages API wire format: normalised messages and tools in, stream events out.

Pure functions and a small state machine, with no SDK import: `pilothouse.models.anthropic`
sends what `build_request` returns and feeds every stream event to `StreamTranslator`.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pilothouse.exceptions import ModelProviderError
from pilothouse.models.base import ModelDelta, ModelRequest, ToolCallChunk, ToolDefinition
from pilothouse.models.message import Message
from pilothouse.run.metrics import Usage

__all__ = [
    "IMAGE_MEDIA_TYPES",
    "AnswerTool",
    "StreamTranslator",
    "answer_tool",
    "convert_messages",
    "convert_tool_choice",
    "convert_tools",
]

logger = logging.getLogger("pilothouse")

# The image types the Messages API accepts as base64 sources.
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URL = re.compile(r"^data:([^;,]+)?(;base64)?,(.*)$", re.DOTALL)


def _unsupported(message: str) -> ModelProviderError:
    # A request the Messages API cannot express: retrying cannot help.
    return ModelProviderError(message, retryable=False, model_name="Claude")


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def convert_messages(
    messages: Sequence[Message], thinking_blocks: dict[str, list[dict[str, Any]]] | None = None
) -> tuple[str | None, list[dict[str, Any]]]:
    """Return the system prompt and the Messages API ``messages`` list.

    System messages are joined into the system prompt. Consecutive tool results go back in
    one user turn as ``tool_result`` blocks, and turns of the same role are merged, as the
    API expects alternating roles. ``thinking_blocks`` maps the id of an assistant turn's first
    tool call to the signed thinking blocks that turn began with: the API wants them back
    before the ``tool_use`` blocks when extended thinking is on.
    """
    system_parts: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            text = message.text()
            if text:
                system_parts.append(text)
            continue
        if message.role == "tool":
            role = "user"
            blocks = [_tool_result_block(message)]
        elif message.role == "assistant":
            role = "assistant"
            blocks = _assistant_blocks(message, thinking_blocks or {})
        else:
            role = "user"
            blocks = _user_blocks(message)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            previous = out[-1]
            if isinstance(previous["content"], str):
                previous["content"] = [{"type": "text", "text": previous["content"]}]
            previous["content"].extend(blocks)
        elif len(blocks) == 1 and blocks[0]["type"] == "text" and role == "user":
            # Plain text as a string: the simplest form, understood by every compatible server.
            out.append({"role": role, "content": blocks[0]["text"]})
        else:
            out.append({"role": role, "content": blocks})
    system = "\n\n".join(system_parts) if system_parts else None
    return system, out


def _tool_result_block(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
    text = message.text()
    if text:
        # An empty result is left out rather than sent as an empty text, which is refused.
        block["content"] = text
    if message.tool_call_error:
        block["is_error"] = True
    return block


def _assistant_blocks(
    message: Message, thinking_blocks: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    calls = message.tool_calls or []
    if calls and calls[0].id in thinking_blocks:
        blocks.extend(thinking_blocks[calls[0].id])
    text = message.text()
    if text:
        blocks.append({"type": "text", "text": text})
    for call in calls:
        try:
            arguments = call.parsed_arguments()
        except ValueError:
            # The API needs an object; keep what the model wrote so that it can see its mistake.
            arguments = {"_raw": call.arguments}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _user_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.content
    if isinstance(content, list):
        for part in content:
            blocks.extend(_content_part(part))
    else:
        text = message.text()
        if text:
            blocks.append({"type": "text", "text": text})
    for image in message.images or ():
        blocks.append(image_block(image))
    for file in message.files or ():
        blocks.append(document_block(file))
    if message.audio:
        raise _unsupported(
            "Claude cannot take audio: the Anthropic Messages API accepts text, images and "
            "documents only. Transcribe the audio first, or use a model that takes audio."
        )
    if message.videos:
        raise _unsupported(
            "Claude cannot take video: the Anthropic Messages API accepts text, images and "
            "documents only. Send frames as images instead."
        )
    return blocks


def _content_part(part: Any) -> list[dict[str, Any]]:
    if isinstance(part, str):
        return [{"type": "text", "text": part}] if part else []
    if not isinstance(part, dict):
        return [{"type": "text", "text": str(part)}]
    kind = part.get("type")
    if kind in ("text", "input_text"):
        text = part.get("text") or ""
        return [{"type": "text", "text": text}] if text else []
    if kind == "image_url":
        # The OpenAI form, {"image_url": {"url": ...}}: a data URL becomes a base64 source.
        image_url = part.get("image_url")
        url = image_url.get("url") if isinstance(image_url, dict) else image_url
        if not isinstance(url, str):
            raise _unsupported(f"an image_url content part needs a URL, got {part!r}")
        return [_image_from_url(url)]
    # Anything else is taken to be a Messages API block already (image, document, ...).
    return [part]


def _image_from_url(url: str) -> dict[str, Any]:
    match = _DATA_URL.match(url)
    if match is None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type = match.group(1) or "image/png"
    data = match.group(3)
    if not match.group(2):
        data = base64.b64encode(data.encode()).decode("ascii")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def image_block(image: Any) -> dict[str, Any]:
    """An ``image`` block for a `pilothouse.media.Image`: a URL as a URL, bytes as base64."""
    if image.url is not None:
        return _image_from_url(image.url)
    data = image.read_bytes()
    media_type = image.get_mime_type() or _sniff_image_type(data)
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in IMAGE_MEDIA_TYPES:
        raise _unsupported(
            f"Claude accepts JPEG, PNG, GIF and WebP images, not {media_type or 'this image'}: "
            "convert it first, or give Image(format=...) if the type was guessed wrong."
        )
    return {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": media_type,
            "data": base64.b64encode(data).decode("ascii"),
        },
    }


def _sniff_image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def document_block(file: Any) -> dict[str, Any]:
    """A ``document`` block for a `pilothouse.media.File`: PDFs, and plain text as text."""
    media_type = file.get_mime_type()
    if media_type is None and file.url is None and file.read_bytes().startswith(b"%PDF-"):
        media_type = "application/pdf"
    block: dict[str, Any] = {"type": "document"}
    if media_type == "application/pdf":
        if file.url is not None:
            block["source"] = {"type": "url", "url": file.url}
        else:
            block["source"] = {
                "type": "base64",
                "media_type": "application/pdf",
                "data": file.to_base64(),
            }
    elif media_type is not None and media_type.startswith("text/") and file.url is None:
        try:
            text = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _unsupported(f"the text file {file.name or ''} is not UTF-8: {exc}") from None
        block["source"] = {"type": "text", "media_type": "text/plain", "data": text}
    else:
        raise _unsupported(
            "Claude takes PDF documents (by URL or content) and plain-text files (by content), "
            f"not {media_type or 'a file of unknown type'}"
            + (f" ({file.name})" if file.name else "")
            + ": pass File(mime_type=...) if the type was guessed wrong."
        )
    if file.name:
        block["title"] = file.name
    return block


def convert_tools(tools: Iterable[ToolDefinition]) -> list[dict[str, Any]]:
    """Tool definitions in the Messages API form (``input_schema``)."""
    out = []
    for tool in tools:
        schema = dict(tool.parameters) if tool.parameters else {}
        schema.setdefault("type", "object")
        if schema["type"] == "object":
            schema.setdefault("properties", {})
        item: dict[str, Any] = {"name": tool.name, "input_schema": schema}
        if tool.description:
            item["description"] = tool.description
        out.append(item)
    return out


def convert_tool_choice(choice: str | None) -> dict[str, Any] | None:
    """``"auto"``, ``"none"``, ``"required"`` or a tool name, in the Messages API form."""
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice in ("required", "any"):
        return {"type": "any"}
    return {"type": "tool", "name": choice}


class AnswerTool:
    """The tool that carries a structured answer: its input is the answer's JSON."""

    __slots__ = ("definition", "name")

    def __init__(self, name: str, definition: dict[str, Any]) -> None:
        self.name = name
        self.definition = definition


def answer_tool(output_schema: Any, taken: Iterable[str] = ()) -> AnswerTool:
    """Build the answer tool for an output schema: a pydantic model class or a JSON schema."""
    if isinstance(output_schema, dict):
        schema = dict(output_schema)
        title = str(schema.get("title") or "final_answer")
    elif hasattr(output_schema, "model_json_schema"):
        schema = output_schema.model_json_schema()
        title = output_schema.__name__
    else:
        raise TypeError(
            "output_schema must be a pydantic model class or a JSON schema dict, "
            f"not {type(output_schema).__name__}"
        )
    name = _TOOL_NAME.sub("_", title)[:64] or "final_answer"
    if name in set(taken):
        name = ("final_" + name)[:64]
    schema.setdefault("type", "object")
    return AnswerTool(
        name,
        {
            "name": name,
            "description": (
                "Give your final answer by calling this tool: its input is the answer, "
                "in exactly this structure."
            ),
            "input_schema": schema,
        },
    )


def build_request(
    messages: Sequence[Message],
    request: ModelRequest,
    *,
    thinking: dict[str, Any] | None,
    cache_system_prompt: bool,
    thinking_blocks: dict[str, list[dict[str, Any]]] | None = None,
) -> tuple[dict[str, Any], AnswerTool | None]:
    """The Messages API body for one call (without model, max_tokens and sampling settings),
    and the answer tool when the request has an output schema."""
    system, wire_messages = convert_messages(messages, thinking_blocks)
    body: dict[str, Any] = {"messages": wire_messages}
    if system:
        if cache_system_prompt:
            body["system"] = [
                {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
            ]
        else:
            body["system"] = system
    tools = convert_tools(request.tools)
    choice = convert_tool_choice(request.tool_choice) if tools else None
    answer: AnswerTool | None = None
    if request.output_schema is not None:
        answer = answer_tool(request.output_schema, (t["name"] for t in tools))
        tools.append(answer.definition)
        thinking_on = bool(thinking) and (thinking or {}).get("type") != "disabled"
        if choice is None or choice["type"] in ("auto", "none"):
            if thinking_on:
                # The API refuses a forced tool choice while thinking: ask for the tool instead.
                choice = {"type": "auto"}
                note = f"Give your final answer by calling the {answer.name} tool."
                body["system"] = _append_system(body.get("system"), note)
            elif choice is None or choice["type"] == "none" or len(tools) == 1:
                choice = {"type": "tool", "name": answer.name}
            else:
                # With tools of its own the model may still call them first; any tool call
                # then either works on the answer or is the answer.
                choice = {"type": "any"}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if thinking:
        body["thinking"] = thinking
    return body, answer


def _append_system(system: Any, note: str) -> Any:
    if system is None:
        return note
    if isinstance(system, str):
        return system + "\n\n" + note
    return [*system, {"type": "text", "text": note}]


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


class StreamTranslator:
    """Turns Messages API stream events into `ModelDelta` values, one event at a time.

    Tool-call fragments keep the content block index as their index. The answer tool's input
    (see `answer_tool`) comes out as content text. Signed thinking blocks are kept in
    ``thinking_blocks`` so the next call can send them back with the tool results.
    """

    __slots__ = (
        "_answer_name",
        "_blocks",
        "_input_tokens",
        "_output_tokens",
        "_reasoning_tokens",
        "_sent_usage",
        "cache_read",
        "cache_write",
        "stop_reason",
        "thinking_blocks",
        "tool_ids",
    )

    def __init__(self, answer_name: str | None = None) -> None:
        self._answer_name = answer_name
        # index → [kind, has_deltas, initial input] for tool blocks; thinking block dicts.
        self._blocks: dict[int, dict[str, Any]] = {}
        self._input_tokens = 0
        self._output_tokens = 0
        self._reasoning_tokens = 0
        self.cache_read = 0
        self.cache_write = 0
        self._sent_usage = False
        self.stop_reason: str | None = None
        self.thinking_blocks: list[dict[str, Any]] = []
        self.tool_ids: list[str] = []

    def usage(self) -> Usage:
        """The usage so far; input counts cache reads and writes too, as the other providers'
        prompt token counts do."""
        return Usage(
            input_tokens=self._input_tokens + self.cache_read + self.cache_write,
            output_tokens=self._output_tokens,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            reasoning_tokens=self._reasoning_tokens,
        )

    def _take_usage(self, usage: Any) -> None:
        if usage is None:
            return
        value = getattr(usage, "input_tokens", None)
        if value is not None:
            self._input_tokens = int(value)
        value = getattr(usage, "cache_creation_input_tokens", None)
        if value is not None:
            self.cache_write = int(value)
        value = getattr(usage, "cache_read_input_tokens", None)
        if value is not None:
            self.cache_read = int(value)
        value = getattr(usage, "output_tokens", None)
        if value is not None:
            self._output_tokens = int(value)
        details = getattr(usage, "output_tokens_details", None)
        thinking = getattr(details, "thinking_tokens", None) if details is not None else None
        if thinking is not None:
            self._reasoning_tokens = int(thinking)

    def feed(self, event: Any) -> ModelDelta | None:
        """Translate one event; None when it carries nothing for the caller."""
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            return self._delta(event.index, event.delta)
        if kind == "content_block_start":
            return self._start(event.index, event.content_block)
        if kind == "content_block_stop":
            return self._stop(event.index)
        if kind == "message_start":
            self._take_usage(getattr(event.message, "usage", None))
            return None
        if kind == "message_delta":
            self._take_usage(getattr(event, "usage", None))
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
            self._sent_usage = True
            return ModelDelta(usage=self.usage())
        return None

    def finish(self) -> ModelDelta | None:
        """What is left to send when the stream ends: the usage, if no message_delta had it."""
        if self._sent_usage:
            return None
        self._sent_usage = True
        usage = self.usage()
        return ModelDelta(usage=usage) if usage != Usage() else None

    def _start(self, index: int, block: Any) -> ModelDelta | None:
        kind = getattr(block, "type", None)
        if kind == "text":
            text = getattr(block, "text", "") or ""
            return ModelDelta(content=text) if text else None
        if kind == "tool_use":
            initial = getattr(block, "input", None) or {}
            if block.name == self._answer_name:
                self._blocks[index] = {"kind": "answer", "deltas": False, "input": initial}
                return None
            self._blocks[index] = {"kind": "tool", "deltas": False, "input": initial}
            self.tool_ids.append(block.id)
            return ModelDelta(tool_calls=[ToolCallChunk(index=index, id=block.id, name=block.name)])
        if kind == "thinking":
            thinking = getattr(block, "thinking", "") or ""
            self._blocks[index] = {
                "kind": "thinking",
                "block": {
                    "type": "thinking",
                    "thinking": thinking,
                    "signature": getattr(block, "signature", "") or "",
                },
            }
            return ModelDelta(reasoning=thinking) if thinking else None
        if kind == "redacted_thinking":
            self.thinking_blocks.append(
                {"type": "redacted_thinking", "data": getattr(block, "data", "")}
            )
            return None
        logger.debug("Claude: ignoring a %s content block", kind)
        return None

    def _delta(self, index: int, delta: Any) -> ModelDelta | None:
        kind = getattr(delta, "type", None)
        if kind == "text_delta":
            return ModelDelta(content=delta.text) if delta.text else None
        if kind == "input_json_delta":
            state = self._blocks.get(index)
            fragment = delta.partial_json or ""
            if state is None or not fragment:
                return None
            state["deltas"] = True
            if state["kind"] == "answer":
                return ModelDelta(content=fragment)
            return ModelDelta(tool_calls=[ToolCallChunk(index=index, arguments=fragment)])
        if kind == "thinking_delta":
            state = self._blocks.get(index)
            if state is not None and state["kind"] == "thinking":
                state["block"]["thinking"] += delta.thinking
            return ModelDelta(reasoning=delta.thinking) if delta.thinking else None
        if kind == "signature_delta":
            state = self._blocks.get(index)
            if state is not None and state["kind"] == "thinking":
                state["block"]["signature"] += delta.signature
            return None
        return None

    def _stop(self, index: int) -> ModelDelta | None:
        state = self._blocks.get(index)
        if state is None:
            return None
        if state["kind"] == "thinking":
            self.thinking_blocks.append(state["block"])
            return None
        if state["deltas"] or not state["input"]:
            return None
        # The whole input came with the block's start (some servers do that): send it now.
        text = json.dumps(state["input"], ensure_ascii=False)
        if state["kind"] == "answer":
            return ModelDelta(content=text)
        return ModelDelta(tool_calls=[ToolCallChunk(index=index, arguments=text)])
