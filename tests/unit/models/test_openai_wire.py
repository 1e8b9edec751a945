"""The Chat Completions translation on its own: SDK chunk objects in, deltas out; messages in,
request dicts out."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from pilothouse.media import Audio, Image
from pilothouse.models import Message, ToolCall
from pilothouse.models.base import ResponseAssembler
from pilothouse.models.openai_wire import (
    ChunkTranslator,
    message_param,
    response_format_param,
)
from pilothouse.run.metrics import Usage


def sdk_chunk(delta: dict[str, Any] | None = None, **fields: Any) -> ChatCompletionChunk:
    # construct(), like the SDK's stream parser: no validation, so servers' quirks get through.
    data: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [] if delta is None else [{"index": 0, "delta": delta}],
        **fields,
    }
    return ChatCompletionChunk.construct(**data)


def test_content_and_usage_in_the_same_chunk_are_both_kept() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    delta = ChunkTranslator().delta(sdk_chunk({"content": "end"}, usage=usage))
    assert delta is not None
    assert delta.content == "end"
    assert delta.usage == Usage(input_tokens=3, output_tokens=1)


def test_chunks_without_anything_to_say_give_none() -> None:
    translator = ChunkTranslator()
    assert translator.delta(sdk_chunk({"role": "assistant", "content": ""})) is None
    assert translator.delta(sdk_chunk(None)) is None
    assert translator.delta(sdk_chunk({"reasoning_content": {"not": "text"}})) is None


def test_tool_calls_without_index_or_with_a_reused_index_are_told_apart() -> None:
    translator = ChunkTranslator()
    assembler = ResponseAssembler()
    for delta in (
        {"tool_calls": [{"index": None, "id": "a", "function": {"name": "f", "arguments": "{"}}]},
        {"tool_calls": [{"index": None, "function": {"arguments": "}"}}]},
        {"tool_calls": [{"index": None, "id": "b", "function": {"name": "g", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "h", "arguments": "{"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
    ):
        result = translator.delta(sdk_chunk(delta))
        assert result is not None
        assembler.add(result)
    calls = assembler.response().tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("a", "f", "{}"),
        ("b", "g", "{}"),
        ("c", "h", "{}"),
    ]


def test_a_call_repeating_its_id_on_every_fragment_stays_one_call() -> None:
    translator = ChunkTranslator()
    assembler = ResponseAssembler()
    for args in ('{"x"', ": 1}"):
        fragment = {"index": 0, "id": "same", "function": {"name": "f", "arguments": args}}
        result = translator.delta(sdk_chunk({"tool_calls": [fragment]}))
        assert result is not None
        assembler.add(result)
    (call,) = assembler.response().tool_calls
    assert call.parsed_arguments() == {"x": 1}


def test_assistant_message_with_dict_arguments_sends_a_json_string() -> None:
    message = Message(
        role="assistant",
        content="Checking.",
        tool_calls=[ToolCall(name="f", arguments={"n": 1, "s": "é"}, id="call_9")],
    )
    assert message_param(message) == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "f", "arguments": '{"n": 1, "s": "é"}'},
            }
        ],
    }


def test_an_empty_assistant_turn_is_sent_with_empty_text_not_null() -> None:
    assert message_param(Message(role="assistant", content=None)) == {
        "role": "assistant",
        "content": "",
    }


def test_user_content_parts_are_kept_and_media_appended() -> None:
    message = Message(
        role="user",
        content=[{"type": "text", "text": "a"}, "b"],
        images=[Image(url="data:image/png;base64,AAAA")],
    )
    assert message_param(message)["content"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]


def test_jpg_format_is_sent_as_the_jpeg_mime_type() -> None:
    part = message_param(
        Message(role="user", content="", images=[Image(content=b"xyz", format="jpg")])
    )["content"][0]
    assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_audio_format_given_as_a_mime_type_is_understood() -> None:
    part = message_param(
        Message(role="user", content=None, audio=[Audio(content=b"...", format="audio/mpeg")])
    )["content"][0]
    assert part["input_audio"]["format"] == "mp3"


def test_media_on_a_tool_message_is_refused() -> None:
    message = Message(role="tool", content="x", tool_call_id="c", images=[Image(url="http://i")])
    with pytest.raises(ValueError, match="user messages only"):
        message_param(message)


def test_a_dict_output_schema_is_sent_as_is_without_strict_mode() -> None:
    schema = {"title": "My Answer!", "type": "object", "properties": {"a": {"type": "integer"}}}
    assert response_format_param(schema) == {
        "type": "json_schema",
        "json_schema": {"name": "My_Answer_", "schema": schema, "strict": False},
    }
    with pytest.raises(TypeError, match="output_schema"):
        response_format_param("not a schema")
