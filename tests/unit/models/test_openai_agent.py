"""OpenAIChat end to end through `pilothouse.Agent`, against canned HTTP (httpx2.MockTransport):
tool round trips, streaming, retries, metrics and cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import pytest

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunContentEvent
from pilothouse.media import Image
from pilothouse.models import pricing
from pilothouse.models.openai import OpenAIChat, OpenAILike
from pilothouse.run.metrics import Usage

Turn = httpx2.Response | Callable[[dict[str, Any]], httpx2.Response]


class FakeServer:
    """Serves queued turns in order and records the JSON of every request. A turn is a
    response, or a function of the request's JSON (a streamed or a whole answer)."""

    def __init__(self, *responses: Turn) -> None:
        self.responses = list(responses)
        self.bodies: list[dict[str, Any]] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        response = self.responses.pop(0)
        return response(body) if callable(response) else response

    def client_params(self) -> dict[str, Any]:
        return {"http_client": httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler))}


def sse(
    *deltas: dict[str, Any], prompt: int, completion: int, usage: bool = True
) -> Callable[[dict[str, Any]], httpx2.Response]:
    """One answer: streamed as these deltas when the request streams, else whole."""

    def render(request: dict[str, Any]) -> httpx2.Response:
        counts = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if not request.get("stream"):
            return httpx2.Response(200, json=completion_body(deltas, counts))
        chunks = [{"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if usage:
            chunks.append({"choices": [], "usage": counts})
        body = "".join(
            "data: "
            + json.dumps(
                {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", **c}
            )
            + "\n\n"
            for c in chunks
        )
        return httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=(body + "data: [DONE]\n\n"),
        )

    return render


def completion_body(deltas: Sequence[dict[str, Any]], counts: dict[str, int]) -> dict[str, Any]:
    """The whole completion the deltas of a stream add up to."""
    content = "".join(d.get("content") or "" for d in deltas)
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        for fragment in delta.get("tool_calls") or ():
            call = calls.setdefault(
                fragment["index"],
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
            )
            call["id"] = call["id"] or fragment.get("id")
            function = fragment.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": counts,
    }


def weather_call(call_id: str = "call_w1") -> Turn:
    return sse(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "index": 0,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        prompt=120,
        completion=18,
    )


def answer(*pieces: str) -> Turn:
    return sse(*({"content": p} for p in pieces), prompt=160, completion=9)


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny and 21°C in {city}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("pilothouse.run.steps.model_request._sleep", fake_sleep)
    # Without jitter, so that the delays are exact.
    monkeypatch.setattr("pilothouse.run.steps.model_request._jitter", lambda: 1.0)
    return recorded


def test_tool_round_trip_through_the_agent_with_metrics_and_cost() -> None:
    server = FakeServer(weather_call(), answer("It is ", "sunny in Paris."))
    model = OpenAIChat("gpt-5-mini", api_key="sk-test", client_params=server.client_params())
    agent = Agent(model=model, tools=[get_weather], instructions="Answer briefly.")

    out = agent.run("What is the weather in Paris?")

    assert out.status is RunStatus.completed, out.content
    assert out.content == "It is sunny in Paris."
    assert [(t.tool_name, t.tool_args, t.result) for t in out.tools] == [
        ("get_weather", {"city": "Paris"}, "Sunny and 21°C in Paris")
    ]
    first, second = server.bodies
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert first["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    # The call and its result go back to the model, tied by the call id.
    assert second["messages"][2] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_w1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert second["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_w1",
        "content": "Sunny and 21°C in Paris",
    }

    metrics = out.metrics
    assert (metrics.input_tokens, metrics.output_tokens) == (280, 27)
    assert metrics.total_tokens == 307 and metrics.model_calls == 2
    expected = sum(
        pricing.price("openai", "gpt-5-mini", Usage(input_tokens=i, output_tokens=o)) or 0
        for i, o in ((120, 18), (160, 9))
    )
    assert metrics.cost == pytest.approx(expected) and expected > 0
    assert metrics.time_to_first_token is not None and metrics.time_to_first_token > 0
    assert metrics.duration is not None and metrics.time_to_first_token < metrics.duration


def test_streaming_run_yields_content_events_as_chunks_arrive() -> None:
    server = FakeServer(answer("One", ", two", ", three."))
    model = OpenAIChat("gpt-5-mini", api_key="sk-test", client_params=server.client_params())
    events = list(Agent(model=model).run("count", stream=True))
    pieces = [e.content for e in events if isinstance(e, RunContentEvent)]
    assert pieces == ["One", ", two", ", three."]


async def test_async_run_with_an_image_sends_it_as_a_part() -> None:
    server = FakeServer(answer("A cat."))
    model = OpenAIChat("gpt-5-mini", api_key="sk-test", client_params=server.client_params())
    out = await Agent(model=model).arun(
        "What is this?", images=[Image(url="https://example.com/cat.png")]
    )
    assert out.content == "A cat."
    assert server.bodies[0]["messages"][-1]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]


def test_forced_tool_choice_is_sent_first_then_auto() -> None:
    server = FakeServer(weather_call(), answer("Sunny."))
    model = OpenAIChat("gpt-5-mini", api_key="sk-test", client_params=server.client_params())
    out = Agent(model=model, tools=[get_weather], tool_choice="get_weather").run("Paris?")
    assert out.status is RunStatus.completed
    assert server.bodies[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    assert server.bodies[1]["tool_choice"] == "auto"


def test_rate_limit_is_retried_by_the_run_loop_after_retry_after(no_sleep: list[float]) -> None:
    limited = httpx2.Response(
        429,
        headers={"retry-after": "3"},
        json={"error": {"message": "Rate limit reached", "type": "requests"}},
    )
    server = FakeServer(limited, answer("ok"))
    model = OpenAIChat("gpt-5-mini", api_key="sk-test", client_params=server.client_params())
    out = Agent(model=model, retries=1, delay_between_retries=0.1).run("hi")
    assert out.status is RunStatus.completed and out.content == "ok"
    assert len(server.bodies) == 2
    assert no_sleep == [3.0]


def test_bad_api_key_ends_the_run_with_an_error_and_no_retry(no_sleep: list[float]) -> None:
    refused = httpx2.Response(
        401, json={"error": {"message": "Incorrect API key provided", "type": "auth"}}
    )
    server = FakeServer(refused)
    model = OpenAIChat("gpt-5-mini", api_key="sk-bad", client_params=server.client_params())
    out = Agent(model=model, retries=3).run("hi")
    assert out.status is RunStatus.error
    assert "OPENAI_API_KEY" in str(out.content) and "Incorrect API key" in str(out.content)
    assert len(server.bodies) == 1 and no_sleep == []


def test_openai_like_model_counts_tokens_but_has_no_cost() -> None:
    server = FakeServer(answer("hi there"))
    model = OpenAILike(
        "smollm2", base_url="http://127.0.0.1:9/v1", client_params=server.client_params()
    )
    out = Agent(model=model).run("hi")
    assert out.status is RunStatus.completed
    assert (out.metrics.input_tokens, out.metrics.output_tokens) == (160, 9)
    assert out.metrics.cost is None
    assert (out.model, out.model_provider) == ("smollm2", "openai-like")


# ---- token usage: whole requests for runs that do not stream ---------------------------------


def test_a_run_that_does_not_stream_makes_a_whole_request_with_its_usage() -> None:
    server = FakeServer(answer("hi there"))
    model = OpenAILike(
        "smollm2", base_url="http://127.0.0.1:9/v1", client_params=server.client_params()
    )
    out = Agent(model=model).run("hi")
    assert out.status is RunStatus.completed and out.content == "hi there"
    assert "stream" not in server.bodies[0] and "stream_options" not in server.bodies[0]
    assert (out.metrics.input_tokens, out.metrics.output_tokens) == (160, 9)
    assert out.metrics.usage_reported is True


def test_a_streamed_run_asks_for_usage_and_counts_it() -> None:
    server = FakeServer(answer("hi", " there"))
    model = OpenAILike(
        "smollm2", base_url="http://127.0.0.1:9/v1", client_params=server.client_params()
    )
    agent = Agent(model=model)
    list(agent.run("hi", stream=True))
    out = agent.get_last_run_output()
    assert out is not None and out.content == "hi there"
    body = server.bodies[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (out.metrics.input_tokens, out.metrics.output_tokens) == (160, 9)
    assert out.metrics.usage_reported is True


def test_a_stream_without_usage_says_so_instead_of_claiming_zero_tokens() -> None:
    # llama-cpp-python's server streams no usage, whatever the request asks for.
    server = FakeServer(sse({"content": "hi"}, prompt=0, completion=0, usage=False))
    model = OpenAILike(
        "smollm2", base_url="http://127.0.0.1:9/v1", client_params=server.client_params()
    )
    agent = Agent(model=model)
    list(agent.run("hi", stream=True))
    out = agent.get_last_run_output()
    assert out is not None and out.status is RunStatus.completed
    assert out.metrics.usage_reported is False
    assert out.metrics.to_dict()["usage_reported"] is False
    call = out.messages[-1].metrics
    assert call is not None and call.usage_reported is False and call.model_calls == 1
