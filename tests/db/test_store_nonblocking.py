"""The event loop never blocks on storage: a session of store calls under a blocking-call
detector (blockbuster), and a store shared by event loops in several threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx
from storekit import PG_URL, finished, make_run, new_id

from pilothouse.db import PostgresDb, SessionStore, SqliteDb


async def _a_session_of_calls(store: SessionStore, tag: str) -> None:
    """Every kind of call, from first use (creating the tables) to close."""
    sid, rid, uid = f"s-{tag}", f"r-{tag}", f"u-{tag}"
    await store.upsert_session(sid, user_id=uid, agent_id="a-1")
    run = make_run(sid, rid)
    await store.insert_run(run)
    await store.update_run(finished(run, "done"))
    assert [r["run_id"] for r in await store.get_last_runs(sid, limit=3)] == [rid]
    assert len(await store.list_runs(sid)) == 1
    await store.update_session_state(sid, lambda s: {**s, "n": 1})
    assert (await store.get_session_state(sid))[0] == {"n": 1}
    async with store.session_lease(sid, ttl=5):
        pass
    memory = await store.add_memory(uid, "likes tea")
    await store.update_memory(memory.memory_id, "likes coffee")
    assert len(await store.get_user_memories(uid)) == 1
    await store.delete_memory(memory.memory_id)
    assert len(await store.list_sessions(user_id=uid)) == 1
    assert await store.schema_version() == 1
    await store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_no_blocking_calls_on_the_event_loop(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Constructed outside the detector: constructors run before the loop serves anything.
    if kind == "sqlite":
        store: SessionStore = SqliteDb(tmp_path / "new-dir" / "p.db")
    else:
        schema = request.getfixturevalue("pg_schema")
        store = PostgresDb(PG_URL, schema=schema, table_prefix=new_id("t") + "_")
    with blockbuster_ctx():
        await _a_session_of_calls(store, "first")
        # Again, on existing tables, after close() released the connections.
        await _a_session_of_calls(store, "second")


def test_the_detector_is_really_armed() -> None:
    async def blocks() -> None:
        with blockbuster_ctx():
            import time

            time.sleep(0.001)  # noqa: ASYNC251 - the blocking call the detector must catch

    with pytest.raises(Exception, match="sleep"):
        asyncio.run(blocks())


async def test_one_store_serves_event_loops_in_several_threads(sql_store: SessionStore) -> None:
    # Synchronous run() calls drive the store from a loop per thread, next to this loop.
    errors: list[BaseException] = []

    def in_thread(tag: str) -> None:
        async def work() -> None:
            for i in range(10):
                await sql_store.insert_run(make_run("shared", f"{tag}-{i}"))
                await sql_store.update_session_state("shared", _increment)
            # A loop that ends closes its own connections: they belong to it.
            await sql_store.close()

        try:
            asyncio.run(work())
        except BaseException as exc:  # reported below, with the thread's tag
            errors.append(exc)

    threads = [threading.Thread(target=in_thread, args=(f"t{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for i in range(10):
        await sql_store.insert_run(make_run("shared", f"main-{i}"))
        await sql_store.update_session_state("shared", _increment)
    await asyncio.to_thread(lambda: [t.join() for t in threads])

    assert errors == []
    assert len(await sql_store.list_runs("shared")) == 40
    assert (await sql_store.get_session_state("shared"))[0] == {"n": 40}


def _increment(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "n": state.get("n", 0) + 1}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_whole_agent_session_never_blocks_the_loop(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from pilothouse import Agent, RunStatus
    from pilothouse.models import Message, ToolCall, ToolDefinition
    from pilothouse.models.test import FunctionModel

    if kind == "sqlite":
        store: SessionStore = SqliteDb(tmp_path / "agent.db")
    else:
        schema = request.getfixturevalue("pg_schema")
        store = PostgresDb(PG_URL, schema=schema, table_prefix=new_id("t") + "_")

    async def remember(fact: str, session_state: dict[str, Any]) -> str:
        """Remember a fact."""
        session_state.setdefault("facts", []).append(fact)
        return fact

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if any(t.name == "add_memory" for t in tools):
            return "nothing to remember"
        if messages[-1].role == "tool":
            return "remembered"
        return [ToolCall(name="remember", arguments={"fact": messages[-1].text()})]

    agent = Agent(
        model=FunctionModel(decide),
        tools=[remember],
        db=store,
        add_history_to_context=True,
        enable_user_memories=True,
    )
    with blockbuster_ctx():
        for text in ("one", "two", "three"):
            out = await agent.arun(text, session_id="s", user_id="u")
            assert out.status is RunStatus.completed, out.content
        events = [e async for e in agent.arun("four", session_id="s", user_id="u", stream=True)]
        assert events
        assert await agent.aget_session_state("s") == {"facts": ["one", "two", "three", "four"]}
        assert len(await agent.aget_chat_history("s")) == 8
        await store.close()
