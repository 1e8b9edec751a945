"""OpenAIChat against llama-cpp-python's OpenAI-compatible server with SmolLM2-135M.

Most tests run twice: with the model configured in code (``OpenAIChat(base_url=...)``) and
through the SDK's environment variables (``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` with
``Agent(model="openai:smollm2")``), the way users point the SDK at another endpoint. The tiny
model is not smart: the tests check the protocol (streaming, tool calls, metrics), not the
wisdom of its answers.

The server never reports token usage in streamed responses: a run that does not stream asks
for whole responses, which carry it, and a streamed run's metrics say the usage went
unreported. The server also answers 500 to a JSON-schema response format, so structured output
falls back to JSON mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from serverkit import free_port

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunCompletedEvent, RunContentEvent
from pilothouse.models.openai import OpenAIChat

pytestmark = pytest.mark.integration

SEED = 7
# Bounds every answer, so that a rambling tiny model cannot make a test slow.
MAX_TOKENS = 48


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The name of the city.
    """
    return f"Sunny and 21 degrees in {city}"


AgentFactory = Callable[..., Agent]


@pytest.fixture(params=["in_code", "env_vars"])
def make_agent(
    request: pytest.FixtureRequest,
    llama_cpp_python_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AgentFactory:
    """Agents on SmolLM2: with an OpenAIChat configured in code, or with "openai:smollm2" and
    the SDK's environment variables."""
    if request.param == "in_code":
        # Nothing from the environment may leak into the explicitly configured model.
        monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")

        def in_code(**kwargs: Any) -> Agent:
            model = OpenAIChat(
                id="smollm2",
                base_url=llama_cpp_python_server,
                api_key="sk-local",
                temperature=0,
                seed=SEED,
                max_tokens=MAX_TOKENS,
            )
            return Agent(model=model, **kwargs)

        return in_code

    monkeypatch.setenv("OPENAI_BASE_URL", llama_cpp_python_server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")

    def from_env(**kwargs: Any) -> Agent:
        agent = Agent(model="openai:smollm2", **kwargs)
        model = agent.model
        assert isinstance(model, OpenAIChat) and model.base_url is None
        # Sampling settings on the built model, for answers as repeatable as in code.
        model.temperature, model.seed, model.max_tokens = 0, SEED, MAX_TOKENS
        return agent

    return from_env


def test_run_returns_the_answer_with_timing(make_agent: AgentFactory) -> None:
    out = make_agent(instructions="Answer in one short sentence.").run("Say hello.")

    assert out.status is RunStatus.completed, out.content
    assert isinstance(out.content, str) and out.content.strip()
    assert (out.model, out.model_provider) == ("smollm2", "openai")
    metrics = out.metrics
    assert metrics.model_calls == 1
    assert metrics.time_to_first_token is not None and metrics.duration is not None
    assert 0 < metrics.time_to_first_token < metrics.duration
    # A model served outside OpenAI has no known price.
    assert metrics.cost is None


def test_streaming_run_yields_content_as_it_is_generated(make_agent: AgentFactory) -> None:
    agent = make_agent(instructions="Answer in one short sentence.")
    events = list(agent.run("Say hello.", stream=True, stream_events=True))

    pieces = [e.content for e in events if isinstance(e, RunContentEvent) and e.content]
    assert len(pieces) >= 3, pieces
    completed = [e for e in events if isinstance(e, RunCompletedEvent)]
    assert len(completed) == 1
    assert completed[0].content == "".join(pieces)
    metrics = completed[0].metrics
    assert metrics is not None and metrics.duration is not None
    assert metrics.time_to_first_token is not None
    assert 0 < metrics.time_to_first_token < metrics.duration


def test_tool_call_round_trip(make_agent: AgentFactory) -> None:
    # A forced first call, then at most this one call: after it the run asks for an answer
    # ("none"). The server cannot stream a call it chose itself ("auto").
    agent = make_agent(tools=[get_weather], tool_choice="get_weather", tool_call_limit=1)
    out = agent.run("What is the weather in Paris?")

    assert out.status is RunStatus.completed, out.content
    assert len(out.tools) == 1
    execution = out.tools[0]
    assert execution.tool_name == "get_weather" and not execution.tool_call_error
    # Well-formed arguments, parsed from fragments: the call this model makes at temperature 0.
    assert execution.tool_args == {"city": "Paris"}
    assert execution.result == "Sunny and 21 degrees in Paris"

    roles = [m.role for m in out.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call_message, tool_message = out.messages[1], out.messages[2]
    assert call_message.tool_calls is not None
    assert tool_message.tool_call_id == call_message.tool_calls[0].id
    assert tool_message.content == execution.result
    assert isinstance(out.content, str) and out.content.strip()
    assert out.metrics.model_calls == 2
    assert out.metrics.time_to_first_token is not None


def local_model(url: str, max_tokens: int = MAX_TOKENS) -> OpenAIChat:
    return OpenAIChat(
        id="smollm2",
        base_url=url,
        api_key="sk-local",
        temperature=0,
        seed=SEED,
        max_tokens=max_tokens,
    )


def test_a_run_that_does_not_stream_counts_its_tokens(llama_cpp_python_server: str) -> None:
    model = local_model(llama_cpp_python_server)
    agent = Agent(model=model, tools=[get_weather], tool_choice="get_weather", tool_call_limit=1)
    out = agent.run("What is the weather in Paris?")

    assert out.status is RunStatus.completed, out.content
    assert out.tools[0].tool_args == {"city": "Paris"}
    calls = [m.metrics for m in out.messages if m.role == "assistant"]
    assert len(calls) == 2
    assert all(c is not None and c.input_tokens > 0 and c.output_tokens > 0 for c in calls)
    # The second call's prompt holds the first one's and the tool call.
    assert calls[1].input_tokens > calls[0].input_tokens  # type: ignore[union-attr]
    assert out.metrics.input_tokens == sum(c.input_tokens for c in calls)  # type: ignore[union-attr]
    assert out.metrics.total_tokens == out.metrics.input_tokens + out.metrics.output_tokens
    assert out.metrics.usage_reported is True
    assert out.metrics.time_to_first_token is not None and out.metrics.duration is not None
    assert 0 < out.metrics.time_to_first_token < out.metrics.duration


def test_a_streamed_run_says_whether_the_server_reported_usage(
    llama_cpp_python_server: str,
) -> None:
    agent = Agent(model=local_model(llama_cpp_python_server), instructions="Answer briefly.")
    assert list(agent.run("Say hello.", stream=True))
    out = agent.get_last_run_output()

    assert out is not None and out.status is RunStatus.completed, out and out.content
    metrics = out.metrics
    # Real counts, or a run that says it has none: never a claimed 0.
    if metrics.usage_reported:
        assert metrics.input_tokens > 0 and metrics.output_tokens > 0
    else:
        assert metrics.model_calls == 1 and metrics.total_tokens == 0


class City(BaseModel):
    name: str
    country: str


def test_structured_output_falls_back_from_the_refused_json_schema(
    llama_cpp_python_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pilothouse")
    agent = Agent(model=local_model(llama_cpp_python_server, max_tokens=64), output_schema=City)
    out = agent.run("Describe the city of Paris as JSON.")

    assert out.status is RunStatus.completed, out.content
    assert isinstance(out.content, City) and out.content_type == "City"
    assert "rejected structured output mode 'native'" in caplog.text


def test_nothing_listening_ends_the_run_with_a_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = Agent(model=OpenAIChat(id="smollm2", base_url=url, api_key="sk-local")).run("hi")
    assert out.status is RunStatus.error
    assert f"could not connect to {url}" in str(out.content)
