"""Releasing what belongs to an event loop while that loop can still run the release.

HTTP clients and pooled database connections belong to the event loop that opened them: they
can only be closed by awaiting on that loop. Left to the garbage collector after their loop has
closed, they try to close themselves on it anyway and print "Event loop is closed" tracebacks,
and until then they hold sockets and file descriptors.

`release_with_loop` registers an async method to be awaited when the running loop shuts down.
The hook is an async generator that the loop tracks, like every async generator started on it:
`asyncio.run`, and Pilothouse's own loops for synchronous calls, close every such generator
(``loop.shutdown_asyncgens()``) while the loop still runs, just before they close the loop. The
generator's ``finally`` then awaits each registered release. Nothing runs per call: only the
first resource an object opens on a loop registers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

__all__ = ["release_with_loop"]

logger = logging.getLogger("pilothouse")

_RELEASE_TIMEOUT = 5.0
_lock = threading.Lock()
# Keyed by the loop itself, not weakly: the hook refers to its loop anyway (the loop's
# finaliser for async generators), so entries go when their loop shuts down, or when a later
# registration finds their loop closed without a shutdown.
_hooks: dict[asyncio.AbstractEventLoop, _Hook] = {}


class _Hook:
    """The releases registered on one loop, and the generator that runs them at shutdown."""

    __slots__ = ("generator", "limit", "releases")

    def __init__(self) -> None:
        self.releases: list[weakref.WeakMethod[Callable[[], Awaitable[Any]]]] = []
        self.limit = 64
        self.generator: AsyncGenerator[None, None] | None = None

    def add(self, release: Callable[[], Awaitable[Any]]) -> None:
        self.releases.append(weakref.WeakMethod(release))
        if len(self.releases) > self.limit:
            # Objects created per request on a long-lived loop: forget those already gone.
            self.releases = [ref for ref in self.releases if ref() is not None]
            self.limit = max(64, 2 * len(self.releases))


async def _on_shutdown(loop: asyncio.AbstractEventLoop, hook: _Hook) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        with _lock:
            if _hooks.get(loop) is hook:
                del _hooks[loop]
        for ref in hook.releases:
            release = ref()
            if release is None:
                continue
            try:
                # Bounded: a release stuck on a dead connection must not hang the loop's close.
                await asyncio.wait_for(release(), _RELEASE_TIMEOUT)
            except Exception:
                # A connection that is already broken cannot be closed more cleanly than this.
                logger.debug("releasing a resource of a closing event loop failed", exc_info=True)


def release_with_loop(release: Callable[[], Awaitable[Any]]) -> None:
    """Await ``release()`` (a bound async method) on the running event loop when that loop
    shuts down its async generators, i.e. before `asyncio.run` or Pilothouse closes it.

    Only a weak reference to the method's object is kept: an object that goes away first is
    not kept alive for its release. Call this from code running on the loop.
    """
    loop = asyncio.get_running_loop()
    if sys.get_asyncgen_hooks().firstiter is None:
        # A loop that does not track async generators would never close the hook either.
        return
    with _lock:
        hook = _hooks.get(loop)
        if hook is None:
            for old in [old for old in _hooks if old.is_closed()]:
                del _hooks[old]
            hook = _hooks[loop] = _Hook()
        hook.add(release)
        if hook.generator is not None:
            return
        hook.generator = generator = _on_shutdown(loop, hook)
    # The first step starts the generator on this loop, whose hooks now track it; it stops at
    # its ``yield`` at once, so this never suspends.
    step = generator.asend(None)
    with contextlib.suppress(StopIteration):
        step.send(None)
