"""Tools and models that fail in odd ways are failures like any other; only a real
cancellation of the caller's task gets through."""

from __future__ import annotations

import asyncio
import datetime
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunErrorEvent
from pilothouse.models import Message, ModelDelta, ModelRequest, ToolCall, ToolDefinition
from pilothouse.models.base import Model
from pilothouse.models.test import FunctionModel


def call_once(name: str, arguments: Any = None) -> FunctionModel:
    """A model that calls ``name`` once, then answers with the tool's result."""

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return f"tool said: {messages[-1].content}"
        return ToolCall(name=name, arguments=arguments if arguments is not None else {})

    return FunctionModel(decide)


async def raises_cancelled() -> str:
    """A tool that raises CancelledError on its own."""
    raise asyncio.CancelledError


def raises_generator_exit() -> str:
    """A tool that raises GeneratorExit."""
    raise GeneratorExit


def recursive(depth: int = 0) -> int:
    """A tool that recurses without end."""
    return recursive(depth + 1)


@pytest.mark.parametrize(
    ("tool", "error"),
    [
        (raises_cancelled, "CancelledError"),
        (raises_generator_exit, "GeneratorExit"),
        (recursive, "RecursionError"),
    ],
)
def test_a_tool_raising_base_exceptions_is_a_failing_tool(tool: Any, error: str) -> None:
    out = Agent(model=call_once(tool.__name__), tools=[tool]).run("x")
    assert out.status is RunStatus.completed
    assert out.tools[0].tool_call_error is True
    assert error in out.tools[0].result
    assert out.content.startswith("tool said: Error from")


async def test_a_tool_raising_cancelled_error_in_an_async_run() -> None:
    out = await Agent(model=call_once("raises_cancelled"), tools=[raises_cancelled]).arun("x")
    assert out.status is RunStatus.completed and out.tools[0].tool_call_error


def echo(value: Any) -> str:
    """Echo a value."""
    return "ok"


def test_tool_arguments_nested_100000_levels_deep() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    model = call_once("echo", arguments='{"value": ' + deep + "}")
    out = Agent(model=model, tools=[echo]).run("x")
    assert out.status is RunStatus.completed
    assert out.tools[0].tool_call_error is True
    assert "echo" in out.tools[0].result


class _RaisingModel(Model):
    id = "raising"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def stream(self, messages: Any, request: ModelRequest) -> AsyncIterator[ModelDelta]:
        raise self.error
        yield ModelDelta()  # pragma: no cover - makes this an async generator


@pytest.mark.parametrize(
    "error", [asyncio.CancelledError(), GeneratorExit(), RecursionError("too deep")]
)
def test_a_model_raising_base_exceptions_ends_the_run_with_an_error(error: BaseException) -> None:
    agent = Agent(model=_RaisingModel(error), retries=0)
    out = agent.run("x")
    assert out.status is RunStatus.error
    events = list(agent.run("x", stream=True))
    assert isinstance(events[-1], RunErrorEvent)


async def test_a_real_cancellation_of_the_caller_still_propagates() -> None:
    gate = asyncio.Event()

    async def slow() -> str:
        """Wait."""
        await gate.wait()
        return "late"

    agent = Agent(model=call_once("slow"), tools=[slow])
    task = asyncio.create_task(agent.arun("x"))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = agent.get_last_run_output()
    assert out is not None and out.status is RunStatus.cancelled


@pytest.mark.parametrize(
    "value", [datetime.datetime(2026, 1, 1), {1, 2}, math.nan, object()], ids=repr
)
def test_a_tool_writing_unstorable_session_state_gets_a_tool_error(value: Any) -> None:
    def remember(session_state: dict[str, Any]) -> str:
        """Remember something."""
        session_state["kept"] = "fine"
        session_state["when"] = value
        return "remembered"

    out = Agent(model=call_once("remember"), tools=[remember]).run("x")
    assert out.status is RunStatus.completed
    assert out.tools[0].tool_call_error is True
    assert "'when'" in out.tools[0].result and "cannot be stored" in out.tools[0].result
    assert out.session_state == {"kept": "fine"}


def test_unstorable_session_state_given_to_run_is_refused() -> None:
    with pytest.raises(TypeError, match="session_state"):
        Agent(model="test").run("x", session_state={"when": datetime.date(2026, 1, 1)})


@pytest.mark.parametrize("bad", ["1", -1, None, float("inf")])
def test_delay_between_retries_is_checked(bad: Any) -> None:
    with pytest.raises(ValueError, match="delay_between_retries"):
        Agent(delay_between_retries=bad)


def test_retries_are_on_by_default_with_backoff_and_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pilothouse.exceptions import ModelProviderError

    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr("pilothouse.run.steps.model_request._sleep", fake_sleep)
    attempts: list[int] = []

    def flaky(messages: list[Message], tools: list[ToolDefinition]) -> str:
        attempts.append(1)
        if len(attempts) <= 3:
            raise ModelProviderError("unavailable", status_code=503)
        return "fine"

    out = Agent(model=FunctionModel(flaky)).run("x")
    assert out.status is RunStatus.completed and len(attempts) == 4
    assert len(sleeps) == 3
    for expected, slept in zip([1.0, 2.0, 4.0], sleeps, strict=True):
        assert expected * 0.75 <= slept <= expected * 1.25
    attempts.clear()
    out = Agent(model=FunctionModel(flaky), retries=0).run("x")
    assert out.status is RunStatus.error and len(attempts) == 1
