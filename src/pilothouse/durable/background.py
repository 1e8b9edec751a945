"""The event loop on which the synchronous `DBOSAgent` methods run their workflows.

A paused run's workflow keeps waiting for its answers after `DBOSAgent.run` has returned, so it
needs a loop that keeps running: one daemon thread per process, started on first use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate", "run"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _background() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(
                target=_loop.run_forever, name="pilothouse-durable", daemon=True
            )
            _thread.start()
        return _loop


def _check_thread() -> None:
    if threading.current_thread() is _thread:
        raise RuntimeError(
            "a synchronous DBOSAgent method was called from a durable run's own loop (from a "
            "tool, say): use the async methods (arun, acontinue_run, ...) there."
        )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the background loop and wait for its result."""
    _check_thread()
    return asyncio.run_coroutine_threadsafe(coro, _background()).result()


def iterate(stream: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator on the background loop, one item at a time."""
    _check_thread()
    loop = _background()

    async def step() -> T:
        return await stream.__anext__()

    try:
        while True:
            try:
                item = asyncio.run_coroutine_threadsafe(step(), loop).result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), loop).result()
