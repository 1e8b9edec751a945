"""The last runs of each agent and session, kept in process for `get_last_run_output`."""

from __future__ import annotations

import threading
from collections import OrderedDict

from pilothouse.run.output import RunOutput

__all__ = ["last_run", "remember"]

# Bounded so that a long-lived process serving many sessions does not grow without end.
_MAX_SESSIONS = 4096

_by_session: OrderedDict[tuple[str, str], RunOutput] = OrderedDict()
_by_agent: dict[str, RunOutput] = {}
_lock = threading.Lock()


def remember(output: RunOutput) -> None:
    """Record a finished run as the latest of its agent and of its session."""
    if output.agent_id is None:
        return
    key = (output.agent_id, output.session_id or "")
    with _lock:
        _by_agent[output.agent_id] = output
        _by_session[key] = output
        _by_session.move_to_end(key)
        if len(_by_session) > _MAX_SESSIONS:
            _by_session.popitem(last=False)


def last_run(agent_id: str, session_id: str | None) -> RunOutput | None:
    """Return the latest run of the agent (in that session, when one is given)."""
    with _lock:
        if session_id is None:
            return _by_agent.get(agent_id)
        return _by_session.get((agent_id, session_id))
