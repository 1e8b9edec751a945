"""`DBOSAgent` in one process, on a SQLite DBOS system database: runs as workflows, model
requests and tool calls as steps, idempotent run ids, live streaming, pause and continue,
errors as data, and clear errors for bad calls.

(Crashes, restarts and several workers are in tests/integration/test_durable_processes.py.)
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dbos")

from dbos import DBOS

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunEvent
from pilothouse.db import SqliteDb
from pilothouse.durable import DBOSAgent, DurableRunError
from pilothouse.exceptions import (
    ContinueRunError,
    ModelProviderError,
    RunNotFoundError,
)
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel
from pilothouse.run.bridge import run_sync
from pilothouse.run.session import INTERRUPTED
from pilothouse.tools import Function, Toolkit, tool

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", autouse=True)
def dbos_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """DBOS on a SQLite system database of this module's own, launched once."""
    path = tmp_path_factory.mktemp("dbos") / "system.sqlite"
    DBOS(
        config={
            "name": "pilothouse-unit-tests",
            "system_database_url": f"sqlite:///{path}",
            "notification_listener_polling_interval_sec": 0.05,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    yield
    DBOS.destroy()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDb]:
    store = SqliteDb(str(tmp_path / "agents.db"))
    yield store
    run_sync(store.close())


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Counting:
    """A FunctionModel decision that counts its calls: weather tool, then an answer."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, messages: list[Message], tools: list[ToolDefinition]) -> Any:
        self.calls += 1
        if messages[-1].role == "tool":
            return f"The weather: {messages[-1].content}"
        return [ToolCall(name="get_weather", arguments={"city": "Paris"})]


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def weather_agent(db: SqliteDb | None = None) -> tuple[DBOSAgent, Counting]:
    decide = Counting()
    agent = Agent(name=unique("weather"), model=FunctionModel(decide), tools=[get_weather], db=db)
    return DBOSAgent(agent), decide


def step_names(run_id: str, prefix: str) -> list[str]:
    return [
        step["function_name"]
        for step in DBOS.list_workflow_steps(run_id)
        if step["function_name"].startswith(prefix + ".")
    ]


def test_run_is_a_workflow_with_one_step_per_model_request_and_tool_call(db: SqliteDb) -> None:
    durable, decide = weather_agent(db)
    out = durable.run("Weather in Paris?", session_id="s1")

    assert out.status is RunStatus.completed
    assert out.content == "The weather: Sunny in Paris"
    assert decide.calls == 2
    name = durable.name
    assert step_names(out.run_id, name) == [
        f"{name}.model",
        f"{name}.tool.get_weather",
        f"{name}.model",
    ]
    assert DBOS.get_workflow_status(out.run_id).status == "SUCCESS"  # type: ignore[union-attr]
    stored = durable.agent.get_run_output(out.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert stored.content == out.content and stored.session_id == "s1"


def test_a_run_id_makes_the_run_idempotent(db: SqliteDb) -> None:
    durable, decide = weather_agent(db)
    run_id = unique("run")
    first = durable.run("Weather in Paris?", run_id=run_id)
    again = durable.run("Weather in Paris?", run_id=run_id)

    assert first.run_id == again.run_id == run_id
    assert again.status is RunStatus.completed and again.content == first.content
    assert decide.calls == 2  # the second call ran nothing
    assert len(run_sync(db.list_runs(first.session_id or ""))) == 1


def test_the_wrapped_agent_is_not_changed() -> None:
    model = FunctionModel(Counting())
    tools = [get_weather]
    agent = Agent(name=unique("plain"), model=model, tools=tools)
    durable = DBOSAgent(agent)
    assert agent.model is model and agent.tools is tools and agent.tools == [get_weather]
    # Outside a workflow the agent runs as before, and no workflow is made.
    out = agent.run("Weather?")
    assert out.status is RunStatus.completed
    assert DBOS.get_workflow_status(out.run_id) is None
    assert durable.run("Weather?").agent_id == agent.id


async def test_content_streams_while_the_model_step_runs() -> None:
    gate = asyncio.Event()

    async def slow_answer(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        yield "Hello"
        # Goes on only once the caller has seen "Hello": the step is still running then.
        await asyncio.wait_for(gate.wait(), 10)
        yield " world"

    model = FunctionModel(stream_function=slow_answer)
    durable = DBOSAgent(Agent(name=unique("streamer"), model=model))
    seen: list[str] = []
    stream = durable.arun("Hi", stream=True)
    async for event in stream:
        assert event.event == RunEvent.run_content
        seen.append(event.content)
        gate.set()
    assert seen == ["Hello", " world"]
    assert stream.output is not None and stream.output.content == "Hello world"


async def test_tool_call_started_arrives_while_the_tool_step_runs() -> None:
    seen_start = threading.Event()

    def wait_to_be_seen() -> str:
        """Finish once the caller has seen this call start."""
        return "seen" if seen_start.wait(10) else "not seen"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return str(messages[-1].content)
        return [ToolCall(name="wait_to_be_seen", arguments={})]

    durable = DBOSAgent(
        Agent(name=unique("tools"), model=FunctionModel(decide), tools=[wait_to_be_seen])
    )
    kinds = []
    async for event in durable.arun("Go", stream=True, stream_events=True):
        kinds.append(event.event)
        if event.event == RunEvent.tool_call_started:
            seen_start.set()
    assert kinds == [
        RunEvent.run_started,
        RunEvent.tool_call_started,
        RunEvent.tool_call_completed,
        RunEvent.run_content,
        RunEvent.run_content_completed,
        RunEvent.run_completed,
    ]


def test_sync_streams_show_lifecycle_events_only_when_asked(db: SqliteDb) -> None:
    durable, _ = weather_agent(db)
    plain = [e.event for e in durable.run("Weather?", stream=True)]
    assert plain == [RunEvent.run_content]
    full = [e.event for e in durable.run("Weather?", stream=True, stream_events=True)]
    assert full[0] == RunEvent.run_started and full[-1] == RunEvent.run_completed
    assert RunEvent.tool_call_started in full


@tool(requires_confirmation=True)
def delete_logs(table: str) -> str:
    """Delete the rows of a table."""
    deleted.append(table)
    return f"deleted {table}"


deleted: list[str] = []


def deleting(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"result: {messages[-1].content}"
    return [ToolCall(name="delete_logs", arguments={"table": "logs"})]


def test_a_paused_run_waits_and_continues_with_the_answers(db: SqliteDb) -> None:
    deleted.clear()
    durable = DBOSAgent(
        Agent(name=unique("admin"), model=FunctionModel(deleting), tools=[delete_logs], db=db)
    )
    paused = durable.run("Empty the logs")
    assert paused.status is RunStatus.paused
    assert DBOS.get_workflow_status(paused.run_id).status == "PENDING"  # type: ignore[union-attr]
    stored = durable.get_run_output(paused.run_id)
    assert stored is not None and stored.status is RunStatus.paused

    # Without an answer nothing is sent and the run still waits.
    with pytest.raises(ContinueRunError):
        durable.continue_run(paused)
    assert deleted == []

    paused.tools[0].confirmed = True
    done = durable.continue_run(paused, timeout=30)
    assert done.status is RunStatus.completed
    assert done.content == "result: deleted logs"
    assert deleted == ["logs"]
    assert done.run_id == paused.run_id
    stored = durable.get_run_output(paused.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert len(run_sync(db.list_runs(paused.session_id or ""))) == 1
    with pytest.raises(ContinueRunError, match="completed"):
        durable.continue_run(run_id=paused.run_id, updated_tools=paused.tools)


def test_continuing_by_id_with_updated_tools_and_an_unknown_run() -> None:
    deleted.clear()
    durable = DBOSAgent(
        Agent(name=unique("admin"), model=FunctionModel(deleting), tools=[delete_logs])
    )
    paused = durable.run("Empty the logs")
    # Without a db the run's last stop comes from DBOS.
    known = durable.get_run_output(paused.run_id)
    assert known is not None and known.status is RunStatus.paused
    answer = paused.tools[0]
    answer.confirmed = False
    answer.confirmation_note = "not today"
    done = durable.continue_run(run_id=paused.run_id, updated_tools=[answer], timeout=30)
    assert done.status is RunStatus.completed
    assert deleted == []
    with pytest.raises(RunNotFoundError):
        durable.continue_run(run_id=unique("nope"), updated_tools=[answer])


def test_a_failing_model_ends_the_run_with_an_error_not_the_workflow() -> None:
    def broken(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        raise ModelProviderError("bad request", status_code=400)

    durable = DBOSAgent(Agent(name=unique("broken"), model=FunctionModel(broken)))
    out = durable.run("Hi")
    assert out.status is RunStatus.error
    assert "bad request" in str(out.content)
    assert DBOS.get_workflow_status(out.run_id).status == "SUCCESS"  # type: ignore[union-attr]


def test_a_failing_tool_reads_as_in_a_plain_run() -> None:
    def explode(city: str) -> str:
        """Always fails."""
        raise ValueError(f"no weather for {city}")

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return str(messages[-1].content)
        return [ToolCall(name="explode", arguments={"city": "Paris"})]

    agent = Agent(name=unique("explode"), model=FunctionModel(decide), tools=[explode])
    plain = agent.run("Go")
    durable = DBOSAgent(agent).run("Go")
    assert durable.status is RunStatus.completed
    assert durable.content == plain.content
    assert plain.content == "Error from explode: ValueError: no weather for Paris"
    assert durable.tools[0].tool_call_error is True


def test_several_tool_calls_are_steps_in_call_order() -> None:
    def first() -> str:
        """One."""
        return "1"

    def second() -> str:
        """Two."""
        return "2"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return "done"
        return [ToolCall(name="second", arguments={}), ToolCall(name="first", arguments={})]

    durable = DBOSAgent(
        Agent(name=unique("many"), model=FunctionModel(decide), tools=[first, second])
    )
    out = durable.run("Go")
    assert [t.result for t in out.tools] == ["2", "1"]
    name = durable.name
    assert step_names(out.run_id, name) == [
        f"{name}.model",
        f"{name}.tool.second",
        f"{name}.tool.first",
        f"{name}.model",
    ]


def test_bad_calls_raise_before_anything_starts(db: SqliteDb) -> None:
    durable, decide = weather_agent(db)
    run_id = unique("bad")
    with pytest.raises(TypeError, match="no_such_option"):
        durable.run("Hi", run_id=run_id, no_such_option=True)
    with pytest.raises(TypeError, match="picklable"):
        durable.run("Hi", run_id=run_id, dependencies={"lock": threading.Lock()})
    with pytest.raises(TypeError, match="rerun"):
        durable.run("Hi", run_id=run_id, rerun=True)
    with pytest.raises(TypeError, match="run_id"):
        durable.run("Hi", run_id="")
    with pytest.raises(ValueError, match="register it first"):
        durable.enqueue("Hi", queue="no-such-queue")
    assert DBOS.get_workflow_status(run_id) is None
    assert decide.calls == 0


def test_the_wrapper_needs_an_agent_and_a_unique_name() -> None:
    with pytest.raises(TypeError, match="must be an Agent"):
        DBOSAgent("agent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        DBOSAgent(Agent(model=FunctionModel(Counting())))
    name = unique("twice")
    DBOSAgent(Agent(name=name, model=FunctionModel(Counting())))
    with pytest.raises(ValueError, match="exists already"):
        DBOSAgent(Agent(model=FunctionModel(Counting())), name=name)


async def test_wait_run_output_times_out_while_the_run_goes_on() -> None:
    gate = asyncio.Event()

    async def waits(messages: list[Message], tools: list[ToolDefinition]) -> AsyncIterator[str]:
        await asyncio.wait_for(gate.wait(), 10)
        yield "finally"

    durable = DBOSAgent(Agent(name=unique("slow"), model=FunctionModel(stream_function=waits)))
    run_id = unique("slow-run")
    started = asyncio.ensure_future(durable.arun("Hi", run_id=run_id))
    with pytest.raises(TimeoutError):
        await durable.await_run_output(run_id, timeout=0.3)
    gate.set()
    out = await started
    assert out.content == "finally"
    again = await durable.await_run_output(run_id, timeout=10)
    assert again.content == "finally"


def test_a_workflow_executed_again_replays_its_finished_steps(db: SqliteDb) -> None:
    calls = {"model": 0, "tool": 0}

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        calls["model"] += 1
        if messages[-1].role == "tool":
            return f"noted: {messages[-1].content}"
        return [ToolCall(name="note", arguments={"text": "blue"})]

    def note(text: str, session_state: dict[str, Any]) -> str:
        """Note a text in the session."""
        calls["tool"] += 1
        session_state["noted"] = text
        return f"{text} noted"

    durable = DBOSAgent(
        Agent(name=unique("replay"), model=FunctionModel(decide), tools=[note], db=db)
    )
    out = durable.run("Note blue")
    assert calls == {"model": 2, "tool": 1}
    steps = DBOS.list_workflow_steps(out.run_id)
    second_request = [s["function_id"] for s in steps if s["function_name"].endswith(".model")][1]

    # DBOS executes the workflow again (as after a crash), from the second model request on:
    # the first request and the tool call come back from the records.
    again = DBOS.fork_workflow(out.run_id, second_request).get_result()

    assert again.status is RunStatus.completed
    assert again.content == "noted: blue noted"
    assert calls == {"model": 3, "tool": 1}
    # The replayed tool call's change to the session state still counts.
    assert again.session_state == {"noted": "blue"}
    assert [t.result for t in again.tools] == ["blue noted"]


class Lookups(Toolkit):
    """A toolkit that lists its tools anew for each run (and may lose one)."""

    present = True

    def __init__(self) -> None:
        super().__init__(name="lookups")

    @property
    def functions(self) -> list[Function]:
        return [Function(lookup)] if Lookups.present else []


def lookup(key: str) -> str:
    """Look a key up."""
    return f"{key}=1"


def test_a_replay_that_leaves_the_recorded_path_ends_the_run() -> None:
    calls = {"model": 0}

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        calls["model"] += 1
        if messages[-1].role == "tool":
            return str(messages[-1].content)
        return [ToolCall(name="lookup", arguments={"key": "k"})]

    Lookups.present = True
    durable = DBOSAgent(
        Agent(name=unique("diverge"), model=FunctionModel(decide), tools=[Lookups()])
    )
    out = durable.run("Look k up")
    assert out.content == "k=1" and calls["model"] == 2
    steps = DBOS.list_workflow_steps(out.run_id)
    assert [s["function_name"].split(".", 1)[1] for s in steps[:3]] == [
        "model",
        "tool.lookup",
        "model",
    ]

    # The new code has no such tool: executed again, the run meets the recorded tool call
    # where it now makes a model request, and ends there with an error.
    Lookups.present = False
    try:
        again = DBOS.fork_workflow(out.run_id, steps[2]["function_id"]).get_result()
    finally:
        Lookups.present = True
    assert again.status is RunStatus.error
    assert "cannot go on" in str(again.content) and "DBOSUnexpectedStepError" in str(again.content)
    assert calls["model"] == 2  # no request was made on someone else's record


async def test_a_workflow_cancelled_in_dbos_stops_and_can_be_resumed(db: SqliteDb) -> None:
    release = threading.Event()

    def slow(key: str) -> str:
        """Wait to be released."""
        release.wait(10)
        return f"{key} done"

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return str(messages[-1].content)
        return [ToolCall(name="slow", arguments={"key": "k"})]

    durable = DBOSAgent(
        Agent(name=unique("cancel"), model=FunctionModel(decide), tools=[slow], db=db)
    )
    run_id = unique("cancelled")
    running = asyncio.ensure_future(durable.arun("Go", run_id=run_id))
    for _ in range(200):
        if await DBOS.list_workflow_steps_async(run_id):
            break
        await asyncio.sleep(0.02)
    await DBOS.cancel_workflow_async(run_id)
    release.set()
    with pytest.raises(DurableRunError):
        await asyncio.wait_for(running, 20)
    stored = await durable.agent.aget_run_output(run_id)
    # Left RUNNING, as a crash leaves it: read back, it shows as interrupted.
    assert stored is not None and stored.status is RunStatus.error
    assert stored.content == INTERRUPTED

    resumed = await (await DBOS.resume_workflow_async(run_id)).get_result()
    assert resumed.status is RunStatus.completed and resumed.content == "k done"
    stored = await durable.agent.aget_run_output(run_id)
    assert stored is not None and stored.status is RunStatus.completed
