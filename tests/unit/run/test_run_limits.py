"""Every run is bounded: repeated tool calls, model requests, time; cancel_run that holds."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from pilothouse import Agent, RunContext, RunStatus
from pilothouse.agent import RunErrorEvent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel

calls: list[str] = []


def get_weather(city: str) -> str:
    """Get the weather in a city."""
    calls.append(city)
    return f"Sunny in {city}"


def stubborn(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    """A model that asks for the same tool call for as long as it may call tools."""
    if tools:
        return ToolCall(name="get_weather", arguments={"city": "Paris"})
    return f"Done after {sum(m.role == 'tool' for m in messages)} tool results"


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


def test_a_repeated_tool_call_is_answered_from_its_first_result() -> None:
    out = Agent(model=FunctionModel(stubborn), tools=[get_weather]).run("Weather in Paris?")
    assert out.status is RunStatus.completed
    assert calls == ["Paris"]  # the tool ran once
    assert [t.tool_args for t in out.tools] == [{"city": "Paris"}, {"city": "Paris"}]
    repeat = out.tools[1]
    assert "Sunny in Paris" in repeat.result and "already called" in repeat.result
    assert out.content == "Done after 2 tool results"
    assert out.metrics.model_calls == 3


def test_repeats_within_one_response_run_once() -> None:
    def twice(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if tools:
            return [ToolCall(name="get_weather", arguments={"city": "Oslo"})] * 2
        return "ok"

    out = Agent(model=FunctionModel(twice), tools=[get_weather]).run("x")
    assert out.status is RunStatus.completed
    assert calls == ["Oslo"]
    assert [t.result.split("\n")[0] for t in out.tools] == ["Sunny in Oslo", "Sunny in Oslo"]


def test_different_arguments_still_run() -> None:
    def cities(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        done = sum(m.role == "tool" for m in messages)
        if done < 3:
            return ToolCall(name="get_weather", arguments={"city": f"city{done}"})
        return "ok"

    out = Agent(model=FunctionModel(cities), tools=[get_weather]).run("x")
    assert calls == ["city0", "city1", "city2"]
    assert out.content == "ok"


def endless(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    """A model that never answers and ignores tool_choice: new arguments every time."""
    return ToolCall(name="get_weather", arguments={"city": f"c{len(messages)}"})


def test_runs_are_bounded_by_a_default_request_limit() -> None:
    agent = Agent(model=FunctionModel(endless), tools=[get_weather])
    out = agent.run("x")
    assert out.status is RunStatus.error
    assert "limit of 50 model requests" in out.content and "request_limit" in out.content
    assert out.metrics.model_calls == 50
    assert len(calls) == 50


def test_the_request_limit_is_settable_per_agent_and_run_and_none_disables_it() -> None:
    model = FunctionModel(endless)
    out = Agent(model=model, tools=[get_weather], request_limit=3).run("x")
    assert out.status is RunStatus.error and out.metrics.model_calls == 3
    out = Agent(model=model, tools=[get_weather], request_limit=3).run("x", request_limit=5)
    assert out.metrics.model_calls == 5

    def stops_at_60(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return "done" if len(messages) > 120 else endless(messages, tools)

    out = Agent(model=FunctionModel(stops_at_60), tools=[get_weather], request_limit=None).run("x")
    assert out.status is RunStatus.completed and out.metrics.model_calls > 50


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_bad_request_limits_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="request_limit"):
        Agent(request_limit=bad)
    with pytest.raises(ValueError, match="request_limit"):
        Agent(model="test").run("x", request_limit=bad)


async def _slow_tool() -> str:
    """Take long."""
    await asyncio.sleep(30)
    return "never"


def test_the_run_timeout_ends_the_run_with_an_error_naming_it() -> None:
    def call_slow(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return ToolCall(name="_slow_tool", arguments={}) if tools else "no"

    agent = Agent(model=FunctionModel(call_slow), tools=[_slow_tool], timeout=0.3)
    started = time.monotonic()
    events = list(agent.run("x", stream=True))
    assert time.monotonic() - started < 10
    assert isinstance(events[-1], RunErrorEvent)
    out = agent.get_last_run_output()
    assert out is not None and out.status is RunStatus.error
    assert "timeout of 0.3 s" in out.content
    assert events[-1].error_type == "RunTimeoutError"


def test_the_run_timeout_per_run_and_its_validation() -> None:
    def call_slow(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return ToolCall(name="_slow_tool", arguments={}) if tools else "no"

    out = Agent(model=FunctionModel(call_slow), tools=[_slow_tool]).run("x", timeout=0.2)
    assert out.status is RunStatus.error and "timeout" in out.content
    for bad in (-1, "5", float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            Agent(timeout=bad)


def test_cancel_stops_a_run_whose_model_and_tools_never_suspend() -> None:
    """A run driven by run() in one thread, cancelled from another while it computes."""
    started = threading.Event()
    run_ids: list[str] = []

    def busy(n: int, run_context: RunContext) -> str:
        """Compute without ever suspending."""
        run_ids.append(run_context.run_id)
        started.set()
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
        return str(n)

    def model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return ToolCall(name="busy", arguments={"n": len(messages)}) if tools else "no"

    agent = Agent(model=FunctionModel(model), tools=[busy], request_limit=None)
    outcome: dict[str, Any] = {}

    def runner() -> None:
        outcome["out"] = agent.run("x")

    thread = threading.Thread(target=runner)
    thread.start()
    assert started.wait(10)
    assert agent.cancel_run(run_ids[0], reason="enough") is True
    thread.join(10)
    assert not thread.is_alive()
    out = outcome["out"]
    assert out.status is RunStatus.cancelled and out.content == "enough"
    assert len(out.tools) <= 2


def test_cancel_returns_false_for_unknown_and_finished_runs() -> None:
    agent = Agent(model="test")
    out = agent.run("hello")
    assert agent.cancel_run(out.run_id) is False
    assert agent.cancel_run("no-such-run") is False
