"""The Chat Completions wire format: Pilothouse messages and tools in, streamed chunks out.

Pure translation with no SDK import at module level, shared by `OpenAIChat` and `OpenAILike`
(and measured on its own by the chunk-overhead benchmark). Request pieces are plain dicts in
the shape of the Chat Completions API; chunks are the SDK's pydantic ``ChatCompletionChunk``
models (or other pydantic models with the same fields).
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pilothouse.models.base import ModelDelta, ToolCallChunk, ToolDefinition
from pilothouse.models.message import Message
from pilothouse.run.metrics import Usage

__all__ = [
    "ChunkTranslator",
    "answer_as_content",
    "answer_tool_param",
    "completion_delta",
    "json_mode_messages",
    "json_mode_param",
    "message_param",
    "messages_param",
    "response_format_param",
    "tool_choice_param",
    "tools_param",
    "usage_from_openai",
]

# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def messages_param(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Translate messages to the ``messages`` array; ValueError for media OpenAI cannot take."""
    return [message_param(m) for m in messages]


def message_param(message: Message) -> dict[str, Any]:
    """Translate one message."""
    role = message.role
    if role == "user":
        param: dict[str, Any] = {"role": "user", "content": _user_content(message)}
        if message.name:
            param["name"] = message.name
        return param
    if message.images or message.audio or message.videos or message.files:
        raise ValueError(
            f"OpenAI chat takes images, audio and files in user messages only, not in a "
            f"{role} message; attach them to the user's input."
        )
    if role == "assistant":
        # Empty text rather than null next to tool calls: OpenAI takes either, but some
        # compatible servers (llama-cpp-python) reject a null content.
        param = {"role": "assistant", "content": message.text()}
        if message.tool_calls:
            param["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for call in message.tool_calls
            ]
        return param
    if role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text()}
    if role == "system":
        return {"role": "system", "content": message.text()}
    raise ValueError(f"Unknown message role {role!r}.")


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    content = message.content
    has_media = message.images or message.audio or message.videos or message.files
    if not has_media and not isinstance(content, list):
        return message.text()
    parts: list[dict[str, Any]] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                parts.append(part)
            elif part is not None:
                parts.append({"type": "text", "text": str(part)})
    elif content is not None and content != "":
        parts.append({"type": "text", "text": message.text()})
    if message.videos:
        raise ValueError(
            "OpenAI chat completions do not take video input. Send frames as images "
            "(Image(...)), or use a model that accepts video."
        )
    for image in message.images or ():
        parts.append(_image_part(image))
    for audio in message.audio or ():
        parts.append(_audio_part(audio))
    for file in message.files or ():
        parts.append(_file_part(file))
    return parts


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff_image(data: bytes) -> str | None:
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_part(image: Any) -> dict[str, Any]:
    if image.url is not None:
        url = image.url
    else:
        data = image.read_bytes()
        mime = image.get_mime_type() or _sniff_image(data)
        if mime is None:
            raise ValueError(
                "Cannot tell the type of an image given as bytes; pass Image(..., "
                "format='png') (or jpeg, webp, gif)."
            )
        if mime == "image/jpg":
            mime = "image/jpeg"
        url = f"data:{mime};base64,{_b64(data)}"
    image_url: dict[str, Any] = {"url": url}
    if image.detail:
        image_url["detail"] = image.detail
    return {"type": "image_url", "image_url": image_url}


_AUDIO_FORMATS = {
    "wav": "wav",
    "wave": "wav",
    "x-wav": "wav",
    "vnd.wave": "wav",
    "mp3": "mp3",
    "mpeg": "mp3",
    "mpeg3": "mp3",
    "x-mp3": "mp3",
}


def _audio_format(audio: Any, data: bytes) -> str:
    named = audio.format or (Path(str(audio.filepath)).suffix[1:] if audio.filepath else "")
    if named:
        name = str(named).lower().rsplit("/", 1)[-1]
        if name in _AUDIO_FORMATS:
            return _AUDIO_FORMATS[name]
        raise ValueError(
            f"OpenAI chat takes audio as wav or mp3, not {named!r}; convert the recording."
        )
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "mp3"
    raise ValueError(
        "Cannot tell the format of audio given as bytes; pass Audio(..., format='wav') or "
        "format='mp3'."
    )


def _audio_part(audio: Any) -> dict[str, Any]:
    data = audio.read_bytes()
    return {
        "type": "input_audio",
        "input_audio": {"data": _b64(data), "format": _audio_format(audio, data)},
    }


def _file_part(file: Any) -> dict[str, Any]:
    if file.url is not None:
        raise ValueError(
            f"OpenAI chat takes files as data, not as URLs ({file.url}); pass "
            "File(filepath=...) or File(content=..., name=...)."
        )
    data = file.read_bytes()
    mime = file.get_mime_type()
    if mime is None and data.startswith(b"%PDF"):
        mime = "application/pdf"
    mime = mime or "application/octet-stream"
    name = file.name or (Path(str(file.filepath)).name if file.filepath else None)
    if not name:
        name = "file" + (mimetypes.guess_extension(mime) or "")
    return {
        "type": "file",
        "file": {"file_data": f"data:{mime};base64,{_b64(data)}", "filename": name},
    }


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def tools_param(tools: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    """Translate tool definitions to the ``tools`` array."""
    result = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        result.append({"type": "function", "function": function})
    return result


def tool_choice_param(choice: str) -> str | dict[str, Any]:
    """Translate a tool choice: "auto", "none", "required", or the name of one tool."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def response_format_param(schema: Any) -> dict[str, Any]:
    """The ``response_format`` asking for JSON matching a pydantic model (or a JSON schema).

    A pydantic model is sent in strict mode, with the schema made strict the same way the
    OpenAI SDK's ``parse()`` does it. A plain dict is taken as a JSON schema as is, not strict.
    """
    if isinstance(schema, dict):
        name = str(schema.get("title") or "output")
        return _json_schema_format(name, schema, strict=False)
    if not isinstance(schema, type):
        raise TypeError(
            f"output_schema must be a pydantic model class or a JSON schema dict, not {schema!r}."
        )
    return _strict_format(schema)


def _json_schema_format(name: str, schema: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    # The API accepts names of letters, digits, '_' and '-' only, up to 64 characters.
    clean = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64] or "output"
    return {
        "type": "json_schema",
        "json_schema": {"name": clean, "schema": schema, "strict": strict},
    }


@functools.lru_cache(maxsize=128)
def _strict_format(model: type) -> dict[str, Any]:
    try:
        from openai.lib._pydantic import to_strict_json_schema
    except ImportError:  # an SDK without the helper: the plain schema, not strict
        schema: dict[str, Any] = model.model_json_schema()  # type: ignore[attr-defined]
        return _json_schema_format(model.__name__, schema, strict=False)
    return _json_schema_format(model.__name__, to_strict_json_schema(model), strict=True)


def _schema_dict(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict):
        return dict(schema)
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        result: dict[str, Any] = schema.model_json_schema()
        return result
    raise TypeError(
        f"output_schema must be a pydantic model class or a JSON schema dict, not {schema!r}."
    )


def json_mode_param(schema: Any, openai: bool) -> dict[str, Any]:
    """The ``response_format`` of JSON mode. Off OpenAI it carries the schema as ``schema``:
    the field OpenAI-compatible servers with JSON mode read (llama-cpp-python makes it a
    grammar), which OpenAI itself does not take."""
    if openai:
        return {"type": "json_object"}
    return {"type": "json_object", "schema": _schema_dict(schema)}


def json_mode_messages(wire: list[dict[str, Any]], schema: Any) -> list[dict[str, Any]]:
    """The ``messages`` array with the output schema stated in the system prompt, for JSON
    mode (``response_format: json_object``), which asks for JSON but not for a shape."""
    note = (
        "Answer with only a JSON object, no other text, that matches this JSON schema:\n"
        + json.dumps(_schema_dict(schema), ensure_ascii=False)
    )
    if wire and wire[0].get("role") == "system" and isinstance(wire[0].get("content"), str):
        first = {**wire[0], "content": f"{wire[0]['content']}\n\n{note}"}
        return [first, *wire[1:]]
    return [{"role": "system", "content": note}, *wire]


_TOOL_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def answer_tool_param(schema: Any, taken: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The tool whose arguments are the structured answer: its name and its definition."""
    parameters = _schema_dict(schema)
    title = parameters.get("title") if isinstance(schema, dict) else schema.__name__
    name = _TOOL_NAME.sub("_", str(title or "final_answer"))[:64] or "final_answer"
    if name in taken:
        name = ("final_" + name)[:64]
    parameters.setdefault("type", "object")
    tool = {
        "type": "function",
        "function": {
            "name": name,
            "description": (
                "Give your final answer by calling this tool: its arguments are the answer, "
                "in exactly this structure."
            ),
            "parameters": parameters,
        },
    }
    return name, tool


def answer_as_content(delta: ModelDelta, answer: str, indices: set[int]) -> ModelDelta:
    """``delta`` with the fragments of calls to the answer tool turned into content text.

    ``indices`` collects the indices of those calls over one response: only a call's first
    fragment names its tool.
    """
    calls = delta.tool_calls
    if not calls:
        return delta
    kept: list[ToolCallChunk] = []
    text: list[str] = []
    for chunk in calls:
        if chunk.name == answer:
            indices.add(chunk.index)
        if chunk.index in indices:
            text.append(chunk.arguments)
        else:
            kept.append(chunk)
    if len(kept) == len(calls):
        return delta
    content = (delta.content or "") + "".join(text)
    return ModelDelta(content or None, delta.reasoning, kept or None, delta.usage)


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def _reasoning(model: Any) -> str | None:
    extra = model.__pydantic_extra__
    if not extra:
        return None
    # llama.cpp, vLLM and DeepSeek send "reasoning_content"; others "reasoning".
    reasoning = extra.get("reasoning_content") or extra.get("reasoning") or None
    return reasoning if isinstance(reasoning, str) else None


def completion_delta(completion: Any) -> tuple[ModelDelta, str | None]:
    """A whole (non-streamed) ``ChatCompletion`` as one delta, and its finish reason."""
    content = reasoning = finish_reason = None
    calls: list[ToolCallChunk] | None = None
    if completion.choices:
        choice = completion.choices[0]
        finish_reason = choice.finish_reason
        message = choice.message
        content = message.content or message.refusal or None
        reasoning = _reasoning(message)
        if message.tool_calls:
            calls = []
            for index, call in enumerate(message.tool_calls):
                function = getattr(call, "function", None)
                if function is None:  # a custom (non-function) tool call: not ours
                    continue
                calls.append(ToolCallChunk(index, call.id, function.name, function.arguments or ""))
            calls = calls or None
    usage = usage_from_openai(completion.usage) if completion.usage is not None else None
    return ModelDelta(content, reasoning, calls, usage), finish_reason


def usage_from_openai(usage: Any) -> Usage:
    """Translate a ``CompletionUsage`` (prompt tokens include cached and audio tokens)."""
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    result = Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0)
    if prompt is not None:
        result.cache_read_tokens = prompt.cached_tokens or 0
        result.cache_write_tokens = getattr(prompt, "cache_write_tokens", None) or 0
        result.audio_input_tokens = prompt.audio_tokens or 0
    if completion is not None:
        result.reasoning_tokens = completion.reasoning_tokens or 0
        result.audio_output_tokens = completion.audio_tokens or 0
    return result


class ChunkTranslator:
    """Turns the chunks of one streamed completion into `ModelDelta` values.

    One translator per call: it keeps the tool-call index map of that stream. Fragments of a
    tool call keep the index the server gave them, except when a server reuses an index for a
    call with a new id (some OpenAI-compatible servers number every call 0): that call gets
    the next free index, so that the run loop does not glue two calls together.
    """

    __slots__ = ("_alias", "_by_id", "_owner", "finish_reason")

    def __init__(self) -> None:
        self._by_id: dict[str, int] = {}
        self._owner: dict[int, str] = {}
        self._alias: dict[int | None, int] = {}
        self.finish_reason: str | None = None

    def delta(self, chunk: Any) -> ModelDelta | None:
        """The delta of one chunk, or None when it carries nothing (a role-only chunk)."""
        # Fields are read from the pydantic models' __dict__: attribute access on the SDK's
        # models costs several times a dict lookup, and this runs once per streamed token.
        fields = chunk.__dict__
        choices = fields.get("choices")
        usage = fields.get("usage")
        content = reasoning = None
        calls = None
        if choices:
            choice = choices[0].__dict__
            delta_model = choice["delta"]
            delta = delta_model.__dict__
            content = delta.get("content") or None
            if content is None:
                refusal = delta.get("refusal")
                if refusal:
                    content = refusal
            if delta_model.__pydantic_extra__:
                reasoning = _reasoning(delta_model)
            raw_calls = delta.get("tool_calls")
            if raw_calls:
                calls = self._tool_calls(raw_calls)
            finish_reason = choice.get("finish_reason")
            if finish_reason is not None:
                self.finish_reason = finish_reason
        if usage is not None:
            return ModelDelta(content, reasoning, calls, usage_from_openai(usage))
        if content is None and reasoning is None and calls is None:
            return None
        return ModelDelta(content, reasoning, calls)

    def _tool_calls(self, raw_calls: Sequence[Any]) -> list[ToolCallChunk]:
        chunks = []
        for raw in raw_calls:
            function = raw.function
            if function is not None:
                name = function.name or None
                arguments = function.arguments or ""
            else:
                name = None
                arguments = ""
            call_id = raw.id or None
            chunks.append(ToolCallChunk(self._index(raw.index, call_id), call_id, name, arguments))
        return chunks

    def _index(self, raw: int | None, call_id: str | None) -> int:
        if call_id is None:
            known = self._alias.get(raw)
            if known is not None:
                return known
            return raw if raw is not None else max(self._owner, default=0)
        known = self._by_id.get(call_id)
        if known is None:
            if raw is not None and raw not in self._owner:
                known = raw
            else:
                known = max(self._owner, default=-1) + 1
            self._by_id[call_id] = known
            self._owner[known] = call_id
        self._alias[raw] = known
        return known
