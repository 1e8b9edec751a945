"""A separate process that runs an agent many times on one session (test_reliability)."""

from __future__ import annotations

import sys
from typing import Any

from pilothouse import Agent
from pilothouse.db import PostgresDb, SessionStore, SqliteDb
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


def count(session_state: dict[str, Any], tag: str) -> str:
    """Count one run in the session state."""
    session_state["count"] = session_state.get("count", 0) + 1
    session_state.setdefault("tags", []).append(tag)
    return str(session_state["count"])


def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    """Count once, then answer."""
    if messages[-1].role == "tool":
        return f"counted {messages[-1].content}"
    return ToolCall(name="count", arguments={"tag": messages[-1].text()})


def open_store(kind: str, target: str, prefix: str) -> SessionStore:
    """The store named on the command line."""
    if kind == "sqlite":
        return SqliteDb(target)
    url, schema = target.split("#", 1)
    return PostgresDb(url, schema=schema, table_prefix=prefix)


def agent_for(store: SessionStore) -> Agent:
    """The same agent in every process."""
    return Agent(id="counter", model=FunctionModel(decide), tools=[count], db=store)


if __name__ == "__main__":
    kind, target, prefix, session_id, tag, runs = sys.argv[1:7]
    agent = agent_for(open_store(kind, target, prefix))
    for i in range(int(runs)):
        out = agent.run(f"{tag}-{i}", session_id=session_id)
        assert out.status.value == "COMPLETED", out.content
