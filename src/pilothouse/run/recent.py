"""The last runs of each agent and session, kept in process for `get_last_run_output`."""

from __future__ import annotations

import contextlib

from pilothouse.run.output import RunOutput

__all__ = ["find", "last_run", "remember"]

# Bounded so that a long-lived process serving many sessions does not grow without end.
_MAX_SESSIONS = 4096

# Plain dicts: each operation below is atomic under the GIL, and a lost race between two
# threads only decides which of two simultaneous runs counts as "last".
_by_session: dict[tuple[str, str], RunOutput] = {}
_by_agent: dict[str, RunOutput] = {}


def remember(output: RunOutput) -> None:
    """Record a finished run as the latest of its agent and of its session."""
    agent_id = output.agent_id
    if agent_id is None:
        return
    _by_agent[agent_id] = output
    key = (agent_id, output.session_id or "")
    # Re-inserting moves the session to the end, so the oldest sessions are dropped first.
    _by_session.pop(key, None)
    _by_session[key] = output
    if len(_by_session) > _MAX_SESSIONS:
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del _by_session[next(iter(_by_session))]


def last_run(agent_id: str, session_id: str | None) -> RunOutput | None:
    """Return the latest run of the agent (in that session, when one is given)."""
    if session_id is None:
        return _by_agent.get(agent_id)
    return _by_session.get((agent_id, session_id))


def find(agent_id: str, run_id: str) -> RunOutput | None:
    """Return the agent's run ``run_id`` if it is the latest of its session (or None)."""
    last = _by_agent.get(agent_id)
    if last is not None and last.run_id == run_id:
        return last
    for output in list(_by_session.values()):
        if output.run_id == run_id and output.agent_id == agent_id:
            return output
    return None
