"""Read → change → compare-and-set of a session's state, retried until it wins."""

from __future__ import annotations

import asyncio
import logging
import random
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
