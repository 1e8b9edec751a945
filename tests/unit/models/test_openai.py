"""OpenAIChat / OpenAILike against canned HTTP: the real SDK parses canned SSE bodies served by
an ``httpx2.MockTransport``; the tests check the exact request JSON and the deltas and errors."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel

from pilothouse.exceptions import ModelProviderError
from pilothouse.media import Audio, File, Image, Video
from pilothouse.models import Message, ModelDelta, ModelRequest, ToolCall, ToolDefinition
from pilothouse.models.openai import OpenAIChat, OpenAILike
from pilothouse.run.metrics import Usage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 16
PDF = b"%PDF-1.4\n%fake\n"

Responder = httpx2.Response | Callable[[httpx2.Request], httpx2.Response]


class FakeServer:
    """Serves the queued responses in order and records every request."""

    def __init__(self, *responses: Responder) -> None:
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not self.responses:
            raise AssertionError("unexpected extra request")
        response = self.responses.pop(0)
        return response(request) if callable(response) else response

    def http_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler))

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-5-mini",
        "choices": [],
    }
    if delta is not None or finish is not None:
        data["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        data["usage"] = usage
    return data


def frag(index: int, id: str | None = None, name: str | None = None, args: str | None = None):  # type: ignore[no-untyped-def]
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    call: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        call["id"] = id
        call["type"] = "function"
    return call


def usage(prompt: int = 10, completion: int = 5, **details: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        **details,
    }


def sse(*chunks: dict[str, Any], done: bool = True) -> httpx2.Response:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    if done:
        body += "data: [DONE]\n\n"
    return httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=body.encode()
    )


def text_stream(*pieces: str, tokens: tuple[int, int] = (10, 5)) -> httpx2.Response:
    return sse(
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": p}) for p in pieces),
        chunk({}, finish="stop"),
        chunk(usage=usage(*tokens)),
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any):  # type: ignore[no-untyped-def]
    return httpx2.Response(
        status,
        headers={"content-type": "application/json", **(headers or {})},
        json={"error": {"message": message, "type": "invalid_request_error", **extra}},
    )


def model(server: FakeServer, cls: type[OpenAIChat] = OpenAIChat, **kwargs: Any) -> OpenAIChat:
    kwargs.setdefault("client_params", {"http_client": server.http_client()})
    if cls is OpenAILike:
        kwargs.setdefault("base_url", "http://127.0.0.1:9/v1")
        return OpenAILike(kwargs.pop("id", "local-model"), **kwargs)
    kwargs.setdefault("api_key", "sk-test")
    return cls(kwargs.pop("id", "gpt-5-mini"), **kwargs)


async def collect(
    m: OpenAIChat, messages: list[Message] | None = None, request: ModelRequest | None = None
) -> list[ModelDelta]:
    messages = messages or [Message(role="user", content="hi")]
    return [d async for d in m.stream(messages, request or ModelRequest())]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENAI_CUSTOM_HEADERS", raising=False)


# ---- text streams ----------------------------------------------------------------------------


async def test_text_stream_yields_each_piece_then_usage_and_sends_a_streaming_request() -> None:
    server = FakeServer(text_stream("Hel", "lo", "!"))
    deltas = await collect(model(server))

    assert [d.content for d in deltas if d.content] == ["Hel", "lo", "!"]
    # The role-only and finish chunks carry nothing and are not yielded.
    assert len(deltas) == 4
    assert deltas[-1].usage == Usage(input_tokens=10, output_tokens=5)
    request = server.requests[0]
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert server.bodies[0] == {
        "model": "gpt-5-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_response_collects_the_stream_into_one_answer() -> None:
    server = FakeServer(text_stream("Hello", " world"))
    response = await model(server).response([Message(role="user", content="hi")])
    assert response.content == "Hello world"
    assert response.tool_calls == []
    assert response.usage == Usage(input_tokens=10, output_tokens=5)


async def test_reasoning_content_deltas_become_reasoning() -> None:
    server = FakeServer(
        sse(
            chunk({"role": "assistant", "reasoning_content": "Let me "}),
            chunk({"reasoning_content": "think."}),
            chunk({"reasoning": "More."}),
            chunk({"content": "42"}),
            chunk(usage=usage()),
        )
    )
    deltas = await collect(model(server))
    assert [d.reasoning for d in deltas if d.reasoning] == ["Let me ", "think.", "More."]
    assert [d.content for d in deltas if d.content] == ["42"]


async def test_refusal_is_reported_as_content() -> None:
    server = FakeServer(sse(chunk({"refusal": "I can't help with that."}), chunk(usage=usage())))
    deltas = await collect(model(server))
    assert deltas[0].content == "I can't help with that."


async def test_usage_details_map_to_cache_reasoning_and_audio_tokens() -> None:
    details = usage(
        1200,
        300,
        prompt_tokens_details={"cached_tokens": 1024, "audio_tokens": 7, "cache_write_tokens": 3},
        completion_tokens_details={"reasoning_tokens": 256, "audio_tokens": 11},
    )
    server = FakeServer(sse(chunk({"content": "ok"}), chunk(usage=details)))
    deltas = await collect(model(server))
    assert deltas[-1].usage == Usage(
        input_tokens=1200,
        output_tokens=300,
        cache_read_tokens=1024,
        cache_write_tokens=3,
        reasoning_tokens=256,
        audio_input_tokens=7,
        audio_output_tokens=11,
    )


async def test_a_stream_cut_at_the_token_limit_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(sse(chunk({"content": "Once upon"}, finish="length"), chunk(usage=usage())))
    with caplog.at_level("WARNING", logger="pilothouse"):
        await collect(model(server))
    assert "token limit" in caplog.text


async def test_a_stream_without_any_chunk_is_an_error_not_an_empty_answer() -> None:
    # What a server that fails after sending its headers looks like.
    server = FakeServer(sse(done=False))
    with pytest.raises(ModelProviderError, match="without sending anything") as info:
        await collect(model(server))
    assert info.value.retryable is True


async def test_a_stream_ending_without_a_finish_reason_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FakeServer(sse(chunk({"content": "The answer is"}), done=False))
    with caplog.at_level("WARNING", logger="pilothouse"):
        deltas = await collect(model(server))
    assert [d.content for d in deltas] == ["The answer is"]
    assert "without a finish reason" in caplog.text


def completion_json(message: dict[str, Any], finish: str = "stop") -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1,
            "model": "smollm2",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage(42, 7),
        },
    )


async def test_streaming_false_asks_for_a_whole_response_and_yields_it_once() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Weather needs the tool.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_time", "arguments": "{}"},
            },
        ],
    }
    server = FakeServer(completion_json(message, "tool_calls"))
    m = model(server, OpenAILike, streaming=False)
    (delta,) = await collect(m, request=ModelRequest(tools=[WEATHER], tool_choice="auto"))
    body = server.bodies[0]
    assert "stream" not in body and "stream_options" not in body
    assert body["tool_choice"] == "auto"
    assert delta.content is None and delta.reasoning == "Weather needs the tool."
    assert [(c.index, c.id, c.name, c.arguments) for c in delta.tool_calls or ()] == [
        (0, "call_1", "get_weather", '{"city": "Paris"}'),
        (1, "call_2", "get_time", "{}"),
    ]
    assert delta.usage == Usage(input_tokens=42, output_tokens=7)


async def test_streaming_false_maps_errors_the_same_way() -> None:
    server = FakeServer(error_response(429, "busy", {"retry-after": "1"}))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server, streaming=False))
    assert (info.value.status_code, info.value.retry_after, info.value.retryable) == (
        429,
        1.0,
        True,
    )


# ---- tool calls ------------------------------------------------------------------------------


def fragmented_call() -> httpx2.Response:
    return sse(
        chunk({"role": "assistant", "tool_calls": [frag(0, "call_1", "get_weather", "")]}),
        chunk({"tool_calls": [frag(0, args='{"ci')]}),
        chunk({"tool_calls": [frag(0, args='ty": "Par')]}),
        chunk({"tool_calls": [frag(0, args='is"}')]}),
        chunk({}, finish="tool_calls"),
        chunk(usage=usage()),
    )


async def test_tool_call_arguments_arriving_in_fragments_yield_one_chunk_per_fragment() -> None:
    server = FakeServer(fragmented_call(), fragmented_call())
    m = model(server)
    deltas = await collect(m)
    fragments = [c for d in deltas for c in d.tool_calls or ()]
    assert [(c.index, c.id, c.name, c.arguments) for c in fragments] == [
        (0, "call_1", "get_weather", ""),
        (0, None, None, '{"ci'),
        (0, None, None, 'ty": "Par'),
        (0, None, None, 'is"}'),
    ]

    response = await m.response([Message(role="user", content="weather?")])
    assert len(response.tool_calls) == 1
    call = response.tool_calls[0]
    assert (call.id, call.name, call.parsed_arguments()) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )


async def test_two_parallel_tool_calls_keep_their_indices() -> None:
    server = FakeServer(
        sse(
            chunk({"tool_calls": [frag(0, "call_a", "get_weather", '{"city":')]}),
            chunk({"tool_calls": [frag(1, "call_b", "get_time", '{"tz":')]}),
            chunk({"tool_calls": [frag(0, args=' "Paris"}')]}),
            chunk({"tool_calls": [frag(1, args=' "CET"}')]}),
            chunk({}, finish="tool_calls"),
            chunk(usage=usage()),
        )
    )
    response = await model(server).response([Message(role="user", content="both")])
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"tz": "CET"}),
    ]


async def test_calls_with_new_ids_on_a_reused_index_are_kept_apart() -> None:
    # Some OpenAI-compatible servers send every whole call at index 0.
    server = FakeServer(
        sse(
            chunk({"tool_calls": [frag(0, "call_a", "get_weather", '{"city": "Paris"}')]}),
            chunk({"tool_calls": [frag(0, "call_b", "get_weather", '{"city": "Rome"}')]}),
            chunk(usage=usage()),
        )
    )
    response = await model(server).response([Message(role="user", content="both")])
    assert [(c.id, c.parsed_arguments()) for c in response.tool_calls] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {"city": "Rome"}),
    ]


WEATHER = ToolDefinition(
    name="get_weather",
    description="Get the weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
TIME = ToolDefinition(name="get_time", description=None, parameters={"type": "object"})


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
async def test_tools_and_tool_choice_are_sent_in_the_chat_completions_shape(
    choice: str, expected: object
) -> None:
    server = FakeServer(text_stream("ok"))
    await collect(model(server), request=ModelRequest(tools=[WEATHER, TIME], tool_choice=choice))
    body = server.bodies[0]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather for a city.",
                "parameters": WEATHER.parameters,
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    assert body["tool_choice"] == expected


async def test_no_tools_means_no_tools_and_no_tool_choice_fields() -> None:
    server = FakeServer(text_stream("ok"))
    await collect(model(server), request=ModelRequest(tools=[], tool_choice="auto"))
    assert "tools" not in server.bodies[0] and "tool_choice" not in server.bodies[0]


# ---- messages --------------------------------------------------------------------------------


async def test_conversation_with_tool_round_trip_is_sent_as_chat_messages() -> None:
    server = FakeServer(text_stream("It is sunny."))
    call = ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", content=None, tool_calls=[call]),
        Message(role="tool", content="sunny", tool_call_id="call_1", name="get_weather"),
        Message(role="assistant", content="Sunny."),
        Message(role="user", content="Thanks"),
    ]
    await collect(model(server), messages)
    assert server.bodies[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "Thanks"},
    ]


async def test_user_media_become_image_audio_and_file_parts(tmp_path: Path) -> None:
    png_path = tmp_path / "chart.png"
    png_path.write_bytes(PNG)
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(PDF)
    user = Message(
        role="user",
        content="Describe these.",
        images=[
            Image(url="https://example.com/cat.jpg", detail="low"),
            Image(content=PNG),
            Image(filepath=png_path, detail="high"),
        ],
        audio=[Audio(content=WAV), Audio(content=b"ID3rest", format="mp3")],
        files=[File(filepath=pdf_path), File(content=PDF, name="notes.pdf")],
    )
    server = FakeServer(text_stream("ok"))
    await collect(model(server), [user])

    png64 = base64.b64encode(PNG).decode()
    pdf64 = base64.b64encode(PDF).decode()
    assert server.bodies[0]["messages"][0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe these."},
            {
                "type": "image_url",
                "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"},
            },
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png64}"}},
            {
                "type": "image_url",
                "image_url": {"url": f"data:image/png;base64,{png64}", "detail": "high"},
            },
            {
                "type": "input_audio",
                "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"},
            },
            {
                "type": "input_audio",
                "input_audio": {"data": base64.b64encode(b"ID3rest").decode(), "format": "mp3"},
            },
            {
                "type": "file",
                "file": {
                    "file_data": f"data:application/pdf;base64,{pdf64}",
                    "filename": "report.pdf",
                },
            },
            {
                "type": "file",
                "file": {
                    "file_data": f"data:application/pdf;base64,{pdf64}",
                    "filename": "notes.pdf",
                },
            },
        ],
    }


async def test_video_is_refused_before_any_request() -> None:
    server = FakeServer()
    user = Message(role="user", content="watch", videos=[Video(content=b"\x00\x00\x00\x18ftyp")])
    with pytest.raises(ModelProviderError, match="do not take video") as info:
        await collect(model(server), [user])
    assert info.value.retryable is False
    assert server.requests == []


@pytest.mark.parametrize(
    ("media", "match"),
    [
        ({"images": [Image(content=b"not an image")]}, "format='png'"),
        ({"audio": [Audio(content=b"????")]}, "format='wav'"),
        ({"audio": [Audio(content=b"fLaC", format="flac")]}, "wav or mp3"),
        ({"audio": [Audio(url="https://example.com/a.wav")]}, "does not download"),
        ({"files": [File(url="https://example.com/a.pdf")]}, "not as URLs"),
    ],
)
async def test_media_openai_cannot_take_fail_with_a_clear_message(
    media: dict[str, Any], match: str
) -> None:
    server = FakeServer()
    with pytest.raises(ModelProviderError, match=match) as info:
        await collect(model(server), [Message(role="user", content="x", **media)])
    assert info.value.retryable is False and server.requests == []


# ---- request options -------------------------------------------------------------------------


class Weather(BaseModel):
    city: str
    temperature_c: float
    note: str | None = None


async def test_output_schema_becomes_a_strict_json_schema_response_format() -> None:
    server = FakeServer(text_stream('{"city": "Paris", "temperature_c": 21, "note": null}'))
    await collect(model(server), request=ModelRequest(output_schema=Weather))
    fmt = server.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Weather"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    # Strict mode: every property required, no others allowed.
    assert schema["required"] == ["city", "temperature_c", "note"]
    assert schema["additionalProperties"] is False


async def test_sampling_options_and_request_params_are_sent() -> None:
    server = FakeServer(text_stream("ok"))
    m = model(
        server,
        temperature=0,
        top_p=0.5,
        seed=7,
        stop=["\n\n"],
        max_tokens=64,
        request_params={"reasoning_effort": "low", "parallel_tool_calls": False},
    )
    await collect(m)
    body = server.bodies[0]
    assert body["temperature"] == 0 and body["top_p"] == 0.5 and body["seed"] == 7
    assert body["stop"] == ["\n\n"]
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert body["reasoning_effort"] == "low" and body["parallel_tool_calls"] is False


async def test_openai_chat_sends_max_tokens_to_other_servers() -> None:
    server = FakeServer(text_stream("ok"))
    await collect(model(server, base_url="http://127.0.0.1:8080/v1", max_tokens=16))
    body = server.bodies[0]
    assert body["max_tokens"] == 16 and "max_completion_tokens" not in body


async def test_openai_like_sends_max_tokens_and_a_placeholder_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An OpenAI key in the environment must not be sent to another server.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    server = FakeServer(text_stream("ok"))
    m = model(server, OpenAILike, max_tokens=32, request_params={"top_k": 40})
    await collect(m)
    request = server.requests[0]
    assert request.url == "http://127.0.0.1:9/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer not-needed"
    body = server.bodies[0]
    assert body["model"] == "local-model"
    assert body["max_tokens"] == 32 and "max_completion_tokens" not in body
    assert body["top_k"] == 40


async def test_openai_like_sends_the_given_key_and_reports_its_provider() -> None:
    server = FakeServer(text_stream("ok"))
    m = model(server, OpenAILike, api_key="sk-local", provider="my-vllm")
    await collect(m)
    assert server.requests[0].headers["authorization"] == "Bearer sk-local"
    assert (m.provider, m.name) == ("my-vllm", "OpenAILike")


async def test_sdk_environment_variables_are_used_when_nothing_is_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    server = FakeServer(text_stream("ok"))
    m = OpenAIChat("smollm2", client_params={"http_client": server.http_client()})
    await collect(m)
    request = server.requests[0]
    assert request.url == "http://127.0.0.1:9999/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-from-env"


async def test_a_missing_api_key_says_how_to_set_one() -> None:
    m = OpenAIChat("gpt-5-mini")
    with pytest.raises(ModelProviderError, match="OPENAI_API_KEY") as info:
        await collect(m)
    assert info.value.retryable is False


def test_request_params_may_not_replace_what_the_adapter_sends() -> None:
    with pytest.raises(ValueError, match="stream"):
        OpenAIChat("gpt-5-mini", request_params={"stream": False})
    with pytest.raises(ValueError, match="base_url"):
        OpenAILike("m", base_url="")
    with pytest.raises(ValueError, match="id"):
        OpenAIChat("")


# ---- errors ----------------------------------------------------------------------------------


async def test_429_with_retry_after_is_retryable_with_the_delay() -> None:
    server = FakeServer(error_response(429, "Rate limit reached", {"retry-after": "7"}))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server))
    error = info.value
    assert (error.status_code, error.retry_after, error.retryable) == (429, 7.0, True)
    assert "Rate limit reached" in str(error)
    assert (error.model_name, error.model_id) == ("OpenAIChat", "gpt-5-mini")
    # The SDK's own retries are off: the run loop decides.
    assert len(server.requests) == 1


async def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    server = FakeServer(error_response(429, "slow down", headers))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server))
    assert info.value.retry_after == 1.5


async def test_401_says_to_set_the_api_key_and_is_not_retryable() -> None:
    server = FakeServer(error_response(401, "Incorrect API key provided: sk-test."))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server))
    error = info.value
    assert (error.status_code, error.retryable) == (401, False)
    assert "Incorrect API key provided" in str(error)
    assert "OPENAI_API_KEY" in str(error) and "api_key=" in str(error)


async def test_400_names_the_parameter_the_server_rejected() -> None:
    server = FakeServer(
        error_response(
            400,
            "Unsupported value: 'temperature' does not support 0 with this model.",
            param="temperature",
            code="unsupported_value",
        )
    )
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server, temperature=0))
    error = info.value
    assert (error.status_code, error.retryable) == (400, False)
    assert "'temperature' does not support 0" in str(error)
    assert "parameter 'temperature'" in str(error)


async def test_404_names_the_unknown_model_id() -> None:
    server = FakeServer(error_response(404, "The model `gpt-9` does not exist"))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server, id="gpt-9"))
    error = info.value
    assert (error.status_code, error.retryable) == (404, False)
    assert "'gpt-9'" in str(error) and "does not exist" in str(error)


async def test_403_is_not_retryable() -> None:
    server = FakeServer(error_response(403, "Project does not have access"))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server))
    assert (info.value.status_code, info.value.retryable) == (403, False)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(status: int) -> None:
    server = FakeServer(error_response(status, "The server had an error"))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server))
    assert (info.value.status_code, info.value.retryable) == (status, True)
    assert info.value.retry_after is None
    assert len(server.requests) == 1


async def test_a_non_json_error_body_is_still_reported() -> None:
    server = FakeServer(httpx2.Response(502, content=b"<html>Bad Gateway</html>"))
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server))
    assert info.value.status_code == 502 and "Bad Gateway" in str(info.value)


async def test_connection_error_is_retryable_without_status() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)

    server = FakeServer(refuse)
    with pytest.raises(ModelProviderError) as info:
        await collect(model(server, base_url="http://127.0.0.1:9/v1"))
    error = info.value
    assert (error.status_code, error.retryable) == (None, True)
    assert "could not connect to http://127.0.0.1:9/v1" in str(error)


async def test_timeout_is_retryable() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    server = FakeServer(slow)
    with pytest.raises(ModelProviderError, match="timed out") as info:
        await collect(model(server))
    assert (info.value.status_code, info.value.retryable) == (None, True)


async def test_an_error_inside_the_stream_is_raised_after_the_deltas_before_it() -> None:
    server = FakeServer(
        sse(
            chunk({"content": "Par"}),
            {"error": {"message": "upstream overloaded", "type": "server_error"}},
        )
    )
    received: list[ModelDelta] = []
    with pytest.raises(ModelProviderError, match="upstream overloaded") as info:
        async for delta in model(server).stream(
            [Message(role="user", content="x")], ModelRequest()
        ):
            received.append(delta)
    assert [d.content for d in received] == ["Par"]
    assert info.value.retryable is True and info.value.status_code is None


async def test_a_client_error_inside_the_stream_is_not_retryable() -> None:
    server = FakeServer(sse({"error": {"message": "context too long", "code": 400}}))
    with pytest.raises(ModelProviderError, match="context too long") as info:
        await collect(model(server))
    assert (info.value.status_code, info.value.retryable) == (400, False)


# ---- clients, laziness, price ----------------------------------------------------------------


def test_one_client_per_event_loop() -> None:
    server = FakeServer(text_stream("a"), text_stream("b"), text_stream("c"))
    m = model(server)
    loops: list[asyncio.AbstractEventLoop] = []

    async def calls(count: int) -> list[object]:
        loops.append(asyncio.get_running_loop())
        clients = []
        for _ in range(count):
            await collect(m)
            clients.append(m._clients[asyncio.get_running_loop()])
        return clients

    first, second = asyncio.run(calls(2))
    assert first is second
    (third,) = asyncio.run(calls(1))
    assert third is not first
    # The first loop is closed but still referenced here: its client was dropped anyway.
    assert loops[0].is_closed() and loops[0] not in m._clients
    assert m._clients.get(loops[1]) is third


def test_importing_and_constructing_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from pilothouse.models.openai import OpenAIChat, OpenAILike\n"
        "OpenAIChat('gpt-5-mini', temperature=0); OpenAILike('m', base_url='http://x/v1')\n"
        "heavy = [m for m in ('openai', 'genai_prices', 'httpx2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_price_comes_from_genai_prices_for_openai_only() -> None:
    usage_ = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    cost = OpenAIChat("gpt-5-mini").price(usage_)
    assert cost is not None and cost > 0
    # The same model id served elsewhere is not billed at OpenAI's rates.
    assert OpenAIChat("gpt-5-mini", base_url="http://127.0.0.1:8000/v1").price(usage_) is None
    assert OpenAIChat("smollm2").price(usage_) is None
    assert OpenAILike("gpt-5-mini", base_url="http://127.0.0.1:8000/v1").price(usage_) is None
    groq = OpenAILike("llama-3.3-70b-versatile", base_url="http://x/v1", provider="groq")
    assert groq.price(usage_) is not None


def test_price_is_none_when_openai_base_url_points_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert OpenAIChat("gpt-5-mini").price(Usage(input_tokens=10, output_tokens=10)) is None
    monkeypatch.setenv("OPENAI_BASE_URL", "https://eu.api.openai.com/v1")
    assert OpenAIChat("gpt-5-mini").price(Usage(input_tokens=10, output_tokens=10)) is not None
