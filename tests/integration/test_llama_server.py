"""Claude and OpenAIChat against llama.cpp's own server (``llama-server``) with SmolLM2-135M.

llama-server speaks the Anthropic Messages API at ``/v1/messages`` and the OpenAI API at
``/v1``; both adapters reach it through their official SDKs exactly as they reach the hosted
services. The model is tiny: the tests check the protocol (streamed text, usage, time to first
token, a well-formed tool call and its round trip), not the quality of the answers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import Message, ModelRequest, ToolCall, ToolDefinition
from pilothouse.models.anthropic import Claude

pytestmark = pytest.mark.integration

PROMPT = "Say hello in one short sentence."


def claude(server: str, **settings: Any) -> Claude:
    settings.setdefault("max_tokens", 48)
    settings.setdefault("temperature", 0.0)
    return Claude(id="smollm2", base_url=server, api_key="sk-local", **settings)


def agent(model: Any, **settings: Any) -> Agent:
    """An agent that retries a failed call twice: under load, llama-server now and then drops
    a connection before answering, which is what retries are for."""
    settings.setdefault("retries", 2)
    settings.setdefault("delay_between_retries", 0.5)
    return Agent(model=model, **settings)


def check_metrics(out: Any) -> None:
    metrics = out.metrics
    assert metrics.input_tokens > 0 and metrics.output_tokens > 0
    assert metrics.total_tokens == metrics.input_tokens + metrics.output_tokens
    assert metrics.time_to_first_token is not None
    assert 0 < metrics.time_to_first_token <= metrics.duration
    assert metrics.cost is None  # a local model has no price


# ---------------------------------------------------------------------------------------------
# Claude on /v1/messages
# ---------------------------------------------------------------------------------------------


def test_claude_run_answers_with_usage(llama_server: str) -> None:
    out = agent(claude(llama_server), instructions="You are friendly.").run(PROMPT)
    assert out.status is RunStatus.completed, out.content
    assert isinstance(out.content, str) and out.content.strip()
    check_metrics(out)
    assert out.model == "smollm2" and out.model_provider == "anthropic"


def test_claude_streamed_run_yields_pieces_that_make_the_answer(llama_server: str) -> None:
    agent_ = agent(claude(llama_server))
    pieces = [
        event.content
        for event in agent_.run(PROMPT, stream=True)
        if event.event == "RunContent" and event.content
    ]
    out = agent_.get_last_run_output()
    assert out is not None and out.status is RunStatus.completed, out and out.content
    assert len(pieces) > 1, pieces
    assert "".join(pieces) == out.content
    check_metrics(out)


async def test_claude_through_the_env_variables_and_a_model_string(
    llama_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llama_server)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-local")
    agent_ = agent("anthropic:smollm2")
    out = await agent_.arun("Reply with the single word: hello")
    assert out.status is RunStatus.completed, out.content
    assert isinstance(out.content, str) and out.content.strip()
    check_metrics(out)

    stream = agent_.arun("Reply with the single word: yes", stream=True)
    pieces = [e.content async for e in stream if e.event == "RunContent" and e.content]
    last = agent_.get_last_run_output()
    assert last is not None and last.status is RunStatus.completed
    assert pieces and "".join(pieces) == last.content
    check_metrics(last)


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name.
    """
    return f"It is sunny and 21 degrees in {city}."


WEATHER = ToolDefinition(
    name="get_weather",
    description="Get the current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city's name."}},
        "required": ["city"],
    },
)


def example_conversation(city: str) -> list[Message]:
    """A conversation that already shows one call of the tool, then asks about ``city``.

    Forced tool choice makes llama-server constrain the call itself with a grammar, but the
    grammar allows text before the call, and SmolLM2-135M writes text unless it has seen the
    call pattern once. The example history also sends tool_use and tool_result blocks.
    """
    return [
        Message(role="system", content="You answer questions about the weather."),
        Message(role="user", content="What is the weather in Rome?"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(name="get_weather", arguments={"city": "Rome"}, id="toolu_ex1")],
        ),
        Message(
            role="tool",
            content="It is sunny and 25 degrees in Rome.",
            tool_call_id="toolu_ex1",
            name="get_weather",
        ),
        Message(role="assistant", content="It is sunny and 25 degrees in Rome."),
        Message(role="user", content=f"What is the weather in {city}?"),
    ]


def test_claude_calls_a_tool_and_answers_from_its_result(llama_server: str) -> None:
    """A real tool_use block from the model (forced tool choice), executed by the agent, its
    result sent back as a tool_result block, and a final answer: the whole round trip."""
    out = agent(claude(llama_server), tools=[get_weather], tool_choice="get_weather").run(
        example_conversation("Paris")
    )
    assert out.status is RunStatus.completed, out.content

    first = out.tools[0]
    assert first.tool_name == "get_weather"
    assert first.tool_call_error is False, first.result
    assert isinstance(first.tool_args.get("city"), str) and first.tool_args["city"].strip()
    assert first.result == get_weather(first.tool_args["city"])
    assert first.tool_call_id and first.tool_call_id != "toolu_ex1"

    assert out.metrics.model_calls >= 2
    calls = [c for m in out.messages if m.role == "assistant" for c in m.tool_calls or ()]
    assert [c.id for c in calls][:2] == ["toolu_ex1", first.tool_call_id]
    result = next(
        m for m in out.messages if m.role == "tool" and m.tool_call_id == first.tool_call_id
    )
    assert result.content == first.result
    assert out.messages[-1].role == "assistant" and not out.messages[-1].tool_calls
    assert isinstance(out.content, str) and out.content.strip()
    check_metrics(out)


async def test_claude_streams_a_tool_call_as_fragments_of_valid_json(llama_server: str) -> None:
    """The tool call arrives as input_json_delta fragments of one content block."""
    model = claude(llama_server)
    request = ModelRequest(tools=[WEATHER], tool_choice="required")
    chunks: list[Any] = []
    usage = None
    for attempt in range(3):  # a retryable connection failure is retried, as the run loop does
        try:
            async for delta in model.stream(example_conversation("Berlin"), request):
                chunks.extend(delta.tool_calls or ())
                usage = delta.usage or usage
            break
        except ModelProviderError as exc:
            if not exc.retryable or attempt == 2:
                raise
            chunks.clear()
    assert chunks, "no tool call streamed"
    assert chunks[0].id and chunks[0].name == "get_weather"
    assert len({c.index for c in chunks}) == 1
    arguments = json.loads("".join(c.arguments for c in chunks))
    assert isinstance(arguments.get("city"), str) and arguments["city"].strip()
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0


# ---------------------------------------------------------------------------------------------
# OpenAIChat on the same server's /v1
# ---------------------------------------------------------------------------------------------


def openai_chat(server: str) -> Any:
    from pilothouse.models.openai import OpenAIChat

    return OpenAIChat(
        id="smollm2",
        base_url=f"{server}/v1",
        api_key="sk-local",
        max_tokens=48,
        temperature=0.0,
        seed=7,
    )


def test_openai_chat_run_answers_with_usage(llama_server: str) -> None:
    out = agent(openai_chat(llama_server)).run(PROMPT)
    assert out.status is RunStatus.completed, out.content
    assert isinstance(out.content, str) and out.content.strip()
    check_metrics(out)


async def test_openai_chat_streamed_run(llama_server: str) -> None:
    agent_ = agent(openai_chat(llama_server))
    pieces = [
        e.content
        async for e in agent_.arun(PROMPT, stream=True)
        if e.event == "RunContent" and e.content
    ]
    out = agent_.get_last_run_output()
    assert out is not None and out.status is RunStatus.completed, out and out.content
    assert len(pieces) > 1, pieces
    assert "".join(pieces) == out.content
    check_metrics(out)
