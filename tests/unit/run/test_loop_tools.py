"""Tool calls inside the run loop: execution, errors fed back, concurrency, limits, events."""

from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any

from pilothouse import Agent, RunContext, RunStatus, tool
from pilothouse.agent import RunEvent, ToolCallCompletedEvent, ToolCallStartedEvent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel, TestModel


def call_then_answer(*calls: ToolCall) -> FunctionModel:
    """A model that makes the given calls once, then answers with the tool results."""

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            results = [m.content for m in messages if m.role == "tool"]
            return "results: " + " | ".join(results)
        return list(calls)

    return FunctionModel(decide)


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def test_tool_is_executed_and_its_result_goes_back_to_the_model() -> None:
    agent = Agent(
        model=call_then_answer(ToolCall(name="get_weather", arguments={"city": "Paris"})),
        tools=[get_weather],
    )
    out = agent.run("weather?")
    assert out.status is RunStatus.completed
    assert out.content == "results: Sunny in Paris"
    [execution] = out.tools
    assert execution.tool_name == "get_weather"
    assert execution.tool_args == {"city": "Paris"}
    assert execution.result == "Sunny in Paris"
    assert execution.tool_call_error is False
    assert [m.role for m in out.messages] == ["user", "assistant", "tool", "assistant"]
    assert out.messages[2].tool_call_id == out.messages[1].tool_calls[0].id  # type: ignore[index]


def test_invalid_arguments_go_back_to_the_model_and_the_run_goes_on() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    agent = Agent(model=call_then_answer(ToolCall(name="add", arguments={"a": "one"})), tools=[add])
    out = agent.run("x")
    assert out.status is RunStatus.completed
    [execution] = out.tools
    assert execution.tool_call_error is True
    assert "a" in execution.result and "b" in execution.result
    assert out.messages[-2].tool_call_error is True


def test_a_tool_that_raises_is_reported_to_the_model() -> None:
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    out = Agent(model=call_then_answer(ToolCall(name="explode")), tools=[explode]).run("x")
    assert out.status is RunStatus.completed
    assert out.tools[0].tool_call_error is True
    assert "disk on fire" in out.tools[0].result
    assert "disk on fire" in out.content


def test_an_unknown_tool_is_reported_with_the_available_ones() -> None:
    out = Agent(model=call_then_answer(ToolCall(name="nope")), tools=[get_weather]).run("x")
    assert out.tools[0].tool_call_error is True
    assert "nope" in out.tools[0].result and "get_weather" in out.tools[0].result


def test_arguments_are_converted_to_the_annotated_types_before_the_call() -> None:

    seen: list[object] = []

    def when(day: datetime.date) -> str:
        """Record a day."""
        seen.append(day)
        return day.isoformat()

    Agent(
        model=call_then_answer(ToolCall(name="when", arguments={"day": "2024-05-01"})), tools=[when]
    ).run("x")
    assert seen == [datetime.date(2024, 5, 1)]


async def test_several_tool_calls_run_concurrently() -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def wait_for_other(name: str) -> str:
        """Finishes only when the other call has started too."""
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), timeout=2)
        return name

    agent = Agent(
        model=call_then_answer(
            ToolCall(name="wait_for_other", arguments={"name": "a"}),
            ToolCall(name="wait_for_other", arguments={"name": "b"}),
        ),
        tools=[wait_for_other],
    )
    out = await agent.arun("x")
    assert [t.tool_call_error for t in out.tools] == [False, False]
    assert out.content == "results: a | b"


async def test_sync_tools_run_in_a_worker_thread_in_async_runs() -> None:
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def where() -> str:
        """Record the thread."""
        ran_on.append(threading.get_ident())
        return "ok"

    await Agent(model=call_then_answer(ToolCall(name="where")), tools=[where]).arun("x")
    assert ran_on and ran_on[0] != loop_thread


def test_injected_parameters_are_hidden_and_passed() -> None:
    seen: dict[str, Any] = {}

    def inspect_me(
        city: str,
        agent: Agent,
        run_context: RunContext,
        session_state: dict[str, Any],
        dependencies: dict[str, Any],
    ) -> str:
        """Look at what was injected."""
        seen.update(agent=agent, ctx=run_context, state=session_state, deps=dependencies)
        session_state["visits"] = session_state.get("visits", 0) + 1
        return city

    tools_seen: list[list[str]] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        tools_seen.append(list(tools[0].parameters["properties"]))
        if messages[-1].role == "tool":
            return "ok"
        return [ToolCall(name="inspect_me", arguments={"city": "Oslo"})]

    agent = Agent(
        model=FunctionModel(decide),
        tools=[inspect_me],
        dependencies={"db": "conn"},
        session_state={"visits": 1},
    )
    out = agent.run("x", session_id="s", user_id="u")
    assert tools_seen[0] == ["city"]
    assert seen["agent"] is agent
    assert seen["ctx"].session_id == "s" and seen["ctx"].user_id == "u"
    assert seen["deps"] == {"db": "conn"}
    assert out.session_state == {"visits": 2}
    assert agent.session_state == {"visits": 1}  # the agent's default is never changed


def test_tool_call_limit_stops_further_calls() -> None:
    calls: list[str] = []

    def count(n: int) -> str:
        """Count."""
        calls.append("x")
        return "counted"

    def always_call(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        done = sum(m.role == "tool" for m in messages)
        if done >= 5:
            return "gave up"
        return [ToolCall(name="count", arguments={"n": done + i}) for i in range(2)]

    out = Agent(model=FunctionModel(always_call), tools=[count], tool_call_limit=3).run("x")
    assert len(calls) == 3
    assert [t.tool_call_error for t in out.tools] == [False, False, False, True, True, True]
    assert "limit" in out.tools[3].result


def test_a_forced_tool_choice_applies_to_the_first_call_only() -> None:
    choices: list[str | None] = []

    class Recording(FunctionModel):
        async def stream(self, messages, request):  # type: ignore[no-untyped-def, override]
            choices.append(request.tool_choice)
            async for delta in super().stream(messages, request):
                yield delta

    out = Agent(
        model=Recording(
            call_then_answer(ToolCall(name="get_weather", arguments={"city": "x"})).function
        ),
        tools=[get_weather],
        tool_choice="get_weather",
    ).run("x")
    assert out.status is RunStatus.completed
    assert choices == ["get_weather", "auto"]


def test_stop_after_tool_call_ends_the_run_with_the_result() -> None:
    @tool(stop_after_tool_call=True)
    def final(city: str) -> str:
        """Answer directly."""
        return f"final for {city}"

    out = Agent(
        model=call_then_answer(ToolCall(name="final", arguments={"city": "Rome"})), tools=[final]
    ).run("x")
    assert out.content == "final for Rome"
    assert [m.role for m in out.messages] == ["user", "assistant", "tool"]


def test_stream_events_in_order_for_a_tool_run() -> None:
    agent = Agent(model=TestModel(text="It is sunny."), tools=[get_weather])
    events = list(agent.run("weather?", stream=True, stream_events=True))
    names = [e.event for e in events]
    assert names == [
        RunEvent.run_started,
        RunEvent.tool_call_started,
        RunEvent.tool_call_completed,
        RunEvent.run_content,
        RunEvent.run_content,
        RunEvent.run_content,
        RunEvent.run_content_completed,
        RunEvent.run_completed,
    ]
    started = events[1]
    completed = events[2]
    assert isinstance(started, ToolCallStartedEvent) and started.tool is not None
    assert started.tool.tool_name == "get_weather" and started.tool.tool_args == {"city": "a"}
    assert isinstance(completed, ToolCallCompletedEvent) and completed.tool is not None
    assert completed.tool.result == "Sunny in a"
    run_id = events[0].run_id
    assert all(e.run_id == run_id and e.agent_id == agent.id for e in events)
    assert events[-1].content == "It is sunny."  # type: ignore[union-attr]
