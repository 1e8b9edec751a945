"""Sessions: keep runs in a SQLite store, with their history and session state.

Runs are associated with a ``user_id`` and a ``session_id``. With ``add_history_to_context``
the second run sees the first, so the agent remembers the user's name; a tool changes the
session state through its injected ``session_state`` parameter and the change is stored; the
getters read everything back, also from another Agent object (or process) on the same file.

Runs offline: a `FunctionModel` answers from the messages it is sent, so what it "remembers"
is exactly the history the run loop gave it. Replace it with a real model, e.g.
``model="openai:gpt-5-mini"``. The database lives in a temporary directory.
"""

import tempfile
from pathlib import Path
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.db import SqliteDb
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


def add_to_cart(item: str, session_state: dict[str, Any]) -> str:
    """Put an item in the shopping cart.

    Args:
        item: The item to add.
    """
    # session_state is injected (hidden from the model): this run's copy of the session state.
    session_state.setdefault("cart", []).append(item)
    return f"The cart now holds {len(session_state['cart'])} item(s)."


def attentive_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    """Answers from the conversation it is sent, history included."""
    last = messages[-1]
    if last.role == "tool":
        return f"Done. {last.content}"
    question = last.text()
    if question.startswith("Add "):
        return [ToolCall(name="add_to_cart", arguments={"item": question.removeprefix("Add ")})]
    if question.startswith("My name is "):
        return "Nice to meet you."
    for message in messages:
        if message.role == "user" and message.text().startswith("My name is "):
            return f"Your name is {message.text().removeprefix('My name is ')}."
    return "I don't know your name."


with tempfile.TemporaryDirectory() as tmp:
    db_file = Path(tmp) / "agents.db"
    agent = Agent(
        model=FunctionModel(attentive_model),
        db=SqliteDb(db_file),
        tools=[add_to_cart],
        add_history_to_context=True,
        session_state={"cart": []},  # the default state of a new session
    )

    # Two runs of one session: the second one is sent the first as history.
    agent.run("My name is John", user_id="user_123", session_id="session_abc")
    answer = agent.run("What's my name?", user_id="user_123", session_id="session_abc")
    print("session_abc:", answer.content)
    assert answer.content == "Your name is John."
    assert [m.text() for m in answer.messages if m.from_history] == [
        "My name is John",
        "Nice to meet you.",
    ]
    # Another session of the same user starts from scratch.
    other = agent.run("What's my name?", user_id="user_123", session_id="session_xyz")
    print("session_xyz:", other.content)
    assert other.content == "I don't know your name."

    # A tool changes the session state; each run starts from the stored state.
    agent.run("Add apples", user_id="user_123", session_id="session_abc")
    last = agent.run("Add pears", user_id="user_123", session_id="session_abc")
    print("tool said:", last.content)
    assert last.status == RunStatus.completed and last.session_state == {
        "cart": ["apples", "pears"]
    }
    assert agent.get_session_state("session_abc") == {"cart": ["apples", "pears"]}
    assert agent.get_session_state("session_xyz") == {"cart": []}

    # Everything can be read back from the store, here by a new Agent on the same file, as
    # another process would.
    reader = Agent(model=FunctionModel(attentive_model), db=SqliteDb(db_file))
    state = reader.get_session_state("session_abc")
    history = reader.get_chat_history("session_abc")
    latest = reader.get_last_run_output(session_id="session_abc")
    print("stored state:", state)
    for message in history:
        print(f"  {message.role}: {message.text()}")
    assert state == {"cart": ["apples", "pears"]}
    assert [m.text() for m in history if m.role == "user"] == [
        "My name is John",
        "What's my name?",
        "Add apples",
        "Add pears",
    ]
    assert latest is not None and latest.run_id == last.run_id
    assert latest.input is not None and latest.input.input_content == "Add pears"
    print(f"last run of session_abc: {latest.run_id} ({latest.status.value}) -> {latest.content}")
