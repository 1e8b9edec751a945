"""Time limits of one model request: a deadline for the whole of it and a bound between chunks.

An HTTP client's read timeout bounds each read, so a server that sends a keep-alive every few
seconds (an SSE comment, a ping event) holds a request open forever. `RequestClock` bounds
what the adapter awaits instead: the response, then every chunk of its stream. Only a wait of
the adapter's is ever cancelled (never code across a ``yield``), so that a limit fires inside
the adapter, not in the code of whoever consumes the stream.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from pilothouse.models.errors import provider_error

if TYPE_CHECKING:
    from pilothouse.exceptions import ModelProviderError
    from pilothouse.models.base import Model

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "RequestClock",
    "check_timeout",
]

T = TypeVar("T")

# Ten minutes for a whole answer, the ceiling the SDKs put on each read, now on the request:
# long answers of reasoning models and of local models on a busy CPU fit. A provider that
# stalls mid-answer is caught far sooner by the idle timeout: a minute without a chunk once a
# stream has started means it is stuck, since providers stream tokens or keep-alive events
# every few seconds.
DEFAULT_TIMEOUT = 600.0
DEFAULT_IDLE_TIMEOUT = 60.0
# Opening a connection takes milliseconds; a host that does not answer in 10 s is unreachable.
DEFAULT_CONNECT_TIMEOUT = 10.0


def check_timeout(value: Any, name: str, where: str) -> float | None:
    """``value`` as seconds (None for no limit); ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: {name} must be a number of seconds or None, not {value!r}.")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{where}: {name} must be more than 0 seconds, not {value!r}.")
    return seconds


class RequestClock:
    """The limits of one model request, started when it is sent.

    The response is awaited under `asyncio.timeout_at`. The chunks of a stream are watched by
    one timer per request instead, which costs far less per chunk: it wakes when a limit may
    have passed, and cancels the wait for a chunk only if one has (and only while the
    adapter is waiting, never while the stream's consumer runs).

    Args:
        model: The model making the request (for the error it raises).
        timeout: Seconds for the whole request, first byte to last; None for no deadline.
        idle_timeout: Seconds allowed between two chunks of a stream once it has started;
            None for no bound.
        where: Where the request goes, for the error message.
    """

    __slots__ = (
        "_cancelling",
        "_fired",
        "_handle",
        "_loop",
        "_pending",
        "_since",
        "_task",
        "deadline",
        "idle_timeout",
        "model",
        "timeout",
        "where",
    )

    def __init__(
        self, model: Model, timeout: float | None, idle_timeout: float | None, where: str
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.model = model
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.where = where
        self.deadline = None if timeout is None else self._loop.time() + timeout
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None  # waiting for a chunk, when not None
        self._since: float | None = None  # when that wait began, if idle_timeout applies
        self._cancelling = 0
        self._fired: bool | None = None  # the limit that cancelled the wait: idle or not
        self._pending = False  # the deadline passed while the consumer ran

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await the response (or a whole answer) within the request's deadline."""
        if self.deadline is None:
            return await awaitable
        scope = asyncio.timeout_at(self.deadline)
        try:
            async with scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise self.expired(idle=False) from None
            raise

    async def next(self, iterator: AsyncIterator[T], *, first: bool) -> T:
        """The stream's next chunk, within the deadline and, after the first chunk, within
        ``idle_timeout``. Raises StopAsyncIteration at the end of the stream."""
        if self._pending:
            raise self.expired(idle=False)
        task = asyncio.current_task()
        self._task = task
        # The first chunk may take as long as the model thinks before answering; from then on
        # a silent stream is a stuck one.
        handle = self._handle
        if not first and self.idle_timeout is not None:
            since = self._since = self._loop.time()
            # Once per stream: the timer set for the deadline moves to the first idle bound.
            # Later chunks only move _since, and the timer catches up when it wakes.
            if handle is None or handle.when() > since + self.idle_timeout:
                if handle is not None:
                    handle.cancel()
                self._arm()
        elif handle is None:
            self._arm()
        try:
            return await iterator.__anext__()
        except asyncio.CancelledError:
            fired = self._fired
            if fired is not None and task is not None:
                self._fired = None
                if task.uncancel() <= self._cancelling:
                    raise self.expired(idle=fired) from None
            raise
        finally:
            self._task = None
            self._since = None

    def stop(self) -> None:
        """The request is over: stop watching it."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _due(self) -> float | None:
        when = self.deadline
        since = self._since
        if since is not None:
            bound = since + self.idle_timeout  # type: ignore[operator]
            if when is None or bound < when:
                return bound
        return when

    def _arm(self) -> None:
        when = self._due()
        if when is not None:
            self._handle = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._handle = None
        when = self._due()
        if when is None:
            return
        if self._loop.time() < when:
            # A chunk came since the timer was set: wait for the new bound.
            self._handle = self._loop.call_at(when, self._check)
            return
        idle = self.deadline is None or when < self.deadline
        task = self._task
        if task is None:
            self._pending = True  # only the deadline applies outside a wait
            return
        self._fired = idle
        self._cancelling = task.cancelling()
        task.cancel()

    def expired(self, *, idle: bool) -> ModelProviderError:
        """The (retryable) error of a request that ran out of time, naming the limit."""
        model = self.model
        if idle:
            limit = "idle_timeout"
            what = f"the stream sent nothing for idle_timeout={self.idle_timeout:g} s"
        else:
            limit = "timeout"
            what = (
                f"no whole answer within timeout={self.timeout:g} s (the limit on the whole "
                "request)"
            )
        return provider_error(
            f"{model.name}: the request for model {model.id!r} to {self.where} timed out: "
            f"{what}. Raise {model.name}({limit}=...) for slower answers.",
            model=model,
            retryable=True,
        )
