"""Runs in flight, by run id, so that `cancel_run` can reach them from any thread."""

from __future__ import annotations

import asyncio

__all__ = ["RunHandle", "cancel", "register", "unregister"]


class RunHandle:
    """The cancellation switch of one running run.

    ``waiting_task`` is set only while the run awaits a model or tool call; a cancellation
    interrupts that await. Between awaits the loop checks ``cancel_requested`` itself, so a
    cancellation never lands in the caller's own code while it consumes a stream.
    """

    __slots__ = ("cancel_requested", "loop", "reason", "waiting_task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.cancel_requested = False
        self.reason: str | None = None
        self.waiting_task: asyncio.Task[object] | None = None

    def _cancel_on_loop(self, reason: str | None) -> None:
        self.cancel_requested = True
        self.reason = reason
        if self.waiting_task is not None:
            self.waiting_task.cancel()


_runs: dict[str, RunHandle] = {}


def register(run_id: str, handle: RunHandle) -> None:
    """Make a run cancellable."""
    _runs[run_id] = handle  # a single dict operation is atomic: no lock needed


def unregister(run_id: str) -> None:
    """Forget a finished run."""
    _runs.pop(run_id, None)


def cancel(run_id: str, reason: str | None = None) -> bool:
    """Ask a running run to stop; return False when no such run is in flight."""
    handle = _runs.get(run_id)
    if handle is None or handle.loop.is_closed():
        return False
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is handle.loop:
        handle._cancel_on_loop(reason)
    else:
        handle.loop.call_soon_threadsafe(handle._cancel_on_loop, reason)
    return True
