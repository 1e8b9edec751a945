"""MemoryManager: the model's tool calls change the store; its mistakes go back to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pilothouse.db import InMemoryDb, MemoryRecord
from pilothouse.memory import (
    MEMORY_SYSTEM_PROMPT,
    MemoryManager,
    MemoryUpdate,
    format_memories_for_context,
)
from pilothouse.models import Message, ModelResponse, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel
from pilothouse.run.metrics import Usage

USER = "ana"


class Script:
    """A FunctionModel turn function that plays the given turns in order and records calls."""

    def __init__(self, *turns: Any) -> None:
        self.turns = list(turns)
        self.calls: list[tuple[list[Message], list[ToolDefinition]]] = []

    def __call__(self, messages: list[Message], tools: list[ToolDefinition]) -> Any:
        self.calls.append((list(messages), list(tools)))
        if not self.turns:
            raise AssertionError("the model was called more often than scripted")
        return self.turns.pop(0)

    def tool_results(self, call: int) -> list[Message]:
        """The tool results new in the model's ``call``-th call (0-based): those answering
        the tool calls of its previous answer."""
        messages = self.calls[call][0]
        last = max(i for i, m in enumerate(messages) if m.role == "assistant")
        return [m for m in messages[last + 1 :] if m.role == "tool"]


def never_called(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    raise AssertionError("this model must not be called")


def turn(text: str = "My name is Ana and I love sailing.") -> list[Message]:
    return [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content=text),
        Message(role="assistant", content="Nice to meet you, Ana!"),
    ]


async def run_update(
    decide: Callable[[list[Message], list[ToolDefinition]], Any],
    db: InMemoryDb,
    *,
    messages: list[Message] | None = None,
) -> MemoryUpdate:
    return await MemoryManager().update(
        store=db, user_id=USER, messages=messages or turn(), model=FunctionModel(decide)
    )


async def test_add_memory_is_stored_and_reported() -> None:
    db = InMemoryDb()
    script = Script(
        ToolCall(
            name="add_memory",
            arguments={"memory": "The user's name is Ana.", "topics": ["name"]},
        ),
        "Done.",
    )
    update = await run_update(script, db)

    stored = await db.get_user_memories(USER)
    assert [(m.memory, m.topics) for m in stored] == [("The user's name is Ana.", ["name"])]
    assert update.added == stored
    assert update.updated == [] and update.deleted == []
    assert update.changed
    assert len(script.calls) == 2
    [result] = script.tool_results(1)
    assert result.content == f"Added memory {stored[0].memory_id}."
    assert not result.tool_call_error


async def test_tools_offered_are_the_three_memory_tools() -> None:
    script = Script("No changes.")
    await run_update(script, InMemoryDb())
    tools = {t.name: t for t in script.calls[0][1]}
    assert set(tools) == {"add_memory", "update_memory", "delete_memory"}
    assert tools["add_memory"].parameters["required"] == ["memory"]
    assert tools["update_memory"].parameters["required"] == ["memory_id", "memory"]
    assert tools["delete_memory"].parameters["required"] == ["memory_id"]


async def test_update_memory_changes_the_stored_text() -> None:
    db = InMemoryDb()
    old = await db.add_memory(USER, "The user likes sailing.", topics=["hobbies"])
    script = Script(
        ToolCall(
            name="update_memory",
            arguments={"memory_id": old.memory_id, "memory": "The user sails every weekend."},
        ),
        "Updated.",
    )
    update = await run_update(script, db)

    [stored] = await db.get_user_memories(USER)
    assert stored.memory_id == old.memory_id
    assert stored.memory == "The user sails every weekend."
    assert stored.topics == ["hobbies"]  # topics left out: kept
    assert update.updated == [stored]
    assert update.added == [] and update.deleted == []


async def test_delete_memory_removes_it() -> None:
    db = InMemoryDb()
    old = await db.add_memory(USER, "The user lives in Lisbon.")
    keep = await db.add_memory(USER, "The user's name is Ana.")
    script = Script(ToolCall(name="delete_memory", arguments={"memory_id": old.memory_id}), "Ok.")
    update = await run_update(script, db, messages=turn("Please forget where I live."))

    assert await db.get_user_memories(USER) == [keep]
    assert update.deleted == [old]
    assert update.added == [] and update.updated == []


async def test_unknown_memory_id_is_reported_to_the_model() -> None:
    db = InMemoryDb()
    mine = await db.add_memory(USER, "The user's name is Ana.")
    script = Script(
        ToolCall(name="delete_memory", arguments={"memory_id": "no-such-id"}),
        ToolCall(name="update_memory", arguments={"memory_id": "no-such-id", "memory": "x"}),
        "Sorry.",
    )
    update = await run_update(script, db)

    assert await db.get_user_memories(USER) == [mine]
    assert not update.changed
    for call in (1, 2):
        [result] = script.tool_results(call)
        assert result.tool_call_error
        assert "no-such-id" in result.content
        # The error lists the ids the model may use, so that it can correct itself.
        assert mine.memory_id in result.content


async def test_another_users_memory_cannot_be_touched() -> None:
    db = InMemoryDb()
    theirs = await db.add_memory("bob", "Bob likes chess.")
    script = Script(
        ToolCall(name="delete_memory", arguments={"memory_id": theirs.memory_id}),
        ToolCall(
            name="update_memory", arguments={"memory_id": theirs.memory_id, "memory": "hacked"}
        ),
        "Done.",
    )
    update = await run_update(script, db)

    assert await db.get_user_memories("bob") == [theirs]
    assert not update.changed
    assert all(script.tool_results(i)[0].tool_call_error for i in (1, 2))


async def test_invalid_arguments_are_reported_to_the_model() -> None:
    db = InMemoryDb()
    script = Script(
        [
            ToolCall(name="add_memory", arguments={"text": "The user's name is Ana."}),
            ToolCall(name="add_memory", arguments="{not json"),
            ToolCall(name="add_memory", arguments={"memory": "   "}),
            ToolCall(name="remember", arguments={"memory": "x"}),
        ],
        ToolCall(name="add_memory", arguments={"memory": "The user's name is Ana."}),
        "Done.",
    )
    update = await run_update(script, db)

    results = script.tool_results(1)
    assert len(results) == 4
    assert all(r.tool_call_error for r in results)
    missing, not_json, blank, unknown = (r.content for r in results)
    assert "memory" in missing and "text" in missing
    assert "JSON" in not_json
    assert "empty" in blank
    assert "remember" in unknown and "add_memory" in unknown
    # The model corrected itself on the next call.
    assert [m.memory for m in update.added] == ["The user's name is Ana."]
    assert [m.memory for m in await db.get_user_memories(USER)] == ["The user's name is Ana."]


async def test_nothing_to_remember_changes_nothing() -> None:
    db = InMemoryDb()
    existing = await db.add_memory(USER, "The user's name is Ana.")
    script = Script("No changes.")
    update = await run_update(script, db, messages=turn("What is 2 + 2?"))

    assert not update.changed
    assert update.added == update.updated == update.deleted == []
    assert await db.get_user_memories(USER) == [existing]
    assert len(script.calls) == 1
    assert update.metrics.model_calls == 1


async def test_no_conversation_text_calls_no_model() -> None:
    update = await MemoryManager().update(
        store=InMemoryDb(),
        user_id=USER,
        messages=[Message(role="system", content="sys"), Message(role="user", content="  ")],
        model=FunctionModel(never_called),
    )
    assert not update.changed
    assert update.metrics.model_calls == 0


async def test_prompt_holds_existing_memories_and_the_conversation() -> None:
    db = InMemoryDb()
    memory = await db.add_memory(USER, "The user likes sailing.", topics=["hobbies"])
    script = Script("No changes.")
    messages = [
        Message(role="system", content="AGENT SYSTEM PROMPT"),
        Message(role="user", content="I moved to Porto last month."),
        Message(role="assistant", tool_calls=[ToolCall(name="weather", arguments={})]),
        Message(role="tool", content="TOOL OUTPUT", tool_call_id="c1", name="weather"),
        Message(role="assistant", content="Porto is lovely."),
    ]
    await run_update(script, db, messages=messages)

    system, user = script.calls[0][0]
    assert system.role == "system" and system.content == MEMORY_SYSTEM_PROMPT
    assert user.role == "user"
    assert memory.memory_id in user.content
    assert "The user likes sailing." in user.content
    assert "hobbies" in user.content
    assert "user: I moved to Porto last month." in user.content
    assert "assistant: Porto is lovely." in user.content
    # The agent's own system prompt and tool output are not about the user.
    assert "AGENT SYSTEM PROMPT" not in user.content
    assert "TOOL OUTPUT" not in user.content


async def test_system_prompt_asks_for_durable_facts_without_duplicates() -> None:
    prompt = MEMORY_SYSTEM_PROMPT.lower()
    for phrase in ("name", "preferences", "plans", "update_memory", "delete_memory", "forget"):
        assert phrase in prompt
    assert "same fact twice" in prompt
    assert "nothing worth remembering" in prompt


async def test_instructions_are_added_to_the_system_prompt() -> None:
    script = Script("No changes.")
    manager = MemoryManager(instructions="Only remember food preferences.")
    await manager.update(
        store=InMemoryDb(), user_id=USER, messages=turn(), model=FunctionModel(script)
    )
    system = script.calls[0][0][0].content
    assert system.startswith(MEMORY_SYSTEM_PROMPT)
    assert system.endswith("Only remember food preferences.")


async def test_usage_of_all_model_calls_is_summed() -> None:
    script = Script(
        ModelResponse(
            tool_calls=[ToolCall(name="add_memory", arguments={"memory": "The user is Ana."})],
            usage=Usage(input_tokens=100, output_tokens=20),
        ),
        ModelResponse(content="Done.", usage=Usage(input_tokens=130, output_tokens=3)),
    )
    update = await run_update(script, InMemoryDb())

    metrics = update.metrics
    assert metrics.model_calls == 2
    assert metrics.input_tokens == 230
    assert metrics.output_tokens == 23
    assert metrics.total_tokens == 253
    assert metrics.duration is not None and metrics.duration >= 0
    assert metrics.time_to_first_token is not None


async def test_the_managers_own_model_is_used_when_given() -> None:
    db = InMemoryDb()
    script = Script(ToolCall(name="add_memory", arguments={"memory": "The user is Ana."}), "Ok.")
    memory_model = FunctionModel(script, model_id="memory-model")
    update = await MemoryManager(memory_model).update(
        store=db, user_id=USER, messages=turn(), model=FunctionModel(never_called)
    )
    assert len(script.calls) == 2
    assert [m.memory for m in update.added] == ["The user is Ana."]


async def test_the_agents_model_is_used_without_one() -> None:
    script = Script("No changes.")
    await MemoryManager().update(
        store=InMemoryDb(), user_id=USER, messages=turn(), model=FunctionModel(script)
    )
    assert len(script.calls) == 1


async def test_model_calls_are_capped() -> None:
    db = InMemoryDb()
    counter = iter(range(100))

    def always_add(messages: list[Message], tools: list[ToolDefinition]) -> ToolCall:
        return ToolCall(name="add_memory", arguments={"memory": f"Fact {next(counter)}."})

    update = await MemoryManager(max_model_calls=2).update(
        store=db, user_id=USER, messages=turn(), model=FunctionModel(always_add)
    )
    # The calls of the last answer are still run; no further model call reads their results.
    assert update.metrics.model_calls == 2
    assert [m.memory for m in await db.get_user_memories(USER)] == ["Fact 0.", "Fact 1."]


async def test_exact_duplicate_is_refused() -> None:
    db = InMemoryDb()
    existing = await db.add_memory(USER, "The user's name is Ana.")
    script = Script(
        ToolCall(name="add_memory", arguments={"memory": "the user's  name is ana."}), "Ok."
    )
    update = await run_update(script, db)

    assert await db.get_user_memories(USER) == [existing]
    assert not update.changed
    [result] = script.tool_results(1)
    assert result.tool_call_error and existing.memory_id in result.content


async def test_changes_within_one_update_are_reported_net() -> None:
    db = InMemoryDb()
    old = await db.add_memory(USER, "The user lives in Lisbon.")

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        tool_messages = [m for m in messages if m.role == "tool"]
        if not tool_messages:
            return [
                ToolCall(name="add_memory", arguments={"memory": "The user likes tea."}),
                ToolCall(name="add_memory", arguments={"memory": "Temporary."}),
                ToolCall(
                    name="update_memory",
                    arguments={"memory_id": old.memory_id, "memory": "The user lives in Porto."},
                ),
            ]
        if len(tool_messages) == 3:
            tea_id = tool_messages[0].content.removeprefix("Added memory ").rstrip(".")
            tmp_id = tool_messages[1].content.removeprefix("Added memory ").rstrip(".")
            return [
                ToolCall(
                    name="update_memory",
                    arguments={"memory_id": tea_id, "memory": "The user likes green tea."},
                ),
                ToolCall(name="delete_memory", arguments={"memory_id": tmp_id}),
                ToolCall(name="delete_memory", arguments={"memory_id": old.memory_id}),
            ]
        return "Done."

    update = await run_update(decide, db)

    stored = await db.get_user_memories(USER)
    assert [m.memory for m in stored] == ["The user likes green tea."]
    assert update.added == stored  # added, then updated: listed once, final text
    assert update.updated == []  # updated, then deleted: only the deletion counts
    assert [(m.memory_id, m.memory) for m in update.deleted] == [
        (old.memory_id, "The user lives in Lisbon.")
    ]


async def test_bad_user_id_raises() -> None:
    with pytest.raises(ValueError, match="user_id"):
        await MemoryManager().update(
            store=InMemoryDb(), user_id="", messages=turn(), model=FunctionModel(never_called)
        )


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="model"):
        MemoryManager(model=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_model_calls"):
        MemoryManager(max_model_calls=0)
    assert MemoryManager("test").model is not None


def test_format_memories_for_context() -> None:
    assert format_memories_for_context([]) == ""
    memories = [
        MemoryRecord("m1", USER, "The user's name is Ana."),
        MemoryRecord("m2", USER, "The user likes\nsailing."),
    ]
    text = format_memories_for_context(memories)
    lines = text.splitlines()
    start = lines.index("<memories_from_previous_interactions>")
    assert lines[start + 1 : start + 4] == [
        "- The user's name is Ana.",
        "- The user likes sailing.",
        "</memories_from_previous_interactions>",
    ]
    assert "m1" not in text  # ids are for the memory model, not the agent
