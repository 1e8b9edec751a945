"""Model timeouts are deadlines: ``timeout=`` bounds a whole request, keep-alives or not, and
``idle_timeout`` bounds the silence inside a stream. The real OpenAI and Anthropic SDKs talk to
a hostile provider on loopback (`hostile_provider`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hostile_provider import HostileProvider, Reply, Request

from pilothouse import Agent, RunStatus
from pilothouse.models import Message, ModelRequest
from pilothouse.models.anthropic import Claude
from pilothouse.models.openai import OpenAIChat, OpenAILike

# Far above any limit the tests set, far below forever: a run still going then fails the
# test instead of holding it.
BOUND = 20.0


def chunk(content: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant", "content": content or ""}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


async def sse_pings_forever(request: Request, reply: Reply) -> None:
    """Headers, then an SSE comment every 0.2 s and never an answer."""
    await reply.start()
    await reply.forever(": ping\n\n")


async def json_whitespace_forever(request: Request, reply: Reply) -> None:
    """A whole-JSON response that never comes: a space every 0.2 s (valid JSON padding)."""
    await reply.start(content_type="application/json")
    await reply.forever(" ")


async def stall_after_a_chunk(request: Request, reply: Reply) -> None:
    """Starts answering, then only keep-alives."""
    await reply.start()
    await reply.event(chunk("Hel"))
    await reply.forever(": ping\n\n")


async def bounded_run(agent: Agent, *, stream: bool = False) -> Any:
    """Run the agent; a run still going after BOUND seconds fails the test."""

    async def run() -> Any:
        if not stream:
            return await agent.arun("hi")
        assert [e async for e in agent.arun("hi", stream=True)]
        return agent.get_last_run_output()

    return await asyncio.wait_for(run(), BOUND)


@pytest.mark.parametrize("stream", [True, False])
async def test_keep_alives_do_not_stretch_the_timeout_of_a_run(stream: bool) -> None:
    respond = sse_pings_forever if stream else json_whitespace_forever
    async with HostileProvider(respond) as server:
        model = OpenAILike("m", base_url=server.url, timeout=1)
        agent = Agent(model=model, retries=1, delay_between_retries=0.01)
        out = await bounded_run(agent, stream=stream)

    assert out is not None
    assert out.status is RunStatus.error
    assert "timeout=1 s" in str(out.content), out.content
    assert "timed out" in str(out.content)
    # A timed-out request is transient: it was retried once.
    assert len(server.requests) == 2
    assert ("stream" in server.requests[0].json) is stream


async def test_a_stream_that_stalls_mid_answer_trips_the_idle_timeout() -> None:
    async with HostileProvider(stall_after_a_chunk) as server:
        model = OpenAIChat("m", base_url=server.url, api_key="k", idle_timeout=0.5)
        agent = Agent(model=model, retries=2, delay_between_retries=0.01)
        out = await bounded_run(agent, stream=True)

    assert out is not None
    assert out.status is RunStatus.error
    assert "idle_timeout=0.5 s" in str(out.content), out.content
    # Part of the answer had streamed: not retried.
    assert len(server.requests) == 1


async def anthropic_pings_forever(request: Request, reply: Reply) -> None:
    await reply.start()
    await reply.event(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-x",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 1},
            },
        },
        event="message_start",
    )
    await reply.forever('event: ping\ndata: {"type": "ping"}\n\n')


async def anthropic_stall_before_anything(request: Request, reply: Reply) -> None:
    await reply.start()
    await reply.forever(": keep-alive\n\n")


@pytest.mark.parametrize(
    ("respond", "limits", "named"),
    [
        (anthropic_stall_before_anything, {"timeout": 1}, "timeout=1 s"),
        (anthropic_pings_forever, {"timeout": 30, "idle_timeout": 0.5}, "idle_timeout=0.5 s"),
    ],
)
async def test_claude_requests_are_bounded_by_their_deadline_and_idle_timeout(
    respond: Any, limits: dict[str, float], named: str
) -> None:
    async with HostileProvider(respond) as server:
        model = Claude("claude-x", api_key="k", base_url=server.root, **limits)
        out = await bounded_run(Agent(model=model, retries=0))

    assert out.status is RunStatus.error
    assert named in str(out.content), out.content


def test_limits_must_be_positive_seconds_or_none() -> None:
    with pytest.raises(ValueError, match="timeout must be more than 0"):
        OpenAIChat("m", api_key="k", timeout=0)
    with pytest.raises(ValueError, match="idle_timeout must be a number of seconds"):
        OpenAIChat("m", api_key="k", idle_timeout="60")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idle_timeout must be more than 0"):
        Claude(api_key="k", idle_timeout=-1)
    model = OpenAIChat("m", api_key="k", timeout=None, idle_timeout=None)
    assert (model.timeout, model.idle_timeout) == (None, None)


def test_defaults_are_bounded() -> None:
    for model in (OpenAIChat("m", api_key="k"), Claude(api_key="k")):
        assert model.timeout == 600 and model.idle_timeout == 60


async def test_a_slow_consumer_is_not_taken_for_a_silent_server() -> None:
    async def three_chunks(request: Request, reply: Reply) -> None:
        await reply.start()
        for piece in ("a", "b", "c"):
            await reply.event(chunk(piece))
        await reply.send("data: [DONE]\n\n")

    async with HostileProvider(three_chunks) as server:
        model = OpenAILike("m", base_url=server.url, idle_timeout=0.2)
        pieces = []
        async for delta in model.stream([Message(role="user", content="hi")], ModelRequest()):
            pieces.append(delta.content)
            # Longer than idle_timeout, between chunks the server sent at once.
            await asyncio.sleep(0.5)

    assert pieces == ["a", "b", "c"]


async def test_a_sync_streamed_run_trips_the_idle_timeout_too() -> None:
    # A sync stream steps the run in a new task each time: the limit follows the waiting one.
    async with HostileProvider(stall_after_a_chunk) as server:
        model = OpenAILike("m", base_url=server.url, idle_timeout=0.5)
        agent = Agent(model=model, retries=0)

        def run() -> Any:
            assert list(agent.run("hi", stream=True))
            return agent.get_last_run_output()

        out = await asyncio.wait_for(asyncio.to_thread(run), BOUND)

    assert out.status is RunStatus.error
    assert "idle_timeout=0.5 s" in str(out.content), out.content
