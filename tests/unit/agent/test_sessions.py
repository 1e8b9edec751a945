"""Agents with a session store: stored runs, history, session state, getters, failures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.db import InMemoryDb, SessionStore, SqliteDb
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield InMemoryDb()
        return
    store = SqliteDb(db_file=str(tmp_path / "agents.db"))
    yield store
    # Closed, so that no connection thread outlives the event loop it answers to.
    from pilothouse.run.bridge import run_sync

    run_sync(store.close())


def remembers_names(messages: list[Message], tools: list[ToolDefinition]) -> str:
    """Answers 'What's my name?' from whatever the history says."""
    question = messages[-1].text()
    if question.startswith("My name is "):
        return "Nice to meet you."
    for message in messages:
        if message.role == "user" and message.text().startswith("My name is "):
            return f"Your name is {message.text().removeprefix('My name is ')}"
    return "I don't know your name."


def test_history_lets_the_second_run_remember_the_first(db: SessionStore) -> None:
    agent = Agent(model=FunctionModel(remembers_names), db=db, add_history_to_context=True)
    agent.run("My name is John", user_id="user_123", session_id="session_abc")
    answer = agent.run("What's my name?", user_id="user_123", session_id="session_abc")
    assert answer.content == "Your name is John"
    assert [m.from_history for m in answer.messages] == [True, True, False, False]
    other = agent.run("What's my name?", user_id="user_123", session_id="another")
    assert other.content == "I don't know your name."


def test_without_history_the_agent_forgets(db: SessionStore) -> None:
    agent = Agent(model=FunctionModel(remembers_names), db=db)
    agent.run("My name is John", session_id="s")
    assert agent.run("What's my name?", session_id="s").content == "I don't know your name."
    assert agent.run("What's my name?", session_id="s", add_history_to_context=True).content == (
        "Your name is John"
    )


def test_runs_are_stored_with_their_final_status(db: SessionStore) -> None:
    def fails_on_boom(messages: list[Message], tools: list[ToolDefinition]) -> str:
        if messages[-1].text() == "boom":
            raise ModelProviderError("bad request", status_code=400)
        return "fine"

    agent = Agent(model=FunctionModel(fails_on_boom), db=db, add_history_to_context=True)
    ok = agent.run("hello", session_id="s")
    failed = agent.run("boom", session_id="s")
    assert agent.get_run_output(ok.run_id).status is RunStatus.completed  # type: ignore[union-attr]
    stored = agent.get_run_output(failed.run_id)
    assert stored is not None and stored.status is RunStatus.error
    assert stored.content == "bad request"
    assert agent.get_last_run_output(session_id="s").run_id == failed.run_id  # type: ignore[union-attr]
    # Failed runs are left out of the history by default.
    third = agent.run("again", session_id="s")
    assert [m.text() for m in third.messages if m.from_history] == ["hello", "fine"]
    assert [m.text() for m in agent.get_chat_history("s")] == ["hello", "fine", "again", "fine"]


def test_history_is_bounded_and_never_starts_with_a_tool_result(db: SessionStore) -> None:
    def tool_each_time(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return "noted"
        return [ToolCall(name="note", arguments={"text": messages[-1].text()})]

    def note(text: str) -> str:
        """Note a text."""
        return text

    agent = Agent(
        model=FunctionModel(tool_each_time),
        tools=[note],
        db=db,
        add_history_to_context=True,
        num_history_runs=2,
        num_history_messages=6,
    )
    for i in range(5):
        out = agent.run(f"turn {i}", session_id="s")
    history = [m for m in out.messages if m.from_history]
    assert 0 < len(history) <= 6
    assert history[0].role == "user"
    assert history[0].text() == "turn 3"  # only the last two runs, cut at a user message
    call_ids = {c.id for m in history if m.tool_calls for c in m.tool_calls}
    assert all(m.tool_call_id in call_ids for m in history if m.role == "tool")


def test_session_state_defaults_override_and_persistence(db: SessionStore) -> None:
    def add_item(item: str, session_state: dict[str, Any]) -> str:
        """Add an item to the list."""
        session_state.setdefault("items", []).append(item)
        return ", ".join(session_state["items"])

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return "ok"
        return [ToolCall(name="add_item", arguments={"item": messages[-1].text()})]

    agent = Agent(
        model=FunctionModel(decide),
        tools=[add_item],
        db=db,
        session_state={"items": [], "owner": "default"},
    )
    agent.run("milk", session_id="s")
    out = agent.run("eggs", session_id="s", session_state={"owner": "ada"})
    assert out.session_state == {"items": ["milk", "eggs"], "owner": "ada"}
    assert agent.get_session_state("s") == {"items": ["milk", "eggs"], "owner": "ada"}
    assert agent.session_state == {"items": [], "owner": "default"}
    session = agent.get_session("s")
    assert session is not None and session.run_count == 2 and session.agent_id == agent.id


async def test_concurrent_runs_on_one_session_lose_nothing(db: SessionStore) -> None:
    def increment(session_state: dict[str, Any]) -> int:
        """Count one more."""
        session_state["count"] = session_state.get("count", 0) + 1
        return int(session_state["count"])

    async def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        await asyncio.sleep(0)
        if messages[-1].role == "tool":
            return "counted"
        return [ToolCall(name="increment")]

    agent = Agent(model=FunctionModel(decide), tools=[increment], db=db)
    outputs = await asyncio.gather(*(agent.arun(f"n{i}", session_id="shared") for i in range(100)))
    assert all(o.status is RunStatus.completed for o in outputs)
    assert await agent.aget_session_state("shared") == {"count": 100}
    session = await agent.aget_session("shared")
    assert session is not None and session.run_count == 100
    assert len(await db.list_runs("shared")) == 100


def test_another_process_reads_the_runs(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    agent = Agent(
        model=FunctionModel(lambda m, t: "stored answer"),
        db=SqliteDb(db_file=str(path)),
        id="agent-1",
    )
    out = agent.run("question", session_id="s1", user_id="u1")
    script = f"""
from pilothouse import Agent
from pilothouse.db import SqliteDb
from pilothouse.models.test import TestModel
agent = Agent(model=TestModel(), db=SqliteDb(db_file={str(path)!r}), id="agent-1")
last = agent.get_last_run_output(session_id="s1")
print(last.run_id, last.content, last.status.value)
print([s.session_id for s in agent.get_sessions("u1")])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == f"{out.run_id} stored answer COMPLETED"
    assert second == "['s1']"


class FlakyStore(InMemoryDb):
    """An in-memory store that can be switched off, like a database going away."""

    down = False

    async def insert_run(self, run: dict[str, Any]) -> None:
        if self.down:
            from pilothouse.db import StoreError

            raise StoreError("connection refused")
        await super().insert_run(run)

    async def update_run(self, run: dict[str, Any]) -> None:
        if self.down:
            from pilothouse.db import StoreError

            raise StoreError("connection refused")
        await super().update_run(run)


async def test_a_store_that_goes_away_ends_the_run_in_error_and_recovers() -> None:
    store = FlakyStore()
    gate = asyncio.Event()

    async def slow(messages: list[Message], tools: list[ToolDefinition]) -> str:
        await gate.wait()
        return "answer"

    agent = Agent(model=FunctionModel(slow), db=store)
    running = asyncio.ensure_future(agent.arun("x", session_id="s"))
    await asyncio.sleep(0.01)
    store.down = True  # goes away mid-run
    gate.set()
    out = await asyncio.wait_for(running, 5)
    assert out.status is RunStatus.error
    assert "session store failed: connection refused" in out.content
    store.down = False
    again = await agent.arun("y", session_id="s")
    assert again.status is RunStatus.completed
    assert (await agent.aget_last_run_output("s")).run_id == again.run_id  # type: ignore[union-attr]


def test_history_and_memories_without_a_store_use_the_process_store() -> None:
    from pilothouse.db import process_store

    agent = Agent(model=FunctionModel(remembers_names), add_history_to_context=True)
    assert agent.db is process_store()
    with pytest.raises(TypeError, match="db must be a session store"):
        Agent(model=FunctionModel(remembers_names), db="sqlite:///x.db")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no session store"):
        Agent(model=FunctionModel(remembers_names)).get_session_state("s")


def test_user_memories_are_updated_after_the_answer_and_shown_next_time() -> None:
    from pilothouse.agent import MemoryUpdateCompletedEvent, MemoryUpdateStartedEvent, RunEvent

    seen_system: list[str] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        names = {t.name for t in tools}
        if "add_memory" in names:  # the memory manager's call
            if messages[-1].role == "tool":
                return "done"
            if "I love sailing" in messages[-1].text():
                return [ToolCall(name="add_memory", arguments={"memory": "The user loves sailing"})]
            return "nothing to remember"
        seen_system.append(messages[0].text() if messages[0].role == "system" else "")
        return "Noted!"

    store = InMemoryDb()
    agent = Agent(model=FunctionModel(decide), db=store, enable_user_memories=True)
    events = list(agent.run("I love sailing", user_id="ada", stream=True, stream_events=True))
    names = [e.event for e in events]
    content_done = names.index(RunEvent.run_content_completed)
    assert names.index(RunEvent.memory_update_started) > content_done
    assert isinstance(events[names.index(RunEvent.memory_update_started)], MemoryUpdateStartedEvent)
    assert isinstance(events[-2], MemoryUpdateCompletedEvent)
    assert names[-1] == RunEvent.run_completed
    assert [m.memory for m in agent.get_user_memories("ada")] == ["The user loves sailing"]
    second = agent.run("Plan my weekend", user_id="ada")
    assert "The user loves sailing" in seen_system[-1]
    assert second.metrics.model_calls == 2  # the answer and the memory manager's call
    assert agent.get_user_memories("bob") == []
