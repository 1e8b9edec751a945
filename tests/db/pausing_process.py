"""A separate process that starts a run which pauses for confirmation (test_continue_run)."""

from __future__ import annotations

import sys

from pilothouse import Agent, tool
from pilothouse.db import PostgresDb, SessionStore, SqliteDb
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel


@tool(requires_confirmation=True)
def write_note(path: str, text: str) -> str:
    """Write a note to a file.

    Args:
        path: Where to write.
        text: What to write.
    """
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return f"wrote {len(text)} characters"


def decide(messages: list[Message], tools: object) -> object:
    """Ask to write the note; once the tool answered, report its result."""
    if messages[-1].role == "tool":
        return f"Done: {messages[-1].content}"
    return ToolCall(name="write_note", arguments={"path": NOTE_PATH, "text": "hello"})


NOTE_PATH = ""


def open_store(kind: str, target: str, prefix: str) -> SessionStore:
    """The store named on the command line."""
    if kind == "sqlite":
        return SqliteDb(target)
    url, schema = target.split("#", 1)
    return PostgresDb(url, schema=schema, table_prefix=prefix)


def agent_for(store: SessionStore) -> Agent:
    """The same agent in every process: same id, tools and model."""
    return Agent(id="note-writer", model=FunctionModel(decide), tools=[write_note], db=store)


if __name__ == "__main__":
    kind, target, prefix, NOTE_PATH, session_id = sys.argv[1:6]
    paused = agent_for(open_store(kind, target, prefix)).run("Write hello", session_id=session_id)
    print(paused.status.value, paused.run_id)
