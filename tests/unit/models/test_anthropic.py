"""Claude on the real ``anthropic`` SDK, against canned Messages API streams.

The SDK talks to an ``httpx2.MockTransport``: real request building and real SSE parsing, with
canned bodies. Each test checks the wire payload the adapter sent and what it yielded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel

from pilothouse import Agent, RunStatus
from pilothouse.exceptions import ModelProviderError
from pilothouse.media import Audio, File, Image, Video
from pilothouse.models import Message, ModelDelta, ModelRequest, ToolCall, ToolDefinition
from pilothouse.models.anthropic import Claude
from pilothouse.run.metrics import Usage

# ---------------------------------------------------------------------------------------------
# A fake Messages API endpoint
# ---------------------------------------------------------------------------------------------

Reply = httpx2.Response | Callable[[httpx2.Request], httpx2.Response] | BaseException


def sse(*events: Mapping[str, Any]) -> bytes:
    """An event-stream body: one ``event:``/``data:`` pair per event, named by its type."""
    return "".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events
    ).encode()


def stream_response(*events: Mapping[str, Any]) -> httpx2.Response:
    """A 200 response streaming these events."""
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse(*events))


def error_response(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> httpx2.Response:
    """An error response in the Messages API's shape."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return httpx2.Response(status, headers=dict(headers or {}), json=body)


def message_start(
    input_tokens: int = 10,
    *,
    cache_read: int | None = None,
    cache_write: int | None = None,
    model: str = "claude-sonnet-4-6",
) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": 1}
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    if cache_write is not None:
        usage["cache_creation_input_tokens"] = cache_write
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }


def text_block(index: int, *pieces: str) -> list[dict[str, Any]]:
    """A text content block streamed in pieces."""
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        },
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": p},
            }
            for p in pieces
        ),
        {"type": "content_block_stop", "index": index},
    ]


def tool_block(index: int, call_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    """A tool_use block whose input arrives as input_json_delta fragments."""
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
        },
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": f},
            }
            for f in fragments
        ),
        {"type": "content_block_stop", "index": index},
    ]


def thinking_block(index: int, *pieces: str, signature: str = "sig-1") -> list[dict[str, Any]]:
    """A signed thinking block streamed in pieces."""
    return [
        {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "thinking_delta", "thinking": p},
            }
            for p in pieces
        ),
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "signature_delta", "signature": signature},
        },
        {"type": "content_block_stop", "index": index},
    ]


def message_end(
    output_tokens: int = 5, stop_reason: str = "end_turn", **usage: Any
) -> list[dict[str, Any]]:
    return [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens, **usage},
        },
        {"type": "message_stop"},
    ]


def answer(
    *blocks: Iterable[dict[str, Any]],
    input_tokens: int = 10,
    output_tokens: int = 5,
    stop_reason: str = "end_turn",
    **start: Any,
) -> httpx2.Response:
    """A whole streamed answer made of these content blocks."""
    events = [message_start(input_tokens, **start)]
    for block in blocks:
        events.extend(block)
    events.extend(message_end(output_tokens, stop_reason))
    return stream_response(*events)


class FakeAnthropic:
    """A Messages API endpoint that answers from a list and records what it was sent."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx2.Request] = []

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received, in order."""
        return [json.loads(r.content) for r in self.requests]

    @property
    def body(self) -> dict[str, Any]:
        """The last JSON body received."""
        return self.bodies[-1]

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not self.replies:
            raise AssertionError(f"unexpected request: {request.content!r}")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def client_params(self, **more: Any) -> dict[str, Any]:
        """``client_params`` for a Claude that talks to this fake."""
        transport = httpx2.MockTransport(self.handle)
        return {"http_client": httpx2.AsyncClient(transport=transport), **more}

    def claude(self, id: str = "claude-sonnet-4-6", **settings: Any) -> Claude:
        """A Claude model wired to this fake."""
        settings.setdefault("api_key", "sk-test")
        settings.setdefault("base_url", "http://anthropic.test")
        return Claude(id=id, client_params=self.client_params(), **settings)


async def collect(
    model: Claude, messages: list[Message], request: ModelRequest | None = None
) -> list[ModelDelta]:
    return [d async for d in model.stream(messages, request or ModelRequest())]


WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolDefinition(name="get_time", description=None, parameters={})


def user(text: str) -> list[Message]:
    return [Message(role="system", content="Be brief."), Message(role="user", content=text)]


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


async def test_text_streams_piece_by_piece_with_usage_and_the_request_is_minimal() -> None:
    fake = FakeAnthropic(answer(text_block(0, "Hel", "lo", "!"), input_tokens=12, output_tokens=3))
    deltas = await collect(fake.claude(), user("Hi"))

    assert [d.content for d in deltas if d.content] == ["Hel", "lo", "!"]
    assert deltas[-1].usage == Usage(input_tokens=12, output_tokens=3)
    request = fake.requests[0]
    assert request.url == "http://anthropic.test/v1/messages"
    assert (
        request.headers["authorization"] == "Bearer sk-test"
        or request.headers.get("x-api-key") == "sk-test"
    )
    assert fake.body == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8192,
        "stream": True,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_sampling_settings_are_sent_only_when_given() -> None:
    fake = FakeAnthropic(answer(text_block(0, "ok")))
    model = fake.claude(
        max_tokens=64,
        temperature=0.0,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
        request_params={"metadata": {"user_id": "u1"}, "seed": 7},
    )
    await collect(model, user("Hi"))
    body = fake.body
    assert body["max_tokens"] == 64
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.0, 0.9, 5)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u1"}
    assert body["seed"] == 7


async def test_tool_use_fragments_keep_the_block_index_and_assemble() -> None:
    fake = FakeAnthropic(
        answer(
            text_block(0, "Let me check."),
            tool_block(1, "toolu_1", "get_weather", '{"ci', 'ty": "Pa', 'ris"}'),
            stop_reason="tool_use",
        )
    )
    model = fake.claude()
    deltas = await collect(model, user("Weather?"), ModelRequest(tools=[WEATHER]))

    chunks = [c for d in deltas for c in d.tool_calls or ()]
    assert (chunks[0].index, chunks[0].id, chunks[0].name, chunks[0].arguments) == (
        1,
        "toolu_1",
        "get_weather",
        "",
    )
    assert [c.arguments for c in chunks[1:]] == ['{"ci', 'ty": "Pa', 'ris"}']
    assert all(c.index == 1 for c in chunks)

    fake.replies.append(
        answer(
            text_block(0, "Checking."),
            tool_block(1, "toolu_1", "get_weather", '{"city": ', '"Paris"}'),
        )
    )
    response = await model.response(user("Weather?"), ModelRequest(tools=[WEATHER]))
    assert response.content == "Checking."
    [call] = response.tool_calls
    assert (call.id, call.name, call.parsed_arguments()) == (
        "toolu_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert fake.body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": WEATHER.parameters,
        }
    ]


async def test_two_tool_calls_in_one_answer() -> None:
    fake = FakeAnthropic(
        answer(
            tool_block(0, "toolu_a", "get_weather", '{"city": "Oslo"}'),
            tool_block(1, "toolu_b", "get_time", ""),
            stop_reason="tool_use",
        )
    )
    response = await fake.claude().response(user("Both"), ModelRequest(tools=[WEATHER, TIME]))
    assert [(c.id, c.name) for c in response.tool_calls] == [
        ("toolu_a", "get_weather"),
        ("toolu_b", "get_time"),
    ]
    assert response.tool_calls[0].parsed_arguments() == {"city": "Oslo"}
    assert response.tool_calls[1].parsed_arguments() == {}
    assert fake.body["tools"][1] == {
        "name": "get_time",
        "input_schema": {"type": "object", "properties": {}},
    }


async def test_a_tool_input_sent_whole_with_the_block_start_is_not_lost() -> None:
    events = [
        message_start(),
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_w",
                "name": "get_weather",
                "input": {"city": "Rome"},
            },
        },
        {"type": "content_block_stop", "index": 0},
        *message_end(stop_reason="tool_use"),
    ]
    fake = FakeAnthropic(stream_response(*events))
    response = await fake.claude().response(user("Rome?"), ModelRequest(tools=[WEATHER]))
    assert response.tool_calls[0].parsed_arguments() == {"city": "Rome"}


async def test_thinking_is_reasoning_and_its_signed_block_goes_back_with_the_tool_result() -> None:
    fake = FakeAnthropic(
        answer(
            thinking_block(0, "The user wants ", "the weather.", signature="sig-xyz"),
            tool_block(1, "toolu_t", "get_weather", '{"city": "Lima"}'),
            stop_reason="tool_use",
        ),
        answer(text_block(0, "Sunny.")),
    )
    model = fake.claude(thinking={"type": "enabled", "budget_tokens": 1024})
    deltas = await collect(model, user("Weather?"), ModelRequest(tools=[WEATHER]))
    assert "".join(d.reasoning or "" for d in deltas) == "The user wants the weather."
    assert fake.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}

    history = [
        *user("Weather?"),
        Message(
            role="assistant",
            reasoning_content="The user wants the weather.",
            tool_calls=[ToolCall(name="get_weather", arguments={"city": "Lima"}, id="toolu_t")],
        ),
        Message(role="tool", content="sunny", tool_call_id="toolu_t", name="get_weather"),
    ]
    await collect(model, history, ModelRequest(tools=[WEATHER]))
    assistant = fake.body["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "sig-xyz"},
            {"type": "tool_use", "id": "toolu_t", "name": "get_weather", "input": {"city": "Lima"}},
        ],
    }


async def test_usage_counts_cache_reads_and_writes_and_thinking_tokens() -> None:
    events = [
        message_start(10, cache_read=20, cache_write=30),
        *text_block(0, "ok"),
        *message_end(7, output_tokens_details={"thinking_tokens": 4}),
    ]
    fake = FakeAnthropic(stream_response(*events))
    model = fake.claude(cache_system_prompt=True)
    response = await model.response(user("Hi"))
    assert response.usage == Usage(
        input_tokens=60,
        output_tokens=7,
        cache_read_tokens=20,
        cache_write_tokens=30,
        reasoning_tokens=4,
    )
    assert fake.body["system"] == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    ]


async def test_usage_comes_even_without_a_message_delta() -> None:
    fake = FakeAnthropic(
        stream_response(message_start(9), *text_block(0, "ok"), {"type": "message_stop"})
    )
    deltas = await collect(fake.claude(), user("Hi"))
    assert deltas[-1].usage == Usage(input_tokens=9, output_tokens=1)


# ---------------------------------------------------------------------------------------------
# Requests: history, tools, tool choice, media, output schema
# ---------------------------------------------------------------------------------------------


async def test_history_maps_tool_calls_and_results_into_blocks() -> None:
    fake = FakeAnthropic(answer(text_block(0, "Done.")))
    history = [
        Message(role="system", content="One."),
        Message(role="system", content="Two."),
        Message(role="user", content="Weather and time?"),
        Message(
            role="assistant",
            content="Checking both.",
            tool_calls=[
                ToolCall(name="get_weather", arguments='{"city": "Oslo"}', id="toolu_1"),
                ToolCall(name="get_time", arguments={}, id="toolu_2"),
            ],
        ),
        Message(role="tool", content="rain", tool_call_id="toolu_1", name="get_weather"),
        Message(
            role="tool",
            content="clock broken",
            tool_call_id="toolu_2",
            name="get_time",
            tool_call_error=True,
        ),
        Message(role="user", content="Thanks."),
    ]
    await collect(fake.claude(), history, ModelRequest(tools=[WEATHER, TIME], tool_choice="auto"))
    body = fake.body
    assert body["system"] == "One.\n\nTwo."
    assert body["tool_choice"] == {"type": "auto"}
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "clock broken",
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks."},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
async def test_tool_choice_mapping(choice: str, wire: dict[str, Any]) -> None:
    fake = FakeAnthropic(answer(text_block(0, "ok")))
    await collect(fake.claude(), user("Hi"), ModelRequest(tools=[WEATHER], tool_choice=choice))
    assert fake.body["tool_choice"] == wire


async def test_no_tools_means_no_tools_and_no_tool_choice() -> None:
    fake = FakeAnthropic(answer(text_block(0, "ok")))
    await collect(fake.claude(), user("Hi"), ModelRequest(tool_choice="auto"))
    assert "tools" not in fake.body and "tool_choice" not in fake.body


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PDF = b"%PDF-1.4\n%fake\n"


async def test_images_and_documents_become_blocks(tmp_path: Any) -> None:
    pdf_path = tmp_path / "report.pdf"
    pdf_path.write_bytes(PDF)
    fake = FakeAnthropic(answer(text_block(0, "ok")))
    message = Message(
        role="user",
        content="Look.",
        images=[Image(url="https://example.com/cat.jpg"), Image(content=PNG)],
        files=[
            File(filepath=pdf_path),
            File(url="https://example.com/paper.pdf"),
            File(content=b"plain words", name="notes.txt"),
        ],
    )
    await collect(fake.claude(), [message])
    b64 = __import__("base64").b64encode
    assert fake.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look."},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": b64(PNG).decode(),
                    },
                },
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": b64(PDF).decode(),
                    },
                },
                {
                    "type": "document",
                    "source": {"type": "url", "url": "https://example.com/paper.pdf"},
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "plain words"},
                    "title": "notes.txt",
                },
            ],
        }
    ]


@pytest.mark.parametrize(
    ("kind", "media", "words"),
    [
        ("audio", Audio(content=b"RIFF"), "cannot take audio"),
        ("videos", Video(url="https://example.com/v.mp4"), "cannot take video"),
        ("files", File(content=b"\x00\x01", name="data.bin"), "PDF documents"),
        ("images", Image(content=b"BM not a png", format="bmp"), "JPEG, PNG, GIF and WebP"),
    ],
)
async def test_media_the_api_cannot_take_is_a_clear_error_before_any_request(
    kind: str, media: Any, words: str
) -> None:
    fake = FakeAnthropic()
    message = Message(role="user", content="Here.", **{kind: [media]})
    with pytest.raises(ModelProviderError, match=words) as info:
        await collect(fake.claude(), [message])
    assert info.value.retryable is False
    assert fake.requests == []


class Weather(BaseModel):
    city: str
    degrees: int


async def test_output_schema_forces_an_answer_tool_whose_input_is_the_content() -> None:
    fake = FakeAnthropic(
        answer(tool_block(0, "toolu_ans", "Weather", '{"city": "Oslo", ', '"degrees": 4}'))
    )
    response = await fake.claude().response(user("Weather?"), ModelRequest(output_schema=Weather))
    assert Weather.model_validate_json(response.content) == Weather(city="Oslo", degrees=4)
    assert response.tool_calls == []
    body = fake.body
    assert body["tool_choice"] == {"type": "tool", "name": "Weather"}
    [tool] = body["tools"]
    assert tool["name"] == "Weather"
    assert tool["input_schema"]["properties"].keys() == {"city", "degrees"}


async def test_output_schema_with_tools_lets_the_model_call_its_tools_first() -> None:
    fake = FakeAnthropic(answer(tool_block(0, "toolu_w", "get_weather", '{"city": "Oslo"}')))
    request = ModelRequest(tools=[WEATHER], tool_choice="auto", output_schema=Weather)
    response = await fake.claude().response(user("Weather?"), request)
    assert [c.name for c in response.tool_calls] == ["get_weather"]
    assert response.content == ""
    assert fake.body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in fake.body["tools"]] == ["get_weather", "Weather"]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


async def raised(fake: FakeAnthropic, model: Claude | None = None) -> ModelProviderError:
    with pytest.raises(ModelProviderError) as info:
        await collect(model or fake.claude(), user("Hi"))
    return info.value


async def test_rate_limit_is_retryable_with_retry_after() -> None:
    fake = FakeAnthropic(error_response(429, "rate_limit_error", "slow down", {"retry-after": "7"}))
    error = await raised(fake)
    assert (error.status_code, error.retry_after, error.retryable) == (429, 7.0, True)
    assert "slow down" in error.message
    assert error.model_id == "claude-sonnet-4-6"


async def test_authentication_error_says_how_to_set_the_key() -> None:
    error = await raised(
        FakeAnthropic(error_response(401, "authentication_error", "invalid x-api-key"))
    )
    assert (error.status_code, error.retryable) == (401, False)
    assert "ANTHROPIC_API_KEY" in error.message and "api_key=" in error.message


async def test_bad_request_carries_the_servers_message() -> None:
    error = await raised(
        FakeAnthropic(error_response(400, "invalid_request_error", "messages: field required"))
    )
    assert (error.status_code, error.retryable) == (400, False)
    assert "messages: field required" in error.message


async def test_not_found_names_the_model() -> None:
    fake = FakeAnthropic(error_response(404, "not_found_error", "model: claude-nope"))
    error = await raised(fake, fake.claude("claude-nope"))
    assert (error.status_code, error.retryable) == (404, False)
    assert "'claude-nope'" in error.message


async def test_permission_denied_is_not_retryable() -> None:
    error = await raised(FakeAnthropic(error_response(403, "permission_error", "no access")))
    assert (error.status_code, error.retryable) == (403, False)
    assert "no access" in error.message


@pytest.mark.parametrize(("status", "kind"), [(529, "overloaded_error"), (500, "api_error")])
async def test_overloaded_and_server_errors_are_retryable(status: int, kind: str) -> None:
    error = await raised(FakeAnthropic(error_response(status, kind, "busy")))
    assert (error.status_code, error.retryable) == (status, True)


async def test_connection_error_is_retryable_without_status() -> None:
    error = await raised(FakeAnthropic(httpx2.ConnectError("connection refused")))
    assert (error.status_code, error.retryable) == (None, True)
    assert "http://anthropic.test" in error.message


async def test_timeout_is_retryable() -> None:
    error = await raised(FakeAnthropic(httpx2.ReadTimeout("too slow")))
    assert (error.status_code, error.retryable) == (None, True)
    assert "timed out" in error.message


async def test_an_error_event_mid_stream_gets_the_status_of_its_type() -> None:
    fake = FakeAnthropic(
        stream_response(
            message_start(),
            *text_block(0, "Hel"),
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    )
    seen: list[str] = []
    with pytest.raises(ModelProviderError) as info:
        async for delta in fake.claude().stream(user("Hi"), ModelRequest()):
            seen.append(delta.content or "")
    assert seen == ["Hel"]
    assert (info.value.status_code, info.value.retryable) == (529, True)
    assert "Overloaded" in info.value.message


async def test_a_missing_api_key_is_reported_not_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CONFIG_DIR",
        "ANTHROPIC_FEDERATION_RULE_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    # No profile on disk either: the SDK looks for one under the home directory.
    monkeypatch.setenv("HOME", str(tmp_path))
    fake = FakeAnthropic()
    model = Claude(base_url="http://anthropic.test", client_params=fake.client_params())
    error = await raised(fake, model)
    assert error.retryable is False
    assert "ANTHROPIC_API_KEY" in error.message
    assert fake.requests == []


async def test_run_loop_retries_a_retryable_error_then_succeeds() -> None:
    fake = FakeAnthropic(
        error_response(529, "overloaded_error", "busy", {"retry-after": "0"}),
        answer(text_block(0, "Hi there")),
    )
    out = await Agent(model=fake.claude(), retries=1, delay_between_retries=0).arun("Hi")
    assert out.status is RunStatus.completed
    assert out.content == "Hi there"
    assert len(fake.requests) == 2


# ---------------------------------------------------------------------------------------------
# Through the Agent, and the model object itself
# ---------------------------------------------------------------------------------------------


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"{city}: 21 degrees"


async def test_agent_round_trip_through_a_tool() -> None:
    fake = FakeAnthropic(
        answer(
            tool_block(0, "toolu_9", "get_weather", '{"city":', ' "Nice"}'),
            input_tokens=40,
            output_tokens=12,
            stop_reason="tool_use",
        ),
        answer(text_block(0, "It is ", "21 degrees."), input_tokens=60, output_tokens=6),
    )
    agent = Agent(model=fake.claude(), tools=[get_weather], instructions="Use tools.")
    out = await agent.arun("Weather in Nice?")

    assert out.status is RunStatus.completed, out.content
    assert out.content == "It is 21 degrees."
    [execution] = out.tools
    assert (execution.tool_name, execution.tool_args) == ("get_weather", {"city": "Nice"})
    assert execution.result == "Nice: 21 degrees"
    second = fake.bodies[1]
    assert second["messages"][-2]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_9",
        "name": "get_weather",
        "input": {"city": "Nice"},
    }
    assert second["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "Nice: 21 degrees"}
        ],
    }
    assert "Use tools." in second["system"]
    assert fake.bodies[0]["tools"][0]["name"] == "get_weather"
    assert (out.metrics.input_tokens, out.metrics.output_tokens) == (100, 18)
    assert out.metrics.time_to_first_token is not None
    assert out.metrics.cost is not None and out.metrics.cost > 0


async def test_agent_streams_content_events() -> None:
    fake = FakeAnthropic(answer(text_block(0, "one ", "two ", "three")))
    agent = Agent(model=fake.claude())
    pieces = [
        e.content
        async for e in agent.arun("Count", stream=True)
        if getattr(e, "content", None) and e.event == "RunContent"
    ]
    assert pieces == ["one ", "two ", "three"]


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = (
        "import sys, pilothouse.models.anthropic as m; "
        "m.Claude(id='claude-sonnet-4-6', api_key='k'); "
        "assert 'anthropic' not in sys.modules, 'SDK imported'; "
        "assert 'httpx2' not in sys.modules and 'httpx' not in sys.modules; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_registry_string_builds_claude() -> None:
    from pilothouse.models.registry import model_from_string

    model = model_from_string("anthropic:claude-haiku-4-5")
    assert isinstance(model, Claude)
    assert (model.id, model.provider, model.name) == ("claude-haiku-4-5", "anthropic", "Claude")


def test_one_sdk_client_per_event_loop() -> None:
    model = Claude(api_key="k", base_url="http://anthropic.test")

    async def client() -> Any:
        first = await model._client()
        assert await model._client() is first
        return first

    one = asyncio.run(client())
    two = asyncio.run(client())
    assert one is not two


def test_env_variables_reach_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://env.anthropic.test:8123")
    fake = FakeAnthropic(answer(text_block(0, "ok")))
    model = Claude(id="claude-sonnet-4-6", client_params=fake.client_params())

    out = asyncio.run(Agent(model=model).arun("Hi"))
    assert out.content == "ok"
    request = fake.requests[0]
    assert str(request.url) == "http://env.anthropic.test:8123/v1/messages"
    assert "sk-from-env" in (
        request.headers.get("authorization", "") + request.headers.get("x-api-key", "")
    )


def test_price_comes_from_genai_prices_and_is_none_when_unknown() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    price = Claude("claude-sonnet-4-6").price(usage)
    assert price is not None and price > 0
    assert Claude("smollm2").price(usage) is None


def test_constructor_checks_arguments() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        Claude(max_tokens=0)
    with pytest.raises(TypeError, match="stop_sequences"):
        Claude(stop_sequences="END")
    with pytest.raises(ValueError, match="id"):
        Claude(id="")
    with pytest.raises(ValueError, match="max_retries"):
        Claude(max_retries=-1)
    with pytest.raises(ValueError, match="tool_choice"):
        Claude(request_params={"tool_choice": {"type": "any"}})


async def test_the_sdk_does_not_retry_by_default_but_can() -> None:
    fake = FakeAnthropic(
        error_response(500, "api_error", "boom", {"retry-after-ms": "1"}),
        answer(text_block(0, "fine")),
    )
    error = await raised(fake)
    assert error.retryable is True
    assert len(fake.requests) == 1
    model = Claude(
        api_key="k",
        base_url="http://anthropic.test",
        max_retries=1,
        client_params=fake.client_params(),
    )
    fake.replies[:0] = [error_response(500, "api_error", "boom", {"retry-after-ms": "1"})]
    assert (await model.response(user("Hi"))).content == "fine"
    assert len(fake.requests) == 3


async def test_a_connection_broken_mid_stream_is_a_retryable_provider_error() -> None:
    async def body() -> Any:
        yield sse(message_start(), *text_block(0, "Hel"))
        raise httpx2.ReadError("connection reset by peer")

    fake = FakeAnthropic(
        httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())
    )
    seen: list[str] = []
    with pytest.raises(ModelProviderError) as info:
        async for delta in fake.claude().stream(user("Hi"), ModelRequest()):
            seen.append(delta.content or "")
    assert "Hel" in seen
    assert (info.value.status_code, info.value.retryable) == (None, True)
    assert "connection reset" in info.value.message
