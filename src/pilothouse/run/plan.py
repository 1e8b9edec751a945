"""`RunPlan`: everything one run needs, fixed by the Agent before the run starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pilothouse.agent.agent import Agent
    from pilothouse.db.base import SessionStore
    from pilothouse.models.base import Model
    from pilothouse.run.output import RunOutput, ToolExecution
    from pilothouse.run.run_context import RunContext

__all__ = ["Resume", "RunPlan"]


class RunPlan:
    """Everything one run needs, fixed before it starts. Lives only as long as the run.

    Settings a run cannot override are read from ``agent``; the rest is resolved here from
    the agent's defaults and the run's own arguments. ``resume`` is set when the run is a
    stored run being continued (paused, failed or interrupted).
    """

    context: RunContext
    output: RunOutput
    # Class-level defaults, rather than slots: the Agent sets only what a run changes
    # (a plan is built for every run, on the hot path).
    stream_events = False
    dependencies: dict[str, Any] | None = None
    add_dependencies_to_context = False
    add_session_state_to_context = False
    add_history_to_context = False
    debug_mode = False
    user_id: str | None = None
    session_id: str | None = None
    session_state: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    knowledge_filters: dict[str, Any] | None = None
    # The run's media by kind; replaced, never changed in place.
    media: Mapping[str, list[Any]] = MappingProxyType({})
    output_schema: type[BaseModel] | None = None
    resume: Resume | None = None
    # The run may already be stored by an earlier execution of it (see `SessionIO.begin`).
    rerun = False

    def __init__(
        self, agent: Agent, model: Model, input: Any, stream: bool, inline_sync_tools: bool
    ) -> None:
        self.agent = agent
        self.model = model
        self.input = input
        self.stream = stream
        # Sync tools may run on the loop's own thread when the loop serves this run alone.
        self.inline_sync_tools = inline_sync_tools
        self.retries: int = agent.retries
        self.request_limit: int | None = agent.request_limit
        self.timeout: float | None = agent.timeout
        # The session store of this run: the agent's, or the process-local one when the
        # agent has none but asks for history or memories.
        self.store: SessionStore | None = agent.db


@dataclass(slots=True)
class Resume:
    """What continuing a stored run starts from: the run (or its id) and the caller's answers.

    ``answers`` are matched to the waiting tool calls of a paused run by ``tool_call_id``;
    None means the answers were set on the paused `RunOutput`'s own tool executions. A failed,
    cancelled or interrupted run takes no answers: it resumes from its last checkpoint.
    """

    run_response: RunOutput | None
    answers: Sequence[ToolExecution] | None
    session_id: str | None
