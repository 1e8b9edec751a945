"""Continuing failed, cancelled and interrupted runs from their last checkpoint; the stored
status is always the returned one; runs that call their own session; history without a db."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.db import InMemoryDb, SessionStore, SqliteDb
from pilothouse.exceptions import ContinueRunError, ModelProviderError
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield InMemoryDb()
        return
    store = SqliteDb(db_file=str(tmp_path / "agents.db"))
    yield store
    from pilothouse.run.bridge import run_sync

    run_sync(store.close())


class Flaky:
    """A model that calls book() then answers, failing its answer until ``fixed``."""

    def __init__(self) -> None:
        self.fixed = False
        self.requests = 0

    def __call__(self, messages: list[Message], tools: list[ToolDefinition]) -> Any:
        self.requests += 1
        if messages[-1].role == "user":
            return ToolCall(name="book", arguments={"what": "flight"})
        if not self.fixed:
            raise ModelProviderError("the provider is down", status_code=400)
        return f"Booked: {messages[-1].content}"


bookings: list[str] = []


def book(what: str) -> str:
    """Book something (a side effect that must not happen twice)."""
    bookings.append(what)
    return f"{what} #{len(bookings)}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    bookings.clear()


def test_an_errored_run_resumes_without_repeating_its_finished_tool(db: SessionStore) -> None:
    model = Flaky()
    agent = Agent(model=FunctionModel(model), tools=[book], db=db, retries=0)
    failed = agent.run("Book me a flight", session_id="s1")
    assert failed.status is RunStatus.error and bookings == ["flight"]
    stored = agent.get_run_output(failed.run_id)
    assert stored is not None and stored.status is RunStatus.error
    model.fixed = True
    resumed = agent.continue_run(run_id=failed.run_id, session_id="s1")
    assert resumed.status is RunStatus.completed
    assert resumed.run_id == failed.run_id
    assert resumed.content == "Booked: flight #1"
    assert bookings == ["flight"]  # not booked twice
    stored = agent.get_run_output(failed.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert stored.content == "Booked: flight #1"
    assert model.requests == 3


def test_an_errored_run_continues_from_the_run_response_without_a_db() -> None:
    model = Flaky()
    agent = Agent(model=FunctionModel(model), tools=[book], retries=0)
    failed = agent.run("Book me a flight")
    model.fixed = True
    resumed = agent.continue_run(failed)
    assert resumed.status is RunStatus.completed and bookings == ["flight"]


def test_a_cancelled_batch_runs_only_its_unfinished_calls(db: SessionStore) -> None:
    gate = asyncio.Event()
    ran: list[str] = []

    quick_done = asyncio.Event()

    async def quick(name: str) -> str:
        """Finish at once."""
        ran.append(f"quick {name}")
        quick_done.set()
        return f"quick {name}"

    async def slow(name: str) -> str:
        """Wait for the gate."""
        await gate.wait()
        ran.append(f"slow {name}")
        return f"slow {name}"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "user":
            return [
                ToolCall(name="quick", arguments={"name": "a"}),
                ToolCall(name="slow", arguments={"name": "b"}),
            ]
        return " + ".join(m.content for m in messages if m.role == "tool")

    agent = Agent(model=FunctionModel(decide), tools=[quick, slow], db=db)

    async def scenario() -> None:
        stream = agent.arun("go", session_id="s2", stream=True)
        run_id = stream.run_id
        consumer = asyncio.create_task(_drain(stream))
        await asyncio.wait_for(quick_done.wait(), 10)
        await asyncio.sleep(0.05)
        assert agent.cancel_run(run_id)
        await consumer
        cancelled = await agent.aget_run_output(run_id)
        assert cancelled is not None and cancelled.status is RunStatus.cancelled
        gate.set()
        resumed = await agent.acontinue_run(run_id=run_id, session_id="s2")
        assert resumed.status is RunStatus.completed
        assert resumed.content == "quick a + slow b"

    asyncio.run(scenario())
    assert ran == ["quick a", "slow b"]


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


def test_continuing_a_completed_or_unknown_run_or_another_agents_run_is_refused(
    db: SessionStore,
) -> None:
    agent = Agent(model="test", db=db)
    done = agent.run("hi", session_id="s3")
    with pytest.raises(ContinueRunError, match="COMPLETED"):
        agent.continue_run(done)
    with pytest.raises(ContinueRunError, match="COMPLETED"):
        agent.continue_run(run_id=done.run_id, session_id="s3")
    from pilothouse.exceptions import RunNotFoundError

    with pytest.raises(RunNotFoundError):
        agent.continue_run(run_id="nope", session_id="s3")
    model = Flaky()
    failing = Agent(model=FunctionModel(model), tools=[book], db=db, retries=0)
    failed = failing.run("Book", session_id="s4")
    with pytest.raises(ContinueRunError, match="belongs to agent"):
        agent.continue_run(run_id=failed.run_id, session_id="s4")
    stored = failing.get_run_output(failed.run_id)
    assert stored is not None and stored.status is RunStatus.error


def test_a_failing_final_write_still_stores_the_returned_status(
    db: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = Agent(model="test", db=db)
    real_finish = type(db).finish_run
    failures = [0]

    async def finish_once_failing(self: Any, run: dict[str, Any], **kwargs: Any) -> bool:
        if kwargs.get("state") is not None:
            failures[0] += 1
            raise TypeError("Object of type set is not JSON serializable")
        return await real_finish(self, run, **kwargs)

    monkeypatch.setattr(type(db), "finish_run", finish_once_failing)
    out = agent.run("hi", session_id="s5", session_state={"n": 1})
    assert failures[0] >= 1
    assert out.status is RunStatus.error
    stored = agent.get_run_output(out.run_id)
    assert stored is not None and stored.status is RunStatus.error


def test_a_tool_that_runs_its_own_agent_on_its_own_session_fails_at_once(
    db: SessionStore,
) -> None:
    inner: list[Any] = []

    def ask_again(agent: Agent, run_context: Any) -> str:
        """Run the same agent on the same session."""
        result = agent.run("inner", session_id=run_context.session_id)
        inner.append(result)
        return f"inner run: {result.status.value}: {result.content}"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "user" and messages[-1].content == "outer":
            return ToolCall(name="ask_again", arguments={})
        return "answer"

    agent = Agent(model=FunctionModel(decide), tools=[ask_again], db=db)
    out = agent.run("outer", session_id="s6")
    assert out.status is RunStatus.completed
    assert inner[0].status is RunStatus.error
    assert "same session" in inner[0].content


async def test_an_async_tool_running_its_agent_on_another_session_works(
    db: SessionStore,
) -> None:
    async def ask_elsewhere(agent: Agent) -> str:
        """Run the same agent on another session."""
        result = await agent.arun("inner", session_id="elsewhere")
        return result.status.value

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "user" and messages[-1].content == "outer":
            return ToolCall(name="ask_elsewhere", arguments={})
        return "answer"

    agent = Agent(model=FunctionModel(decide), tools=[ask_elsewhere], db=db)
    out = await asyncio.wait_for(agent.arun("outer", session_id="s7"), 30)
    assert out.tools[0].result == "COMPLETED"


def remembers(messages: list[Message], tools: list[ToolDefinition]) -> str:
    for message in messages:
        text = message.text()
        if (
            message.role == "user"
            and text.startswith("My name is ")
            and message is not messages[-1]
        ):
            return "You are " + message.text().removeprefix("My name is ")
    return "Hello"


def test_history_without_a_db_uses_the_process_store() -> None:
    agent = Agent(model=FunctionModel(remembers), add_history_to_context=True)
    agent.run("My name is Ada", session_id="proc-1")
    assert agent.run("Who am I?", session_id="proc-1").content == "You are Ada"
    # Per run too: runs that ask for history are kept in the process store.
    plain = Agent(model=FunctionModel(remembers))
    plain.run("My name is Bob", session_id="proc-2", add_history_to_context=True)
    out = plain.run("Who am I?", session_id="proc-2", add_history_to_context=True)
    assert out.content == "You are Bob"
    assert plain.run("Who am I?", session_id="proc-2").content == "Hello"


def test_tool_choice_takes_the_openai_dict_form() -> None:
    def pick(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        return "done"

    def lookup(q: str) -> str:
        """Look something up."""
        return q

    agent = Agent(
        model=FunctionModel(pick),
        tools=[lookup],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    assert agent.tool_choice == "lookup"
    with pytest.raises(TypeError, match="tool_choice"):
        Agent(tool_choice={"type": "function"})


async def test_a_run_cancelled_while_its_start_is_being_stored_is_stored_cancelled() -> None:
    started = asyncio.Event()

    class SlowToAnswer(InMemoryDb):
        async def start_run(self, run: dict[str, Any], **kwargs: Any) -> Any:
            result = await super().start_run(run, **kwargs)
            started.set()
            await asyncio.sleep(30)  # committed, but the answer is slow to come back
            return result

    store = SlowToAnswer()
    agent = Agent(model="test", db=store)
    stream = agent.arun("hello", session_id="slow", stream=True)
    consumer = asyncio.create_task(_drain(stream))
    await asyncio.wait_for(started.wait(), 10)
    assert agent.cancel_run(stream.run_id)
    await asyncio.wait_for(consumer, 10)
    assert stream.output.status is RunStatus.cancelled
    stored = await store.get_run(stream.run_id)
    assert stored is not None and stored["status"] == "CANCELLED"
    # The lease was given back: someone else may take the session at once.
    assert await store.acquire_session_lease("slow", "someone", 5)
