"""The JSON shapes of agents, sessions and memories, with the guide framework's field names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.agent import Agent
    from pilothouse.db.records import MemoryRecord, SessionRecord

__all__ = ["agent_view", "memory_view", "session_view"]


def agent_view(agent: Agent) -> dict[str, Any]:
    """An agent's public description: id, name, model, tools (with schemas), instructions."""
    from pilothouse.models.base import Model
    from pilothouse.tools import resolve_tools

    model = agent.model
    instructions = agent.instructions
    if not isinstance(instructions, str | list | tuple):
        instructions = None  # a callable: its output depends on the run
    return {
        "id": agent.id,
        "name": agent.name,
        "description": agent.description,
        "model": (
            {"name": type(model).__name__, "model": model.id, "provider": model.provider}
            if isinstance(model, Model)
            else None
        ),
        "tools": [
            {
                "name": fn.name,
                "description": fn.description,
                "parameters": fn.parameters,
                "requires_confirmation": fn.requires_confirmation,
                "requires_user_input": fn.requires_user_input,
                "external_execution": fn.external_execution,
            }
            for fn in resolve_tools(agent.tools)
        ],
        "instructions": list(instructions) if isinstance(instructions, tuple) else instructions,
        "markdown": agent.markdown,
        "input_schema": _schema(agent.input_schema),
        "output_schema": _schema(agent.output_schema),
        "add_history_to_context": agent.add_history_to_context,
        "num_history_runs": agent.num_history_runs,
        "enable_user_memories": agent.enable_user_memories,
    }


def _schema(model: type[Any] | None) -> dict[str, Any] | None:
    if model is None:
        return None
    schema: dict[str, Any] = model.model_json_schema()
    return schema


def session_view(record: SessionRecord) -> dict[str, Any]:
    """A stored session."""
    return {
        "session_id": record.session_id,
        "session_name": None,
        "user_id": record.user_id,
        "agent_id": record.agent_id,
        "session_state": record.session_state,
        "state_version": record.state_version,
        "run_count": record.run_count,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def memory_view(record: MemoryRecord) -> dict[str, Any]:
    """A stored user memory."""
    return {
        "memory_id": record.memory_id,
        "memory": record.memory,
        "topics": record.topics,
        "user_id": record.user_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }
