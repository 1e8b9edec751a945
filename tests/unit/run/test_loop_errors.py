"""Errors are data: retries, the error status, RunErrorEvent, and misuse raising at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunErrorEvent, RunEvent
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import Message, ModelDelta, ToolDefinition
from pilothouse.models.test import FunctionModel, TestModel


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the loop's backoff sleeps instead of waiting."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("pilothouse.run.steps.model_request._sleep", fake_sleep)
    # Without jitter, so that the delays are exact.
    monkeypatch.setattr("pilothouse.run.steps.model_request._jitter", lambda: 1.0)
    return recorded


def failing(
    times: int, error: Exception, answer: str = "recovered"
) -> tuple[FunctionModel, list[int]]:
    attempts: list[int] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        attempts.append(1)
        if len(attempts) <= times:
            raise error
        return answer

    return FunctionModel(decide), attempts


@pytest.mark.parametrize("status", [429, 500, 503, None])
def test_retryable_errors_are_retried(sleeps: list[float], status: int | None) -> None:
    model, attempts = failing(2, ModelProviderError("busy", status_code=status))
    out = Agent(model=model, retries=2, delay_between_retries=0.5, exponential_backoff=False).run(
        "x"
    )
    assert out.status is RunStatus.completed
    assert out.content == "recovered"
    assert len(attempts) == 3
    assert sleeps == [0.5, 0.5]


def test_exponential_backoff_and_retry_after(sleeps: list[float]) -> None:
    model, _ = failing(3, ModelProviderError("slow down", status_code=429))
    Agent(model=model, retries=3, delay_between_retries=1, exponential_backoff=True).run("x")
    assert sleeps == [1, 2, 4]
    sleeps.clear()
    model, _ = failing(1, ModelProviderError("slow down", status_code=429, retry_after=7.5))
    Agent(model=model, retries=1, delay_between_retries=1).run("x")
    assert sleeps == [7.5]
    sleeps.clear()
    model, _ = failing(2, ModelProviderError("slow down", status_code=429))
    Agent(model=model, retries=2, delay_between_retries=1).run("x")
    assert sleeps == [1, 2]  # exponential by default


def test_run_level_retries_override_the_agent(sleeps: list[float]) -> None:
    model, attempts = failing(1, ModelProviderError("busy", status_code=503))
    out = Agent(model=model).run("x", retries=1)
    assert out.status is RunStatus.completed and len(attempts) == 2


def test_after_the_last_attempt_the_run_ends_in_error(sleeps: list[float]) -> None:
    model, attempts = failing(5, ModelProviderError("overloaded", status_code=503))
    out = Agent(model=model, retries=2).run("x")
    assert out.status is RunStatus.error
    assert out.content == "overloaded"
    assert len(attempts) == 3


def test_non_retryable_errors_are_not_retried(sleeps: list[float]) -> None:
    model, attempts = failing(1, ModelProviderError("bad key: set OPENAI_API_KEY", status_code=401))
    out = Agent(model=model, retries=3).run("x")
    assert out.status is RunStatus.error
    assert "OPENAI_API_KEY" in out.content
    assert len(attempts) == 1 and sleeps == []


def test_any_other_exception_from_the_model_ends_the_run_in_error(sleeps: list[float]) -> None:
    model, attempts = failing(1, KeyError("surprise"))
    out = Agent(model=model, retries=3).run("x")
    assert out.status is RunStatus.error
    assert "surprise" in out.content
    assert len(attempts) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_retries_apply_to_streams_that_fail_before_the_first_token(
    sleeps: list[float], mode: str
) -> None:
    attempts: list[int] = []

    async def flaky(messages: list[Message], tools: list[ToolDefinition]):  # type: ignore[no-untyped-def]
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelProviderError("connection reset")
        yield "fine"

    agent = Agent(model=FunctionModel(stream_function=flaky), retries=1)
    if mode == "sync":
        events = await asyncio.to_thread(lambda: list(agent.run("x", stream=True)))
    else:
        events = [e async for e in agent.arun("x", stream=True)]
    assert [e.content for e in events] == ["fine"]
    assert len(attempts) == 2


async def test_a_stream_failing_after_the_first_token_is_not_retried(sleeps: list[float]) -> None:
    attempts: list[int] = []

    async def breaks(messages: list[Message], tools: list[ToolDefinition]):  # type: ignore[no-untyped-def]
        attempts.append(1)
        yield "partial"
        raise ModelProviderError("connection reset")

    agent = Agent(model=FunctionModel(stream_function=breaks), retries=3)
    events = [e async for e in agent.arun("x", stream=True, stream_events=True)]
    assert len(attempts) == 1
    assert events[-1].event == RunEvent.run_error
    assert isinstance(events[-1], RunErrorEvent)
    assert events[-1].content == "connection reset"
    assert events[-1].error_type == "ModelProviderError"


@pytest.mark.parametrize("stream_events", [False, True])
def test_run_error_event_is_the_last_event_of_a_failed_stream(stream_events: bool) -> None:
    model, _ = failing(1, ModelProviderError("invalid request", status_code=400))
    events = list(Agent(model=model).run("x", stream=True, stream_events=stream_events))
    assert isinstance(events[-1], RunErrorEvent)
    assert events[-1].content == "invalid request"


async def test_arun_returns_the_error_output_instead_of_raising() -> None:
    model, _ = failing(1, ModelProviderError("denied", status_code=403))
    out = await Agent(model=model).arun("x")
    assert out.status is RunStatus.error and out.content == "denied"


def test_unknown_arguments_raise_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match=r"'instruction' \(did you mean 'instructions'\?\)"):
        Agent(model=TestModel(), instruction="x")  # type: ignore[call-arg]
    agent = Agent(model=TestModel())
    with pytest.raises(TypeError, match=r"did you mean 'session_id'"):
        agent.run("x", sesion_id="s")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": 42}, "model must be a Model"),
        ({"model": "nosuch:thing"}, "Unknown model provider 'nosuch'"),
        ({"retries": -1}, "retries must be a whole number"),
        ({"tools": "get_weather"}, "tools"),
        ({"session_state": ["a"]}, "session_state must be a dict"),
        ({"tool_choice": 3}, "tool_choice must be"),
    ],
)
def test_bad_agent_arguments_raise_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        Agent(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stream": "yes"}, "stream must be True or False"),
        ({"user_id": 5}, "user_id must be a str"),
        ({"dependencies": [1]}, "dependencies must be a dict"),
        ({"retries": 1.5}, "retries must be a whole number"),
    ],
)
def test_bad_run_arguments_raise_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        Agent(model=TestModel()).run("x", **kwargs)


def test_model_delta_types_are_public() -> None:
    # Users writing their own stream_function may yield ModelDelta with usage.
    async def with_usage(messages: list[Message], tools: list[ToolDefinition]):  # type: ignore[no-untyped-def]
        from pilothouse.run.metrics import Usage

        yield "hi"
        yield ModelDelta(usage=Usage(input_tokens=7, output_tokens=3, cache_read_tokens=2))

    out = Agent(model=FunctionModel(stream_function=with_usage)).run("x")
    assert (out.metrics.input_tokens, out.metrics.output_tokens) == (7, 3)
    assert out.metrics.cache_read_tokens == 2
