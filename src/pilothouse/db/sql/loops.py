"""One SQLAlchemy engine per event loop.

Pooled async connections, and the pool's own waiting, belong to the event loop that created
them. Pilothouse drives runs from several loops (one per thread for synchronous ``run()``
calls, plus the caller's own loop), so a store keeps an engine for each loop that uses it,
disposed of when the loop shuts down (`release_with_loop`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pilothouse.utils.loop_resources import release_with_loop

__all__ = ["LoopEngines", "LoopState"]

logger = logging.getLogger("pilothouse")


@dataclass(slots=True)
class LoopState:
    """What a store holds for one event loop."""

    engine: AsyncEngine
    read: AsyncEngine
    write: AsyncEngine
    # Serialises this loop's writers where the database only allows one at a time (SQLite):
    # waiting here is fair and exact, unlike the database's polling busy handler.
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    init_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LoopEngines:
    """Hands out the `LoopState` of the running loop, creating it on first use."""

    def __init__(
        self,
        factory: Callable[[], AsyncEngine],
        *,
        read_options: dict[str, Any],
        write_options: dict[str, Any],
    ) -> None:
        self._factory = factory
        self._read_options = read_options
        self._write_options = write_options
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )
        # Built now, in the constructor's (synchronous) context, so that importing the
        # driver and the dialect never happens on a running event loop.
        self._spare: AsyncEngine | None = factory()

    async def get(self) -> LoopState:
        """The state of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is not None:
                return state
            engine, self._spare = self._spare, None
        if engine is None:
            # Building an engine touches the file system (SQLite resolves its path) and may
            # import modules: not on the loop.
            engine = await asyncio.to_thread(self._factory)
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                state = LoopState(
                    engine,
                    engine.execution_options(**self._read_options),
                    engine.execution_options(**self._write_options),
                )
                self._states[loop] = state
                created = True
            else:
                created = False
                if self._spare is None:
                    # Another task of this loop got there first; nothing was opened with ours.
                    self._spare = engine
        if created:
            # The pool's connections belong to this loop: close them before it closes.
            release_with_loop(self._release)
        return state

    async def _release(self) -> None:
        """Close the running loop's pooled connections and forget its state (the loop is
        shutting down)."""
        with self._lock:
            state = self._states.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.engine.dispose()

    async def dispose(self) -> None:
        """Close the running loop's pooled connections, and let go of those of loops that no
        longer run (they cannot be closed from here; they close when collected).

        Pools of other loops that are running are theirs to close: disposing a pool under a
        loop that is using it would strand its checked-out connections. The engines stay
        usable and open new connections when used again.
        """
        current = asyncio.get_running_loop()
        with self._lock:
            states = list(self._states.items())
        for loop, state in states:
            if loop is current:
                await state.engine.dispose()
            elif not loop.is_running():
                state.engine.sync_engine.dispose(close=False)
                logger.debug("let go of the pool of an event loop that no longer runs")
