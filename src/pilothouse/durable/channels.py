"""Live delivery, in this process, of what a durable run's workflow does.

A workflow may run on another event loop than the caller waiting for it (sync callers use a
loop thread of their own, DBOS runs recovered workflows on its own loop), so a listener is
fed thread-safely. Only callers in the process that executes the workflow are fed here; the
others learn of each stop through DBOS events (see `pilothouse.durable.stops`).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from pilothouse.run.output import RunOutput

__all__ = ["Listener", "Stop", "listen", "publish"]


@dataclass(frozen=True, slots=True)
class Stop:
    """The run stopped: it ended, or paused to wait for answers (``segment`` counts the
    stops; 0 is the first)."""

    segment: int
    output: RunOutput


class Listener:
    """What one caller receives of a run: its events, and a `Stop` at each stop."""

    __slots__ = ("_loop", "queue", "run_id")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, item: Any) -> None:
        """Hand over an event or a `Stop`, from any thread."""
        try:
            same_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self.queue.put_nowait(item)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def close(self) -> None:
        """Stop listening."""
        with _lock:
            listeners = _listeners.get(self.run_id)
            if listeners is not None:
                listeners.discard(self)
                if not listeners:
                    del _listeners[self.run_id]


_listeners: dict[str, set[Listener]] = {}
_lock = threading.Lock()


def listen(run_id: str) -> Listener:
    """Start receiving what the run's workflow does in this process; `Listener.close` ends."""
    listener = Listener(run_id)
    with _lock:
        _listeners.setdefault(run_id, set()).add(listener)
    return listener


def publish(run_id: str, item: Any) -> None:
    """Hand an event or a `Stop` of the run to everyone listening in this process."""
    listeners = _listeners.get(run_id)
    if not listeners:
        return
    with _lock:
        targets = list(listeners)
    for listener in targets:
        listener.put(item)
