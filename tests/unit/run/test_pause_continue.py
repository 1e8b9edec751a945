"""Human in the loop: tools that pause a run, and continue_run / acontinue_run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pilothouse import Agent, RunOutput, RunStatus, tool
from pilothouse.db import InMemoryDb
from pilothouse.exceptions import ContinueRunError, RunNotFoundError
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.run.events import (
    RunCompletedEvent,
    RunContinuedEvent,
    RunPausedEvent,
    ToolCallCompletedEvent,
)
from pilothouse.run.output import ToolExecution

deleted: list[str] = []
searched: list[str] = []


@tool(requires_confirmation=True)
def delete_file(path: str) -> str:
    """Delete a file.

    Args:
        path: The file to delete.
    """
    deleted.append(path)
    return f"deleted {path}"


def search(query: str) -> str:
    """Search the web.

    Args:
        query: What to look for.
    """
    searched.append(query)
    return f"results for {query}"


@tool(requires_user_input=True, user_input_fields=["to"])
def send_email(subject: str, to: str) -> str:
    """Send an email.

    Args:
        subject: The subject line.
        to: The address to send to.
    """
    return f"sent {subject!r} to {to}"


@tool(external_execution=True)
def run_shell(command: str) -> str:
    """Run a shell command on the user's machine.

    Args:
        command: The command line.
    """
    raise AssertionError("an external tool is never run by the agent")


@pytest.fixture(autouse=True)
def _reset() -> None:
    deleted.clear()
    searched.clear()


def _answer_with_last_tool_results(messages: list[Message], tools: Any) -> Any:
    """Call the planned tools on the first turn, then answer with the tool results."""
    results = [m.content for m in messages if m.role == "tool"]
    if results:
        return " | ".join(str(r) for r in results)
    return PLAN


PLAN: list[ToolCall] = []


def _agent(*tools: Any, plan: list[ToolCall], db: Any = None) -> Agent:
    PLAN[:] = plan
    return Agent(model=FunctionModel(_answer_with_last_tool_results), tools=list(tools), db=db)


def test_confirmation_pauses_then_confirmed_tool_runs() -> None:
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "a.txt"})])
    paused = agent.run("Delete a.txt")

    assert paused.status is RunStatus.paused
    assert paused.is_paused
    assert deleted == []  # nothing ran before the user said yes
    assert [t.tool_name for t in paused.tools_requiring_confirmation] == ["delete_file"]
    assert "confirmation of delete_file" in paused.content

    paused.tools_requiring_confirmation[0].confirmed = True
    done = agent.continue_run(paused)

    assert done.status is RunStatus.completed
    assert done.run_id == paused.run_id
    assert deleted == ["a.txt"]
    assert done.content == "deleted a.txt"
    assert done.tools[0].confirmed is True
    assert done.tools[0].result == "deleted a.txt"
    roles = [m.role for m in done.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]


def test_rejected_tool_is_reported_to_the_model_and_not_run() -> None:
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "a.txt"})])
    paused = agent.run("Delete a.txt")
    execution = paused.tools[0]
    execution.confirmed = False
    execution.confirmation_note = "keep it"

    done = agent.continue_run(paused)

    assert deleted == []
    assert done.status is RunStatus.completed
    assert "rejected" in done.content and "keep it" in done.content
    tool_message = next(m for m in done.messages if m.role == "tool")
    assert "rejected" in tool_message.content


def test_other_tools_of_the_batch_run_once_and_not_again_on_continue() -> None:
    agent = _agent(
        delete_file,
        search,
        plan=[
            ToolCall(name="search", arguments={"query": "pilothouse"}),
            ToolCall(name="delete_file", arguments={"path": "b.txt"}),
        ],
    )
    paused = agent.run("Search, then delete b.txt")
    assert paused.is_paused
    assert searched == ["pilothouse"]
    assert paused.tools[0].result == "results for pilothouse"

    paused.tools[1].confirmed = True
    done = agent.continue_run(paused)

    assert searched == ["pilothouse"]  # not run a second time
    assert deleted == ["b.txt"]
    assert done.content == "results for pilothouse | deleted b.txt"
    tool_ids = [m.tool_call_id for m in done.messages if m.role == "tool"]
    assert tool_ids == [t.tool_call_id for t in done.tools]


def test_user_input_fills_the_fields_the_tool_asks_for() -> None:
    agent = _agent(
        send_email,
        plan=[ToolCall(name="send_email", arguments={"subject": "Hi", "to": "?"})],
    )
    paused = agent.run("Email the team")
    [waiting] = paused.tools_requiring_user_input
    fields = waiting.user_input_schema
    assert fields is not None
    assert [f.name for f in fields] == ["to"]
    assert fields[0].field_type == "string"
    assert fields[0].description == "The address to send to."

    fields[0].value = "team@example.com"
    done = agent.continue_run(paused)

    assert done.status is RunStatus.completed
    assert done.content == "sent 'Hi' to team@example.com"
    assert done.tools[0].answered is True
    assert done.tools[0].tool_args == {"subject": "Hi", "to": "team@example.com"}


def test_external_execution_result_is_used_as_given() -> None:
    agent = _agent(run_shell, plan=[ToolCall(name="run_shell", arguments={"command": "ls"})])
    paused = agent.run("List files")
    [waiting] = paused.tools_awaiting_external_execution
    assert waiting.tool_args == {"command": "ls"}

    waiting.result = "README.md\nsrc"
    done = agent.continue_run(paused)

    assert done.status is RunStatus.completed
    assert done.content == "README.md\nsrc"


def test_updated_tools_by_run_id_in_the_same_process() -> None:
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "c"})])
    paused = agent.run("Delete c")
    answer = ToolExecution.from_dict(paused.tools[0].to_dict())
    answer.confirmed = True

    done = agent.continue_run(run_id=paused.run_id, updated_tools=[answer])

    assert done.status is RunStatus.completed
    assert deleted == ["c"]


def test_continuing_a_run_that_is_not_paused_raises_and_changes_nothing() -> None:
    agent = _agent(search, plan=[ToolCall(name="search", arguments={"query": "x"})])
    done = agent.run("Search x")
    assert done.status is RunStatus.completed
    before = done.to_dict()

    with pytest.raises(ContinueRunError, match="is COMPLETED"):
        agent.continue_run(done)
    assert done.to_dict() == before


def test_unanswered_tool_raises_naming_it_and_the_run_stays_paused() -> None:
    agent = _agent(
        delete_file,
        send_email,
        plan=[
            ToolCall(name="delete_file", arguments={"path": "d"}),
            ToolCall(name="send_email", arguments={"subject": "S"}),
        ],
    )
    paused = agent.run("Both")
    paused.tools[0].confirmed = True  # the email's recipient is left empty
    before = json.dumps(paused.to_dict(), sort_keys=True)

    with pytest.raises(ContinueRunError, match=r"send_email .*give a value for to"):
        agent.continue_run(paused)

    assert json.dumps(paused.to_dict(), sort_keys=True) == before
    assert paused.is_paused
    assert deleted == []


def test_bad_arguments_to_continue_run() -> None:
    agent = _agent(search, plan=[])
    with pytest.raises(TypeError, match="pass the paused run"):
        agent.continue_run()
    with pytest.raises(TypeError, match="run_response must be the paused RunOutput"):
        agent.continue_run("run-1")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="updated_tools must be a list of ToolExecution"):
        agent.continue_run(run_id="r", updated_tools=[{"confirmed": True}])
    with pytest.raises(TypeError, match="did you mean"):
        agent.continue_run(run_id="r", updated_tool=[])
    with pytest.raises(RunNotFoundError, match="no paused run 'nope'"):
        agent.continue_run(run_id="nope")


def test_streaming_pause_and_continue_events() -> None:
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "e"})])
    events = list(agent.run("Delete e", stream=True))
    assert isinstance(events[-1], RunPausedEvent)
    paused_tools = events[-1].tools
    assert paused_tools is not None and paused_tools[0].tool_name == "delete_file"
    paused = agent.get_last_run_output()
    assert paused is not None and paused.is_paused

    paused.tools[0].confirmed = True
    continued = list(agent.continue_run(paused, stream=True, stream_events=True))

    kinds = [type(e) for e in continued]
    assert kinds[0] is RunContinuedEvent
    assert ToolCallCompletedEvent in kinds
    assert kinds[-1] is RunCompletedEvent
    assert all(e.run_id == paused.run_id for e in continued)
    assert deleted == ["e"]


async def test_acontinue_run_and_async_stream() -> None:
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "f"})])
    paused = await agent.arun("Delete f")
    paused.tools[0].confirmed = True
    done = await agent.acontinue_run(paused)
    assert done.status is RunStatus.completed and deleted == ["f"]

    paused = await agent.arun("Delete f")
    paused.tools[0].confirmed = True
    stream = agent.acontinue_run(paused, stream=True, stream_events=True)
    events = [e async for e in stream]
    assert isinstance(events[-1], RunCompletedEvent)
    assert stream.output.status is RunStatus.completed


async def test_paused_run_is_stored_and_continued_from_the_store() -> None:
    db = InMemoryDb()
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "g"})], db=db)
    paused = await agent.arun("Delete g", session_id="s1")
    stored = await db.get_run(paused.run_id)
    assert stored is not None and stored["status"] == RunStatus.paused.value

    answer = ToolExecution.from_dict(stored["tools"][0])
    answer.confirmed = True
    done = await agent.acontinue_run(run_id=paused.run_id, updated_tools=[answer])

    assert done.status is RunStatus.completed
    assert done.run_id == paused.run_id
    assert deleted == ["g"]
    final = await db.get_run(paused.run_id)
    assert final is not None and final["status"] == RunStatus.completed.value
    assert final["content"] == "deleted g"
    runs = await db.get_last_runs("s1", limit=10)
    assert len(runs) == 1  # continued in place, not a second run

    with pytest.raises(ContinueRunError, match="is COMPLETED"):
        await agent.acontinue_run(run_id=paused.run_id, updated_tools=[answer])
    assert deleted == ["g"]


def test_store_events_keeps_pause_and_continue_events() -> None:
    PLAN[:] = [ToolCall(name="delete_file", arguments={"path": "h"})]
    agent = Agent(
        model=FunctionModel(_answer_with_last_tool_results),
        tools=[delete_file],
        store_events=True,
    )
    paused = agent.run("Delete h")
    assert paused.events is not None
    assert isinstance(paused.events[-1], RunPausedEvent)
    paused.tools[0].confirmed = True
    done = agent.continue_run(paused)
    assert done.events is not None
    names = [e.event for e in done.events]
    assert names[0] == "RunStarted"
    assert "RunPaused" in names and "RunContinued" in names
    assert names[-1] == "RunCompleted"
    assert RunOutput.from_dict(json.loads(done.to_json())).events is not None


async def test_two_callers_continuing_one_stored_run_run_its_tool_once(tmp_path: Any) -> None:
    from pilothouse.db import SqliteDb

    db = SqliteDb(tmp_path / "runs.db")
    agent = _agent(delete_file, plan=[ToolCall(name="delete_file", arguments={"path": "x"})], db=db)
    paused = await agent.arun("Delete x", session_id="race")
    paused.tools[0].confirmed = True

    results = await asyncio.gather(
        agent.acontinue_run(paused), agent.acontinue_run(paused), return_exceptions=True
    )

    completed = [r for r in results if isinstance(r, RunOutput)]
    refused = [r for r in results if isinstance(r, ContinueRunError)]
    assert len(completed) == 1 and len(refused) == 1, results
    assert completed[0].status is RunStatus.completed
    assert deleted == ["x"]
    stored = await db.get_run(paused.run_id)
    assert stored is not None and stored["status"] == RunStatus.completed.value
    await db.close()


def test_sync_stream_continue_of_a_finished_stored_run_raises_on_first_step() -> None:
    db = InMemoryDb()
    agent = _agent(search, plan=[ToolCall(name="search", arguments={"query": "q"})], db=db)
    done = agent.run("Search q", session_id="st")
    answer = ToolExecution(tool_name="search", tool_call_id=done.tools[0].tool_call_id)
    stream = agent.continue_run(
        run_id=done.run_id, updated_tools=[answer], session_id="st", stream=True
    )
    with pytest.raises(ContinueRunError, match="is COMPLETED"):
        next(iter(stream))
    assert agent.get_run_output(done.run_id).status is RunStatus.completed  # type: ignore[union-attr]


def test_tool_call_limit_counts_paused_calls_and_holds_after_continue() -> None:
    calls: list[int] = []

    def decide(messages: list[Message], tools: Any) -> Any:
        calls.append(len(tools))
        if messages[-1].role == "tool":
            if "tool call limit" in messages[-1].text():
                return "Stopped at the limit."
            # Asks for more: over the limit, this call is not run.
            return ToolCall(name="search", arguments={"query": "more"})
        return [
            ToolCall(name="delete_file", arguments={"path": "y"}),
            ToolCall(name="search", arguments={"query": "q"}),
        ]

    agent = Agent(model=FunctionModel(decide), tools=[delete_file, search], tool_call_limit=2)
    paused = agent.run("Go")
    assert paused.is_paused and searched == ["q"]
    paused.tools[0].confirmed = True

    done = agent.continue_run(paused)

    assert deleted == ["y"]
    assert searched == ["q"]  # the third call was over the limit
    assert done.status is RunStatus.completed
    assert len(done.tools) == 3
    assert done.tools[2].tool_call_error and "tool call limit" in str(done.tools[2].result)
    assert done.content == "Stopped at the limit."


def test_a_model_that_ignores_the_tool_call_limit_ends_the_run_with_an_error() -> None:
    def decide(messages: list[Message], tools: Any) -> Any:
        return ToolCall(name="search", arguments={"query": "again"})

    out = Agent(model=FunctionModel(decide), tools=[search], tool_call_limit=1).run("Go")

    assert out.status is RunStatus.error
    assert "kept calling tools after the tool call limit of 1" in out.content
    assert searched == ["again"]


async def test_a_continued_run_can_be_cancelled_and_is_stored_cancelled() -> None:
    started = asyncio.Event()

    @tool(requires_confirmation=True)
    async def slow_job(name: str) -> str:
        """A long job.

        Args:
            name: The job.
        """
        started.set()
        await asyncio.sleep(30)
        return "finished"

    db = InMemoryDb()
    PLAN[:] = [ToolCall(name="slow_job", arguments={"name": "j"})]
    agent = Agent(model=FunctionModel(_answer_with_last_tool_results), tools=[slow_job], db=db)
    paused = await agent.arun("Run j", session_id="c")
    paused.tools[0].confirmed = True

    task = asyncio.create_task(agent.acontinue_run(paused))
    await started.wait()
    assert agent.cancel_run(paused.run_id, "user stopped it")
    out = await task

    assert out.status is RunStatus.cancelled
    stored = await db.get_run(paused.run_id)
    assert stored is not None and stored["status"] == RunStatus.cancelled.value
