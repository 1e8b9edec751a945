"""Driving the async run loop from synchronous code.

`run()` must work both in plain scripts and in code that already runs an event loop (a
notebook). In a plain thread we keep one event loop per thread and reuse it: creating a loop
per call would cost more than a whole run, and SDK clients bound to a loop stay usable. When
the calling thread already runs a loop, the work goes to one shared background loop thread
instead, since a running loop cannot be re-entered.

A thread's loop is closed once the thread has ended (a server may start a thread per
request): the loop lives in the thread's local storage, which Python clears when the thread
ends, and the object holding it hands the loop over then. The next synchronous call, from any
thread, closes it as `asyncio.run` would: pending tasks cancelled, async generators closed
(which releases the SDK clients and database connections opened on it, see
`pilothouse.utils.loop_resources`), its default executor's threads told to end.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_sync", "owns_loop", "run_sync"]

T = TypeVar("T")
logger = logging.getLogger("pilothouse")

_local = threading.local()
_background: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
_background_lock = threading.Lock()
# Loops of threads that have ended, waiting to be closed by the next synchronous call. Appends
# and pops are atomic; the list is empty but for a moment after a thread ends.
_ended: list[asyncio.AbstractEventLoop] = []
# Seconds a closing loop's tasks and resource releases get before the loop is closed anyway.
_CLOSE_TIMEOUT = 5.0


class _ThreadLoop:
    """Holds a thread's loop in its local storage; handed over to be closed when the thread
    ends and Python clears that storage."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __del__(self, ended: list[asyncio.AbstractEventLoop] = _ended) -> None:
        # Runs in the ending thread, as its last Python code: only hand the loop over. (The
        # list is bound here: at interpreter exit the module's globals may be gone.)
        ended.append(self.loop)


def _close_ended_loops() -> None:
    """Close the loops of threads that have ended (from a thread that runs no loop)."""
    while _ended:
        try:
            loop = _ended.pop()
        except IndexError:  # another thread took the last one
            return
        if not loop.is_closed() and not loop.is_running():
            _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Shut ``loop`` down the way `asyncio.run` does, then close it.

    Each wait is bounded: the caller is another thread's request, which must not hang on a
    task that ignores cancellation or a sync tool still blocking in the executor.
    """
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT))
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), _CLOSE_TIMEOUT))
    except Exception:
        logger.debug("shutting down the event loop of an ended thread failed", exc_info=True)
    finally:
        # Idle executor threads end now, busy ones when their call returns; nobody waits.
        executor = getattr(loop, "_default_executor", None)
        if executor is not None:
            executor.shutdown(wait=False)
        loop.close()


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
        _local.holder = _ThreadLoop(loop)
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
        if _ended:
            _close_ended_loops()
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
    loop = None
    if asyncio._get_running_loop() is None:
        if _ended:
            _close_ended_loops()
        loop = _thread_loop()
        # Held while the stream lives: a stream begun in a thread that has ended since (and
        # read on from another) keeps its loop open until the stream is done.
        holder = _local.holder  # noqa: F841
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
