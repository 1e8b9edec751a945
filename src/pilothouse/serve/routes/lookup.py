"""Finding a run a request names, on behalf of its caller: 404 for a run the caller may not
see, exactly as for one that does not exist, so that ids do not leak."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pilothouse.serve.auth import Principal
from pilothouse.serve.errors import ApiError
from pilothouse.serve.state import ServeState

if TYPE_CHECKING:
    from pilothouse.agent import Agent

__all__ = ["FoundRun", "check_session_access", "find_run"]

_ENDED = frozenset({"COMPLETED", "ERROR", "CANCELLED", "PAUSED"})
_STATUS_OF_EVENT = {
    "RunCompleted": "COMPLETED",
    "RunError": "ERROR",
    "RunCancelled": "CANCELLED",
    "RunPaused": "PAUSED",
}


@dataclass(slots=True)
class FoundRun:
    """What is known of a run: its owner, session and status (PENDING before it is stored)."""

    run_id: str
    user_id: str | None
    session_id: str | None
    status: str
    stored: dict[str, object] | None = None

    @property
    def ended(self) -> bool:
        """Whether the run is no longer running (completed, error, cancelled or paused)."""
        return self.status in _ENDED


def _not_found(run_id: str) -> ApiError:
    return ApiError(404, f"run {run_id!r} not found", field="run_id")


async def find_run(
    state: ServeState, agent: Agent, run_id: str, principal: Principal, *, with_stored: bool = False
) -> FoundRun:
    """The run ``run_id`` of ``agent`` if ``principal`` may see it; ApiError(404) if not.

    ``with_stored``: read the stored run even when it runs on this worker (to answer with it).
    """
    live = state.runs.runs.get(run_id)
    if live is not None and not live.done and not with_stored:
        if live.agent_id != agent.id or not principal.owns(live.user_id):
            raise _not_found(run_id)
        stored_status = live.output.status.value
        return FoundRun(run_id, live.user_id, live.session_id, stored_status)
    stored = await state.db.get_run(run_id)
    if stored is not None:
        user_id = stored.get("user_id")
        if stored.get("agent_id") != agent.id or not principal.owns(
            user_id if isinstance(user_id, str) else None
        ):
            raise _not_found(run_id)
        session_id = stored.get("session_id")
        return FoundRun(
            run_id,
            user_id if isinstance(user_id, str) else None,
            session_id if isinstance(session_id, str) else None,
            str(stored.get("status")),
            stored,
        )
    record = await state.log.get_run(run_id)
    if record is None or record.agent_id != agent.id or not principal.owns(record.user_id):
        raise _not_found(run_id)
    # Not in the store: starting on another worker, or ended before it could be stored
    # (e.g. cancelled while it began); its last logged event tells which.
    last = await state.log.last_event(run_id)
    status = _STATUS_OF_EVENT.get(last.name, "PENDING") if last is not None else "PENDING"
    return FoundRun(run_id, record.user_id, record.session_id, status)


async def check_session_access(state: ServeState, session_id: str, principal: Principal) -> None:
    """Refuse (404) a session that exists and belongs to another user."""
    if principal.is_admin:
        return
    record = await state.db.get_session(session_id)
    if record is not None and record.user_id != principal.user_id:
        raise ApiError(404, f"session {session_id!r} not found", field="session_id")
