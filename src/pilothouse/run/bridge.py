"""Driving the async run loop from synchronous code.

`run()` must work both in plain scripts and in code that already runs an event loop (a
notebook). In a plain thread we keep one event loop per thread and reuse it: creating a loop
per call would cost more than a whole run, and SDK clients bound to a loop stay usable. When
the calling thread already runs a loop, the work goes to one shared background loop thread
instead, since a running loop cannot be re-entered.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_sync", "owns_loop", "run_sync"]

T = TypeVar("T")

_local = threading.local()
_background: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
_background_lock = threading.Lock()


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def _background_loop() -> asyncio.AbstractEventLoop:
    global _background
    with _background_lock:
        if _background is None or _background[0].is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="pilothouse-loop", daemon=True)
            thread.start()
            _background = (loop, thread)
            atexit.register(loop.call_soon_threadsafe, loop.stop)
        return _background[0]


def owns_loop() -> bool:
    """True when a sync call from this thread runs on a loop of its own (no loop is running)."""
    return asyncio._get_running_loop() is None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code and return its result."""
    if asyncio._get_running_loop() is None:
        return _thread_loop().run_until_complete(coro)
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


def _step(loop: asyncio.AbstractEventLoop | None, awaitable: Awaitable[T]) -> T:
    if loop is not None:
        return loop.run_until_complete(awaitable)

    async def wrap() -> T:
        return await awaitable

    return asyncio.run_coroutine_threadsafe(wrap(), _background_loop()).result()


def iterate_sync(stream: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code, one item at a time.

    Closing the returned iterator early (``break`` in a for loop) closes the async one too, so
    the run records that it was stopped.
    """
    loop = _thread_loop() if asyncio._get_running_loop() is None else None
    try:
        while True:
            try:
                item = _step(loop, stream.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            _step(loop, aclose())
