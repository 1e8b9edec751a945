"""cancel_run, and one Agent serving many concurrent runs without mixing them up."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunCancelledEvent, RunContentEvent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


async def test_cancel_run_interrupts_an_in_flight_model_call() -> None:
    entered = asyncio.Event()

    async def hangs(messages: list[Message], tools: list[ToolDefinition]) -> str:
        entered.set()
        await asyncio.sleep(60)
        return "never"

    agent = Agent(model=FunctionModel(hangs))
    stream = agent.arun("x", stream=True, stream_events=True)
    events: list[Any] = []

    async def consume() -> None:
        async for event in stream:
            events.append(event)

    task = asyncio.create_task(consume())
    await asyncio.wait_for(entered.wait(), 2)
    assert agent.cancel_run(stream.run_id, reason="user pressed stop") is True
    await asyncio.wait_for(task, 2)
    assert isinstance(events[-1], RunCancelledEvent)
    assert events[-1].reason == "user pressed stop"
    assert stream.output.status is RunStatus.cancelled
    assert agent.cancel_run(stream.run_id) is False  # no longer running


async def test_cancel_run_interrupts_a_running_tool() -> None:
    entered = asyncio.Event()

    async def slow_tool() -> str:
        """Takes forever."""
        entered.set()
        await asyncio.sleep(60)
        return "never"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return [ToolCall(name="slow_tool")]

    agent = Agent(model=FunctionModel(decide), tools=[slow_tool])
    stream = agent.arun("x", stream=True)
    task = asyncio.ensure_future(_collect(stream))
    await asyncio.wait_for(entered.wait(), 2)
    agent.cancel_run(stream.run_id)
    events = await asyncio.wait_for(task, 2)
    assert isinstance(events[-1], RunCancelledEvent)
    assert stream.output.status is RunStatus.cancelled


async def _collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


def test_cancel_run_from_another_thread_during_a_sync_run() -> None:
    started = threading.Event()

    async def hangs(messages: list[Message], tools: list[ToolDefinition]) -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    agent = Agent(model=FunctionModel(hangs))
    events: list[Any] = []

    def consume() -> None:
        for event in agent.run("x", stream=True, stream_events=True):
            events.append(event)

    runner = threading.Thread(target=consume)
    runner.start()
    assert started.wait(2)
    run_id = events[0].run_id  # RunStarted arrived before the model call
    assert agent.cancel_run(run_id)
    runner.join(2)
    assert not runner.is_alive()
    assert isinstance(events[-1], RunCancelledEvent)
    last = agent.get_last_run_output()
    assert last is not None and last.run_id == run_id
    assert last.status is RunStatus.cancelled


async def test_a_stream_closed_early_is_recorded_as_cancelled() -> None:
    agent = Agent(model=FunctionModel(lambda m, t: "one two three four"))
    stream = agent.arun("x", stream=True)
    async for event in stream:
        assert isinstance(event, RunContentEvent)
        break
    await stream.aclose()
    assert stream.output.status is RunStatus.cancelled


async def test_one_agent_serves_a_thousand_concurrent_runs_in_isolation() -> None:
    async def answer(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        await asyncio.sleep(0.01)
        if messages[-1].role == "tool":
            return f"answer to {messages[-1].content}"
        return [ToolCall(name="tag", arguments={"text": messages[-1].text()})]

    def tag(text: str, session_state: dict[str, Any]) -> str:
        """Tag a text."""
        session_state["seen"] = text
        return f"<{text}>"

    agent = Agent(model=FunctionModel(answer), tools=[tag])
    outputs = await asyncio.gather(
        *(
            agent.arun(f"question {i}", user_id=f"user-{i}", session_id=f"session-{i}")
            for i in range(1000)
        )
    )
    assert len({o.run_id for o in outputs}) == 1000
    for i, out in enumerate(outputs):
        assert out.status is RunStatus.completed
        assert (out.user_id, out.session_id) == (f"user-{i}", f"session-{i}")
        assert out.content == f"answer to <question {i}>"
        texts = " ".join(m.text() for m in out.messages)
        assert f"question {i}" in texts
        others = {f"question {j}" for j in (i - 1, i + 1) if 0 <= j < 1000}
        assert not any(f"{o}>" in texts or texts.endswith(o) for o in others)
        assert out.session_state == {"seen": f"question {i}"}
    assert agent.session_state is None


def test_callable_dependencies_are_resolved_on_every_run() -> None:
    counter = iter(range(100))
    seen: list[Any] = []

    def read_deps(dependencies: dict[str, Any]) -> str:
        """Read the dependencies."""
        seen.append(dependencies["ticket"])
        return "ok"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return "done" if messages[-1].role == "tool" else [ToolCall(name="read_deps")]

    agent = Agent(
        model=FunctionModel(decide),
        tools=[read_deps],
        dependencies={"ticket": lambda: next(counter)},
    )
    agent.run("x")
    agent.run("x")
    asyncio.run(agent.arun("x"))
    assert seen == [0, 1, 2]


async def test_async_dependencies_may_take_the_run_context() -> None:
    async def who(run_context: Any) -> str:
        await asyncio.sleep(0)
        return f"user {run_context.user_id}"

    seen: list[str] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> str:
        seen.append(messages[0].text())
        return "ok"

    agent = Agent(
        model=FunctionModel(decide), instructions="Serve {who}.", dependencies={"who": who}
    )
    await agent.arun("x", user_id="ada")
    assert seen == ["Serve user ada."]


def test_sync_runs_from_many_threads_do_not_mix() -> None:
    agent = Agent(model=FunctionModel(lambda m, t: f"re: {m[-1].text()}"))
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        for _ in range(20):
            results[i] = agent.run(f"t{i}").content
            time.sleep(0)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"re: t{i}" for i in range(8)}


async def test_a_cancelled_run_closes_the_model_stream_at_once() -> None:
    entered = asyncio.Event()
    closed: list[bool] = []

    async def endless(messages: list[Message], tools: list[ToolDefinition]):  # type: ignore[no-untyped-def]
        try:
            yield "start "
            entered.set()
            await asyncio.sleep(60)
            yield "never"
        finally:
            closed.append(True)

    agent = Agent(model=FunctionModel(stream_function=endless))
    stream = agent.arun("x", stream=True)
    task = asyncio.ensure_future(_collect(stream))
    await asyncio.wait_for(entered.wait(), 2)
    agent.cancel_run(stream.run_id)
    await asyncio.wait_for(task, 2)
    assert closed == [True]
    assert stream.output.status is RunStatus.cancelled
