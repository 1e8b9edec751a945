"""The records a session store hands back: small dataclasses, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MemoryRecord", "RunStart", "SessionRecord"]


@dataclass(slots=True)
class SessionRecord:
    """One session as stored.

    ``session_state`` is the state as of ``state_version`` (0 until the state is first set);
    ``run_count`` counts the runs inserted into the session. Times are Unix seconds.
    """

    session_id: str
    user_id: str | None = None
    agent_id: str | None = None
    session_state: dict[str, Any] = field(default_factory=dict)
    state_version: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    run_count: int = 0


@dataclass(slots=True)
class MemoryRecord:
    """One memory about a user. Times are Unix seconds."""

    memory_id: str
    user_id: str
    memory: str
    topics: list[str] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class RunStart:
    """What `SessionStore.start_run` read when it began a run: the session's state and the
    version to compare-and-set against when the run ends.

    ``took_over`` is True when the lease was taken from another owner whose lease had
    expired without being released: a process that died while running a run of the session.
    """

    session_state: dict[str, Any] = field(default_factory=dict)
    state_version: int = 0
    took_over: bool = False
