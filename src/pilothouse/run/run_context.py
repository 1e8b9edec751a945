"""`RunContext`: the state of one run that tools, instructions and dependencies may read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunContext"]


@dataclass(slots=True, eq=False)
class RunContext:
    """Per-run state, passed to tools that declare a ``run_context`` parameter.

    ``session_state`` is the run's own copy of the session state: tools may change it and the
    changes end up on the `RunOutput`. ``dependencies`` are resolved for this run (callables
    already called). ``knowledge_filters`` are the run's filters (the agent's, overlaid by the
    run's), for tools that search a knowledge base of their own.
    """

    run_id: str
    session_id: str
    user_id: str | None = None
    session_state: dict[str, Any] = field(default_factory=dict)
    dependencies: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None
    knowledge_filters: dict[str, Any] | None = None
