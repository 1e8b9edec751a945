"""Read → change → compare-and-set of a session's state, retried until it wins.

Within one process, updates of the same session queue on an asyncio lock before they read:
without it, N concurrent updaters all read the same version, one wins and N-1 start over,
which costs O(N²) round trips. The compare-and-set still decides against writers in other
processes, other event loops and other store objects, which the queue cannot see.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pilothouse.db.errors import StaleStateError

if TYPE_CHECKING:
    from pilothouse.db.base import SessionStore

__all__ = ["DEFAULT_STATE_RETRIES", "update_session_state"]

logger = logging.getLogger("pilothouse")

DEFAULT_STATE_RETRIES = 100
# Full-jitter exponential backoff: contenders that lost together spread out instead of
# colliding again on the next round. The cap keeps a loser from sleeping past a run's pace.
_BASE_DELAY = 0.002
_MAX_DELAY = 0.2


# store → (id of event loop, session id) → lock; weak at both ends so that neither stores nor
# sessions are kept alive by having been updated once.
_Locks = weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock]
_queues: weakref.WeakKeyDictionary[SessionStore, _Locks] = weakref.WeakKeyDictionary()
_queues_guard = threading.Lock()


def _session_queue(store: SessionStore, session_id: str) -> asyncio.Lock:
    """The lock that this loop's updaters of ``session_id`` on ``store`` queue on.

    Locks live only while someone holds or waits for them (weak values), so sessions that
    were updated once do not accumulate.
    """
    key = (id(asyncio.get_running_loop()), session_id)
    with _queues_guard:
        locks = _queues.get(store)
        if locks is None:
            locks = _queues[store] = weakref.WeakValueDictionary()
        lock = locks.get(key)
        if lock is None:
            lock = locks[key] = asyncio.Lock()
        return lock


async def update_session_state(
    store: SessionStore,
    session_id: str,
    fn: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    retries: int = DEFAULT_STATE_RETRIES,
) -> tuple[dict[str, Any], int]:
    """Apply ``fn`` to the session's state with optimistic concurrency; return (state, version).

    ``fn`` gets a private copy of the current state and returns the new state (returning None
    means "I changed the dict in place"). It may run several times, once per attempt, so it
    must not have side effects beyond the state. Raises StaleStateError after ``retries``
    lost compare-and-set attempts.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    async with _session_queue(store, session_id):
        return await _compare_and_set_loop(store, session_id, fn, retries)


async def _compare_and_set_loop(
    store: SessionStore,
    session_id: str,
    fn: Callable[[dict[str, Any]], dict[str, Any] | None],
    retries: int,
) -> tuple[dict[str, Any], int]:
    for attempt in range(retries + 1):
        state, version = await store.get_session_state(session_id)
        result = fn(state)
        new_state = state if result is None else result
        if not isinstance(new_state, dict):
            raise TypeError(f"fn must return a dict (or None), got {type(new_state).__name__}")
        new_version = await store.set_session_state(session_id, new_state, expected_version=version)
        if new_version is not None:
            return new_state, new_version
        if attempt < retries:
            await asyncio.sleep(random.uniform(0, min(_MAX_DELAY, _BASE_DELAY * 2**attempt)))
    logger.warning("session %s: state update lost %d races, giving up", session_id, retries + 1)
    raise StaleStateError(
        f"session {session_id!r}: the state changed under every one of {retries + 1} attempts"
    )
