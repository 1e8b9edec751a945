"""Holding a session lease for the length of a block, renewed in the background.

A lease is a row naming its owner and an expiry time. Holders renew it well before it
expires; a holder that crashes stops renewing, so its lease lapses after ``ttl`` seconds and
the next caller takes over. That is what makes it safe across processes and machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from pilothouse.db.errors import LeaseUnavailableError
from pilothouse.db.values import check_ttl

if TYPE_CHECKING:
    from pilothouse.db.base import SessionStore

__all__ = [
    "LeaseRenewal",
    "SessionLease",
    "hold_session_lease",
    "new_lease_owner",
    "wait_for_lease",
]

T = TypeVar("T")

logger = logging.getLogger("pilothouse")

_process_tag: str | None = None


def new_lease_owner() -> str:
    """Return a fresh owner id: host, process and a random part, unique per holder."""
    global _process_tag
    if _process_tag is None:
        _process_tag = f"{socket.gethostname()}:{os.getpid()}"
    return f"{_process_tag}:{uuid.uuid4().hex}"


class SessionLease:
    """A lease held by `hold_session_lease`.

    ``lost`` turns True if a renewal failed (the lease had lapsed and another owner took it,
    or the store was unreachable for longer than the ttl); the holder should then stop
    writing to the session.
    """

    __slots__ = ("lost", "owner", "session_id", "ttl")

    def __init__(self, session_id: str, owner: str, ttl: float) -> None:
        self.session_id = session_id
        self.owner = owner
        self.ttl = ttl
        self.lost = False

    def __repr__(self) -> str:
        return f"SessionLease({self.session_id!r}, owner={self.owner!r}, lost={self.lost})"


async def wait_for_lease(
    take: Callable[[], Awaitable[T | None]],
    session_id: str,
    *,
    ttl: float,
    wait: float | None,
) -> T:
    """Call ``take`` (an attempt to take the session's lease, None when another owner holds
    it) until it succeeds, with growing, jittered pauses; at most ``wait`` seconds (None:
    forever). Returns what ``take`` returned; raises LeaseUnavailableError when the wait
    runs out."""
    deadline = None if wait is None else time.monotonic() + wait
    delay = 0.005
    while True:
        taken = await take()
        if taken is not None:
            return taken
        if deadline is not None and time.monotonic() >= deadline:
            raise LeaseUnavailableError(
                f"session {session_id!r}: lease held by another owner for more than {wait}s"
            )
        pause = random.uniform(delay / 2, delay)
        if deadline is not None:
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        await asyncio.sleep(pause)
        # The wait grows to a fraction of the ttl: a released lease is noticed quickly, an
        # expired one within a fraction of its lifetime.
        delay = min(delay * 2, max(0.05, ttl / 4), 0.5)


async def _acquire(
    store: SessionStore, session_id: str, owner: str, ttl: float, wait: float | None
) -> None:
    async def take() -> bool | None:
        return await store.acquire_session_lease(session_id, owner, ttl) or None

    await wait_for_lease(take, session_id, ttl=ttl, wait=wait)


class LeaseRenewal:
    """Renews a held lease every ``ttl / 3`` seconds until `stop`.

    A timer on the running loop, not a task per lease: most leases are held for less than
    one interval and then cost nothing. A failed renewal sets ``lease.lost``.
    """

    __slots__ = ("_handle", "_lease", "_loop", "_stopped", "_store", "_task")

    def __init__(self, store: SessionStore, lease: SessionLease) -> None:
        self._store = store
        self._lease = lease
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(lease.ttl / 3, self._due)

    def _due(self) -> None:
        self._handle = None
        if not self._stopped:
            self._task = self._loop.create_task(
                self._renew(), name=f"lease:{self._lease.session_id}"
            )

    async def _renew(self) -> None:
        lease = self._lease
        try:
            renewed = await self._store.renew_session_lease(
                lease.session_id, lease.owner, lease.ttl
            )
        except Exception:  # a transient outage must not end the renewals; expiry decides
            logger.warning("session %s: lease renewal failed", lease.session_id, exc_info=True)
            renewed = True
        if not renewed:
            lease.lost = True
            logger.warning("session %s: lease of %s was lost", lease.session_id, lease.owner)
        elif not self._stopped:
            self._handle = self._loop.call_later(lease.ttl / 3, self._due)

    async def stop(self) -> None:
        """Stop renewing (idempotent); waits for a renewal in flight to be cancelled."""
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait, unlike awaiting the task, neither re-raises the renewal's
            # cancellation nor swallows a cancellation aimed at the caller.
            await asyncio.wait([task])


async def _keep_renewed(store: SessionStore, lease: SessionLease) -> None:
    interval = lease.ttl / 3
    while True:
        await asyncio.sleep(interval)
        try:
            renewed = await store.renew_session_lease(lease.session_id, lease.owner, lease.ttl)
        except Exception:  # a transient outage must not kill the renewer; expiry decides
            logger.warning("session %s: lease renewal failed", lease.session_id, exc_info=True)
            continue
        if not renewed:
            lease.lost = True
            logger.warning("session %s: lease of %s was lost", lease.session_id, lease.owner)
            return


@contextlib.asynccontextmanager
async def hold_session_lease(
    store: SessionStore,
    session_id: str,
    *,
    owner: str | None = None,
    ttl: float = 30.0,
    wait: float | None = None,
) -> AsyncIterator[SessionLease]:
    """Wait for the session's lease (at most ``wait`` seconds, None = forever), hold it
    while the block runs, renewing it every ``ttl / 3`` seconds, and release it on exit.

    Raises LeaseUnavailableError when the wait runs out.
    """
    lease = SessionLease(session_id, owner or new_lease_owner(), check_ttl(ttl))
    await _acquire(store, session_id, lease.owner, ttl, wait)
    renewer = asyncio.create_task(_keep_renewed(store, lease), name=f"lease:{session_id}")
    try:
        yield lease
    finally:
        renewer.cancel()
        # asyncio.wait, unlike awaiting the task, neither re-raises the renewer's
        # cancellation nor swallows a cancellation aimed at this task.
        await asyncio.wait([renewer])
        try:
            await store.release_session_lease(session_id, lease.owner)
        except Exception:  # the lease expires by itself; the block's own outcome matters more
            logger.warning("session %s: lease release failed", session_id, exc_info=True)
