"""`MemoryManager`: a model keeps a user's memories up to date with three tools.

One update is a short tool loop: the model sees the user's stored memories and the new
conversation turn, calls ``add_memory`` / ``update_memory`` / ``delete_memory``, sees each
call's result, and stops when it answers without tool calls (or after a few model calls).
Mistakes the model makes — invalid arguments, a memory id that is not the user's — go back to
it as tool results so that it can correct itself; they never raise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pilothouse.db.base import SessionStore
from pilothouse.db.records import MemoryRecord
from pilothouse.exceptions import ToolArgumentsError
from pilothouse.models.base import Model, ModelRequest, ResponseAssembler
from pilothouse.models.message import Message, ToolCall
from pilothouse.run.metrics import Metrics
from pilothouse.tools.function import Function

__all__ = [
    "DEFAULT_MAX_MODEL_CALLS",
    "MEMORY_SYSTEM_PROMPT",
    "MemoryManager",
    "MemoryUpdate",
    "format_memories_for_context",
]

logger = logging.getLogger("pilothouse")
_perf = time.perf_counter

DEFAULT_MAX_MODEL_CALLS = 3
# A long answer (code, a document) costs tokens on every update yet rarely holds a fact about
# the user; the start of a message is where such facts are.
_MAX_MESSAGE_CHARS = 4000

MEMORY_SYSTEM_PROMPT = """\
You maintain the long-term memories an assistant keeps about one user. You are given the \
memories stored so far, each with its id, and the latest conversation between the user and \
the assistant. Update the memories with the tools, then answer in a few words.

Remember durable facts about the user that will help in later conversations: their name, \
personal details, preferences and dislikes, plans and goals, work and projects, and other \
important details they share. Do not remember small talk, one-off requests, facts about the \
world, or anything the assistant said that the user did not confirm.

- add_memory: one fact per memory, as a short third-person sentence ("The user's name is \
Ana."), with a few lowercase topics.
- update_memory: when a new detail refines, corrects or extends a stored memory, update that \
memory instead of adding a near-duplicate.
- delete_memory: when the user asks you to forget something, or a stored memory is now \
contradicted and no longer true.
- Never store the same fact twice.
- When there is nothing worth remembering, call no tool and answer "No changes.\""""


@dataclass(slots=True)
class MemoryUpdate:
    """What one `MemoryManager.update` changed, and what its model calls cost.

    Changes are net: a memory added and then updated in the same update is listed once, in
    ``added``, with its final text; one added and then deleted is in neither list.

    Attributes:
        added: Memories created, as stored.
        updated: Existing memories changed, as stored now.
        deleted: Existing memories deleted, as they were before the update.
        metrics: Token counts, cost and number of the model calls (``model_calls``), ready for
            ``run_metrics.add_call(update.metrics)``; ``duration`` is the whole update's.
    """

    added: list[MemoryRecord] = field(default_factory=list)
    updated: list[MemoryRecord] = field(default_factory=list)
    deleted: list[MemoryRecord] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def changed(self) -> bool:
        """Whether any memory was added, updated or deleted."""
        return bool(self.added or self.updated or self.deleted)


def format_memories_for_context(memories: Sequence[MemoryRecord]) -> str:
    """Return the block an agent adds to its system message: "" when there are no memories.

    Each memory is one ``- `` line inside ``<memories_from_previous_interactions>`` tags.
    """
    if not memories:
        return ""
    lines = [
        "You have the following memories about the user from previous interactions; use "
        "them where they help:",
        "<memories_from_previous_interactions>",
        *(f"- {_one_line(m.memory)}" for m in memories),
        "</memories_from_previous_interactions>",
    ]
    return "\n".join(lines)


class MemoryManager:
    """Keeps users' memories in a `SessionStore` up to date with a model.

    A manager is configuration only: `update` keeps nothing on it, so one manager can serve
    concurrent updates for any number of users.

    Args:
        model: The model that decides what to remember (a `Model` or a ``"provider:model_id"``
            string). Without one, each update uses the model it is given (the agent's).
        instructions: Extra instructions added to the default system prompt, such as "Only
            remember the user's dietary preferences."
        max_model_calls: The most model calls one update makes.
    """

    __slots__ = ("instructions", "max_model_calls", "model")

    def __init__(
        self,
        model: Model | str | None = None,
        *,
        instructions: str | None = None,
        max_model_calls: int = DEFAULT_MAX_MODEL_CALLS,
    ) -> None:
        if isinstance(model, str):
            from pilothouse.models.registry import model_from_string

            model = model_from_string(model)
        if model is not None and not isinstance(model, Model):
            raise TypeError(
                f"MemoryManager(): model must be a Model, a model string or None, "
                f"not {type(model).__name__}"
            )
        if instructions is not None and not isinstance(instructions, str):
            raise TypeError(
                f"MemoryManager(): instructions must be a str, not {type(instructions).__name__}"
            )
        if isinstance(max_model_calls, bool) or not isinstance(max_model_calls, int):
            raise TypeError("MemoryManager(): max_model_calls must be an int")
        if max_model_calls < 1:
            raise ValueError(
                f"MemoryManager(): max_model_calls must be >= 1, not {max_model_calls}"
            )
        self.model = model
        self.instructions = instructions
        self.max_model_calls = max_model_calls

    def system_prompt(self) -> str:
        """Return the system prompt of the memory model (the default plus ``instructions``)."""
        if not self.instructions:
            return MEMORY_SYSTEM_PROMPT
        return f"{MEMORY_SYSTEM_PROMPT}\n\nAdditional instructions:\n{self.instructions}"

    async def update(
        self,
        *,
        store: SessionStore,
        user_id: str,
        messages: Sequence[Message],
        model: Model,
    ) -> MemoryUpdate:
        """Let the model update ``user_id``'s memories from a conversation turn.

        The model (the manager's, else ``model``) sees the stored memories and the user and
        assistant messages of ``messages`` (system and tool messages are left out). Its tool
        calls are run against ``store``. Without any user or assistant text no model is
        called.

        Raises:
            ValueError: ``user_id`` is not a non-empty string.
            ModelProviderError: The model call failed (whatever the model raises, unchanged).
            StoreError: The store failed.
        """
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"user_id must be a non-empty string, got {user_id!r}")
        started = _perf()
        result = MemoryUpdate()
        conversation = _render_conversation(messages)
        if not conversation:
            return result
        chosen = self.model or model
        existing = await store.get_user_memories(user_id)
        tools = _MemoryTools(store, user_id, existing, result)
        functions = {
            f.name: f
            for f in (
                Function(tools.add_memory),
                Function(tools.update_memory),
                Function(tools.delete_memory),
            )
        }
        request = ModelRequest(tools=[f.definition for f in functions.values()], tool_choice="auto")
        prompt: list[Message] = [
            Message(role="system", content=self.system_prompt()),
            Message(role="user", content=_render_prompt(existing, conversation)),
        ]

        for call_number in range(1, self.max_model_calls + 1):
            assembler = ResponseAssembler()
            sent = _perf()
            first_token: float | None = None
            async for delta in chosen.stream(prompt, request):
                if first_token is None and (delta.content or delta.tool_calls or delta.reasoning):
                    first_token = _perf()
                assembler.add(delta)
            response = assembler.response()
            call_metrics = Metrics.from_usage(
                response.usage,
                time_to_first_token=None if first_token is None else first_token - sent,
                duration=_perf() - sent,
                cost=chosen.price(response.usage) if response.usage else None,
            )
            result.metrics.add_call(call_metrics)
            if not response.tool_calls:
                break
            prompt.append(
                Message(
                    role="assistant",
                    content=response.content or None,
                    tool_calls=response.tool_calls,
                    metrics=call_metrics,
                )
            )
            # One at a time, in the order asked: a delete followed by an add must not race.
            for call in response.tool_calls:
                content, failed = await _run_tool(call, functions)
                prompt.append(
                    Message(
                        role="tool",
                        content=content,
                        tool_call_id=call.id,
                        name=call.name,
                        tool_call_error=failed,
                    )
                )
            if call_number == self.max_model_calls:
                logger.debug(
                    "memory update for user %s stopped after %d model calls",
                    user_id,
                    call_number,
                )

        result.metrics.duration = _perf() - started
        logger.debug(
            "memories of user %s: %d added, %d updated, %d deleted",
            user_id,
            len(result.added),
            len(result.updated),
            len(result.deleted),
        )
        return result


class _ToolError(Exception):
    """A memory tool call the model got wrong; its message goes back to the model."""


class _MemoryTools:
    """The three memory tools for one update of one user's memories.

    Only memories of this user (stored ones and those added during the update) can be
    changed: a memory id belonging to another user is reported as unknown.
    """

    __slots__ = ("known", "original", "result", "store", "user_id")

    def __init__(
        self,
        store: SessionStore,
        user_id: str,
        existing: Sequence[MemoryRecord],
        result: MemoryUpdate,
    ) -> None:
        self.store = store
        self.user_id = user_id
        self.known = {m.memory_id: m for m in existing}
        self.original = dict(self.known)
        self.result = result

    async def add_memory(self, memory: str, topics: list[str] | None = None) -> str:
        """Remember a new fact about the user.

        Args:
            memory: The fact, as one short third-person sentence ("The user's name is Ana.").
            topics: A few lowercase keywords for the fact, such as ["name"] or ["food"].
        """
        text = _clean(memory)
        key = text.casefold()
        for record in self.known.values():
            if _one_line(record.memory).casefold() == key:
                raise _ToolError(
                    f"This is already remembered as memory {record.memory_id}; "
                    "use update_memory to change it."
                )
        record = await self.store.add_memory(self.user_id, text, topics=topics)
        self.known[record.memory_id] = record
        self.result.added.append(record)
        logger.debug("memory %s added for user %s", record.memory_id, self.user_id)
        return f"Added memory {record.memory_id}."

    async def update_memory(
        self, memory_id: str, memory: str, topics: list[str] | None = None
    ) -> str:
        """Replace a stored memory with a corrected or more complete version.

        Args:
            memory_id: The id of the memory to replace.
            memory: The new text of the memory, as one short third-person sentence.
            topics: New topics for the memory; leave out to keep the current ones.
        """
        text = _clean(memory)
        self._check_known(memory_id)
        record = await self.store.update_memory(memory_id, text, topics=topics)
        if record is None:
            # Deleted by someone else since this update read the memories.
            del self.known[memory_id]
            raise _ToolError(f"There is no memory with id {memory_id!r}.")
        self.known[memory_id] = record
        changes = self.result
        added = _index_of(changes.added, memory_id)
        if added is not None:
            changes.added[added] = record
        else:
            updated = _index_of(changes.updated, memory_id)
            if updated is not None:
                changes.updated[updated] = record
            else:
                changes.updated.append(record)
        logger.debug("memory %s updated for user %s", memory_id, self.user_id)
        return f"Updated memory {memory_id}."

    async def delete_memory(self, memory_id: str) -> str:
        """Forget a stored memory: the user asked to, or it is no longer true.

        Args:
            memory_id: The id of the memory to delete.
        """
        self._check_known(memory_id)
        existed = await self.store.delete_memory(memory_id)
        self.known.pop(memory_id)
        if not existed:
            raise _ToolError(f"There is no memory with id {memory_id!r}.")
        changes = self.result
        added = _index_of(changes.added, memory_id)
        if added is not None:
            # Added and deleted within this update: no net change to report.
            del changes.added[added]
        else:
            updated = _index_of(changes.updated, memory_id)
            if updated is not None:
                del changes.updated[updated]
            # As it was before this update, which may have changed it first.
            changes.deleted.append(self.original[memory_id])
        logger.debug("memory %s deleted for user %s", memory_id, self.user_id)
        return f"Deleted memory {memory_id}."

    def _check_known(self, memory_id: str) -> None:
        if memory_id not in self.known:
            ids = ", ".join(self.known) or "none"
            raise _ToolError(
                f"There is no memory with id {memory_id!r}. The user's memory ids are: {ids}."
            )


async def _run_tool(call: ToolCall, functions: dict[str, Function]) -> tuple[str, bool]:
    """Run one memory tool call; return (the text for the model, whether it failed)."""
    function = functions.get(call.name)
    if function is None:
        known = ", ".join(functions)
        return f"Unknown tool {call.name!r}. Available tools: {known}.", True
    try:
        result = await function.acall(call.arguments)
    except ToolArgumentsError as exc:
        return str(exc), True
    except _ToolError as exc:
        return f"Error from {call.name}: {exc}", True
    return function.format_result(result), False


def _index_of(records: list[MemoryRecord], memory_id: str) -> int | None:
    for index, record in enumerate(records):
        if record.memory_id == memory_id:
            return index
    return None


def _clean(memory: str) -> str:
    text = _one_line(memory)
    if not text:
        raise _ToolError("memory must not be empty.")
    return text


def _one_line(text: str) -> str:
    # One memory per line in prompts and context: newlines inside one would break the list.
    return " ".join(text.split())


def _render_conversation(messages: Sequence[Message]) -> str:
    lines = []
    for message in messages:
        if message.role not in ("user", "assistant"):
            continue
        text = message.text().strip()
        if not text:
            continue
        if len(text) > _MAX_MESSAGE_CHARS:
            text = text[:_MAX_MESSAGE_CHARS] + " […]"
        lines.append(f"{message.role}: {text}")
    return "\n".join(lines)


def _render_prompt(existing: Sequence[MemoryRecord], conversation: str) -> str:
    if existing:
        memories = "\n".join(
            f"- [{m.memory_id}] {_one_line(m.memory)}"
            + (f" (topics: {', '.join(m.topics)})" if m.topics else "")
            for m in existing
        )
    else:
        memories = "(none yet)"
    return (
        f"<existing_memories>\n{memories}\n</existing_memories>\n\n"
        f"<conversation>\n{conversation}\n</conversation>\n\n"
        'Update the user\'s memories from this conversation, or answer "No changes." when '
        "there is nothing worth remembering."
    )
