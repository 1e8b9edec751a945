"""Conformance: any Python text is stored and read back exactly, on every store.

A NUL character or a lone surrogate in a run's content, its metadata or the session state is
what PostgreSQL's JSONB and every driver's UTF-8 encoding refuse; the stores must keep it all
the same, and give back values equal to those written.
"""

from __future__ import annotations

import pytest
from storekit import ODD_TEXT, StoreFactory, finished, make_run, new_id, odd_value

from pilothouse import Agent, RunStatus
from pilothouse.db import SessionStore
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


async def test_a_run_with_odd_text_reads_back_equal(store: SessionStore) -> None:
    session = new_id("s-")
    run = make_run(session, content=ODD_TEXT)
    run["metadata"] = odd_value()
    await store.insert_run(run)
    assert await store.get_run(run["run_id"]) == run

    done = finished(run, {"answer": ODD_TEXT, "list": [ODD_TEXT]})
    await store.update_run(done)
    assert await store.get_run(run["run_id"]) == done
    assert await store.list_runs(session) == [done]
    assert await store.get_last_runs(session, limit=5) == [done]


async def test_odd_text_in_session_state_reads_back_equal(store: SessionStore) -> None:
    state = odd_value()
    assert await store.set_session_state("s-1", state, expected_version=0) == 1
    assert await store.get_session_state("s-1") == (state, 1)
    session = await store.get_session("s-1")
    assert session is not None and session.session_state == state


async def test_the_run_path_keeps_odd_text_in_runs_and_state(store: SessionStore) -> None:
    session = new_id("s-")
    run = make_run(session, content=ODD_TEXT)
    started = await store.start_run(run, lease_owner="me", lease_ttl=30)
    assert started is not None
    done = finished(run, ODD_TEXT)
    state = odd_value()
    assert await store.finish_run(
        done, lease_owner="me", state=state, expected_version=started.state_version
    )
    assert await store.get_last_runs(session, limit=1) == [done]
    assert await store.get_session_state(session) == (state, 1)
    # The next run starts from that state, as written.
    again = await store.start_run(make_run(session), lease_owner="me", lease_ttl=30)
    assert again is not None and again.session_state == state


def read_file(name: str, session_state: dict[str, object]) -> str:
    """Read a file whose name is not UTF-8, and note it in the session state."""
    session_state["last_file"] = name
    session_state["names"] = [*session_state.get("names", []), name]  # type: ignore[list-item]
    return "a\x00b\ud800"


def decide(messages: list[Message], tools: list[ToolDefinition]) -> str | ToolCall:
    if messages[-1].role == "tool":
        return f"Read: {messages[-1].content}\x00\udc80"
    return ToolCall(name="read_file", arguments={"name": "caf\udce9.txt"})


@pytest.mark.parametrize("stream", [False, True])
async def test_a_run_with_odd_text_everywhere_completes_and_is_stored(
    store: SessionStore, stream: bool
) -> None:
    agent = Agent(model=FunctionModel(decide), tools=[read_file], db=store)
    session = new_id("s-")
    if stream:
        async for _ in agent.arun("open caf\udce9.txt \x00", session_id=session, stream=True):
            pass
        out = await agent.aget_last_run_output(session)
        assert out is not None
    else:
        out = await agent.arun("open caf\udce9.txt \x00", session_id=session)
    assert out.status is RunStatus.completed, out.content
    assert out.content == "Read: a\x00b\ud800\x00\udc80"
    assert out.tools[0].result == "a\x00b\ud800"

    stored = await agent.aget_last_run_output(session)
    assert stored is not None and stored.status is RunStatus.completed
    assert stored.content == out.content
    assert stored.tools[0].result == "a\x00b\ud800"
    assert stored.input is not None and stored.input.input_content == "open caf\udce9.txt \x00"
    state = await agent.aget_session_state(session)
    assert state["last_file"] == "caf\udce9.txt"
    assert state["names"] == ["caf\udce9.txt"]


def test_agent_run_with_odd_text_completes_and_reads_back(store_factory: StoreFactory) -> None:
    agent = Agent(model=FunctionModel(decide), tools=[read_file], db=store_factory())
    out = agent.run("open caf\udce9.txt", session_id="s-sync")
    assert out.status is RunStatus.completed, out.content
    stored = agent.get_last_run_output("s-sync")
    assert stored is not None and stored.content == "Read: a\x00b\ud800\x00\udc80"
    assert agent.get_session_state("s-sync")["last_file"] == "caf\udce9.txt"
