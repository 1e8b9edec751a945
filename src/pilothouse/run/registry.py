"""Runs in flight, by run id, so that `cancel_run` can reach them from any thread."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RunHandle", "cancel", "register", "unregister"]


class RunHandle:
    """The cancellation switch of one running run.

    ``cancel_requested`` is set at once, from any thread, and the run checks it at every step
    boundary, so it stops at the next step even when its model and tools never suspend.
    ``waiting_task`` is set only while the run awaits a model or tool call; a cancellation
    interrupts that await too. Once the run has begun to finish (its answer is in), a cancel
    is refused: `cancel` then returns False, because the run will not stop.
    """

    # Class-level defaults: a handle is made for every run and most are never cancelled.
    cancel_requested = False
    finishing = False
    timed_out = False
    reason: str | None = None
    waiting_task: asyncio.Task[Any] | None = None
    timer: asyncio.TimerHandle | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def request_cancel(self, reason: str | None) -> bool:
        """Mark the run cancelled unless it is already finishing; return True only when the
        run will stop.

        No lock: the canceller sets its flag and then reads ``finishing``, the run sets
        ``finishing`` and then reads ``cancel_requested`` (`begin_finishing`). Statements
        run one at a time, so at least one of the two sees the other's flag: a cancel that
        returns True is always seen by the run.
        """
        if self.finishing:
            return False
        if not self.cancel_requested:
            self.reason = reason
        self.cancel_requested = True
        return not self.finishing

    def begin_finishing(self) -> bool:
        """Close the door on cancellation; False when a cancel got in first."""
        self.finishing = True
        return not self.cancel_requested

    def interrupt(self) -> None:
        """On the run's loop: interrupt the model or tool call it is waiting for."""
        if self.waiting_task is not None:
            self.waiting_task.cancel()

    def expire(self, timeout: float) -> None:
        """On the run's loop: the run's whole-run timeout has passed."""
        if self.request_cancel(f"the run's timeout of {timeout:g} s was reached"):
            self.timed_out = True
            self.interrupt()


_runs: dict[str, RunHandle] = {}


def register(run_id: str, handle: RunHandle) -> None:
    """Make a run cancellable."""
    _runs[run_id] = handle  # a single dict operation is atomic: no lock needed


def unregister(run_id: str) -> None:
    """Forget a finished run."""
    _runs.pop(run_id, None)


def cancel(run_id: str, reason: str | None = None) -> bool:
    """Ask a running run to stop; return True when it will, False when no such run is in
    flight or it is already finishing."""
    handle = _runs.get(run_id)
    if handle is None or handle.loop.is_closed():
        return False
    if not handle.request_cancel(reason):
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is handle.loop:
        handle.interrupt()
    else:
        handle.loop.call_soon_threadsafe(handle.interrupt)
    return True
