"""The last runs of each agent and session, kept in process for `get_last_run_output`.

Bounded by count and by size, so that a long-lived process that serves many sessions, or
builds a new Agent per request, does not grow without end: at most `MAX_SESSIONS` (agent,
session) pairs and `MAX_AGENTS` agents, holding runs of about `MAX_BYTES` of text in all; the
least recently finished go first. A run's size is estimated from its text (input, messages,
answer), which is what makes runs large.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from pilothouse.run.output import RunOutput

__all__ = ["MAX_AGENTS", "MAX_BYTES", "MAX_SESSIONS", "find", "last_run", "remember"]

MAX_SESSIONS = 4096
MAX_AGENTS = 1024
MAX_BYTES = 16 * 1024 * 1024
# What a run holds besides its text, measured roughly with tracemalloc: the RunOutput with its
# metrics and ids, and per message or tool call the object with its own metrics.
_BASE_SIZE = 2048
_ITEM_SIZE = 1024

# Order is recency: an entry moves to the end when its session runs again, and the first
# entries are the first to go. OrderedDict, not dict: taking the first entry of a dict that
# is deleted from at the front scans the deleted slots, several µs per run at the bound.
_by_session: OrderedDict[tuple[str, str], tuple[RunOutput, int]] = OrderedDict()
# The key of each agent's latest run in `_by_session`.
_by_agent: OrderedDict[str, tuple[str, str]] = OrderedDict()
_bytes = 0
_lock = threading.Lock()


def _size(output: RunOutput) -> int:
    """A cheap estimate of the memory a run holds, in bytes: its messages carry its input and
    its tool results, and the answer is its last message's text (counted once more for
    ``content``, which may be another object)."""
    messages = output.messages
    events = output.events
    items = len(messages) + len(output.tools) + (len(events) if events else 0)
    size = _BASE_SIZE + _ITEM_SIZE * items
    for message in messages:
        text = message.content
        if text.__class__ is str:
            size += len(text)
    content = output.content
    if content.__class__ is str:
        size += len(content)
    return size


def remember(output: RunOutput) -> None:
    """Record a finished run as the latest of its agent and of its session."""
    global _bytes
    agent_id = output.agent_id
    if agent_id is None:
        return
    size = _size(output)
    key = (agent_id, output.session_id or "")
    with _lock:
        old = _by_session.pop(key, None)
        if old is not None:
            _bytes -= old[1]
        _by_session[key] = (output, size)
        _bytes += size
        if _by_agent.get(agent_id) is None:
            _by_agent[agent_id] = key
            if len(_by_agent) > MAX_AGENTS:
                _by_agent.popitem(last=False)
        else:
            _by_agent[agent_id] = key
            _by_agent.move_to_end(agent_id)
        # The run just recorded stays, even alone over the byte budget.
        while len(_by_session) > MAX_SESSIONS or (_bytes > MAX_BYTES and len(_by_session) > 1):
            gone, (_, gone_size) = _by_session.popitem(last=False)
            _bytes -= gone_size
            if _by_agent.get(gone[0]) == gone:
                del _by_agent[gone[0]]


def last_run(agent_id: str, session_id: str | None) -> RunOutput | None:
    """Return the latest run of the agent (in that session, when one is given)."""
    key = _by_agent.get(agent_id) if session_id is None else (agent_id, session_id)
    if key is None:
        return None
    entry = _by_session.get(key)
    return None if entry is None else entry[0]


def find(agent_id: str, run_id: str) -> RunOutput | None:
    """Return the agent's run ``run_id`` if it is the latest of its session (or None)."""
    last = last_run(agent_id, None)
    if last is not None and last.run_id == run_id:
        return last
    with _lock:
        entries = list(_by_session.values())
    for output, _ in entries:
        if output.run_id == run_id and output.agent_id == agent_id:
            return output
    return None
