"""User memories: durable facts about a user, kept by a model between sessions.

`MemoryManager.update` shows a model the user's stored memories and the latest conversation
turn and lets it add, update and delete memories through three tools; `MemoryUpdate` reports
what changed and what the model calls cost. `format_memories_for_context` renders memories for
an agent's system message::

    from pilothouse.db import InMemoryDb
    from pilothouse.memory import MemoryManager, format_memories_for_context

    db = InMemoryDb()
    update = await MemoryManager().update(
        store=db, user_id="ana", messages=run_output.messages, model=agent_model
    )
    context = format_memories_for_context(await db.get_user_memories("ana"))
"""

from __future__ import annotations

from pilothouse.memory.manager import (
    DEFAULT_MAX_MODEL_CALLS,
    MEMORY_SYSTEM_PROMPT,
    MemoryManager,
    MemoryUpdate,
    format_memories_for_context,
)

__all__ = [
    "DEFAULT_MAX_MODEL_CALLS",
    "MEMORY_SYSTEM_PROMPT",
    "MemoryManager",
    "MemoryUpdate",
    "format_memories_for_context",
]
