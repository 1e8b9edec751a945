"""One SQLAlchemy engine per event loop.

Pooled async connections, and the pool's own waiting, belong to the event loop that created
them. Pilothouse drives runs from several loops (one per thread for synchronous ``run()``
calls, plus the caller's own loop), so a store keeps an engine for each loop that uses it,
dropped automatically with the loop.
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

    def get(self) -> LoopState:
        """The state of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                engine = self._spare or self._factory()
                self._spare = None
                state = LoopState(
                    engine,
                    engine.execution_options(**self._read_options),
                    engine.execution_options(**self._write_options),
                )
                self._states[loop] = state
            return state

    async def dispose(self) -> None:
        """Close the pools: the running loop's now, other running loops' soon (scheduled on
        them), and those of idle loops by dropping them for the garbage collector."""
        current = asyncio.get_running_loop()
        with self._lock:
            states = list(self._states.items())
            self._states.clear()
        for loop, state in states:
            if loop is current:
                await state.engine.dispose()
            elif loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(state.engine.dispose(), loop)
            else:
                # Connections of a loop that is not running cannot be closed from here; let
                # the pool go so they close when collected.
                state.engine.sync_engine.dispose(close=False)
                logger.debug("dropped the pool of an idle event loop without closing it")
