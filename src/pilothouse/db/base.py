"""`SessionStore`: the contract every session store fulfils.

Storage is append-only and O(1) per run: a run is one row, written when the run starts
(`insert_run`) and finalised when it ends (`update_run`); other runs' rows are never
rewritten. History is read with one bounded, indexed query (`get_last_runs`). Session state
changes by compare-and-set on a version number, so concurrent writers never lose an update
silently. Every method is safe to call concurrently from many tasks.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from pilothouse.db.errors import RunNotFoundError
from pilothouse.db.lease import SessionLease, hold_session_lease
from pilothouse.db.records import MemoryRecord, RunStart, SessionRecord
from pilothouse.db.state import DEFAULT_STATE_RETRIES
from pilothouse.db.state import update_session_state as _update_session_state
from pilothouse.db.values import check_id, check_ttl

__all__ = ["SCHEMA_VERSION", "SessionStore"]

# The layout of the stored tables. A release that changes it raises this number and teaches
# the SQL stores to upgrade a database that records an older one.
SCHEMA_VERSION = 1


class SessionStore(ABC):
    """An async store of sessions, their runs and state, leases, and user memories.

    Run dicts are `RunOutput.to_dict()` output and come back as equal dicts. Values must be
    JSON-serialisable (TypeError otherwise; ValueError for NaN). Database failures raise
    `StoreError`. Use as ``async with store: ...`` or call `close()` when done.
    """

    # --- sessions -------------------------------------------------------------------------

    @abstractmethod
    async def upsert_session(
        self, session_id: str, *, user_id: str | None = None, agent_id: str | None = None
    ) -> SessionRecord:
        """Return the session, creating it when missing.

        An existing session keeps its state, version and ids; only a user_id or agent_id it
        does not have yet is filled in.
        """

    @abstractmethod
    async def get_session(self, session_id: str) -> SessionRecord | None:
        """Return the session, or None when there is none."""

    @abstractmethod
    async def list_sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionRecord]:
        """Return sessions, newest first (by creation), optionally of one user and/or agent."""

    @abstractmethod
    async def delete_session(self, session_id: str) -> bool:
        """Delete the session with its runs and lease; return whether it existed."""

    # --- runs -----------------------------------------------------------------------------

    @abstractmethod
    async def insert_run(self, run: dict[str, Any]) -> None:
        """Store a new run (``RunOutput.to_dict()``), creating its session when missing.

        ``run_id`` and ``session_id`` are required. Raises DuplicateRunError when the run id
        is already stored.
        """

    @abstractmethod
    async def update_run(self, run: dict[str, Any]) -> None:
        """Replace the stored run with the same run_id and session_id (its final status,
        content, metrics...). Raises RunNotFoundError when it was never inserted."""

    @abstractmethod
    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        """Return the run dict, or None when there is none."""

    @abstractmethod
    async def get_last_runs(
        self,
        session_id: str,
        *,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the session's last ``limit`` runs (with a status in ``statuses``, when
        given) in the order they were inserted, oldest first."""

    @abstractmethod
    async def list_runs(
        self, session_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Return the session's runs in the order they were inserted, from the ``offset``-th
        on, at most ``limit`` (None: all)."""

    # --- a run's two steps ------------------------------------------------------------------

    async def start_run(
        self,
        run: dict[str, Any],
        *,
        lease_owner: str,
        lease_ttl: float,
        resume: bool = False,
    ) -> RunStart | None:
        """Begin a run in one step: take the session's lease for ``lease_owner`` (as
        `acquire_session_lease`), create the session or fill in a user_id / agent_id it
        lacks (as `upsert_session`), read its state and version, and store the run (as
        `insert_run`).

        With ``resume=True`` the run is already stored (a paused run being continued,
        perhaps by another process) and is left as it is; RunNotFoundError when it is not
        stored in that session. Returns None, having changed nothing, when another owner
        holds the lease. Any failure leaves the lease free. The SQL stores do all of it in
        one transaction; this default composes the single-step methods.
        """
        session_id = check_id("run['session_id']", run.get("session_id"))
        check_ttl(lease_ttl)
        previous = await self.peek_session_lease(session_id)
        if not await self.acquire_session_lease(session_id, lease_owner, lease_ttl):
            return None
        try:
            user_id, agent_id = run.get("user_id"), run.get("agent_id")
            await self.upsert_session(
                session_id,
                user_id=None if user_id is None else str(user_id),
                agent_id=None if agent_id is None else str(agent_id),
            )
            if resume:
                stored = await self.get_run(check_id("run['run_id']", run.get("run_id")))
                if stored is None or stored.get("session_id") != session_id:
                    raise RunNotFoundError(
                        f"no run {run.get('run_id')!r} in session {session_id!r} to resume"
                    )
            state, version = await self.get_session_state(session_id)
            if not resume:
                await self.insert_run(run)
        except BaseException:
            # The lease lapses by itself anyway; the first failure is the one to report.
            with contextlib.suppress(Exception):
                await self.release_session_lease(session_id, lease_owner)
            raise
        return RunStart(state, version, previous is not None and previous != lease_owner)

    async def finish_run(
        self,
        run: dict[str, Any],
        *,
        lease_owner: str | None = None,
        state: dict[str, Any] | None = None,
        expected_version: int = 0,
    ) -> bool:
        """End a run in one step: replace the stored run (as `update_run`), then, when
        ``state`` is given, compare-and-set the session state against ``expected_version``
        (as `set_session_state`), then release ``lease_owner``'s lease, when given.

        Returns False when the compare-and-set lost (another writer changed the state): the
        run is stored, the state is not, and the lease is kept, so that the caller can merge
        its changes (`update_session_state`) before releasing it. True otherwise. Raises
        RunNotFoundError, having changed nothing, when the run was never stored. The SQL
        stores do all of it in one transaction; this default composes the single-step
        methods.
        """
        session_id = check_id("run['session_id']", run.get("session_id"))
        await self.update_run(run)
        if state is not None:
            version = await self.set_session_state(
                session_id, state, expected_version=expected_version
            )
            if version is None:
                return False
        if lease_owner is not None:
            await self.release_session_lease(session_id, lease_owner)
        return True

    # --- session state --------------------------------------------------------------------

    @abstractmethod
    async def get_session_state(self, session_id: str) -> tuple[dict[str, Any], int]:
        """Return (state, version); ({}, 0) for a session that has no state yet."""

    @abstractmethod
    async def set_session_state(
        self, session_id: str, state: dict[str, Any], *, expected_version: int
    ) -> int | None:
        """Replace the state if its version is still ``expected_version``; return the new
        version, or None when another writer got there first. Creates a missing session when
        ``expected_version`` is 0."""

    async def update_session_state(
        self,
        session_id: str,
        fn: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        retries: int = DEFAULT_STATE_RETRIES,
    ) -> tuple[dict[str, Any], int]:
        """Apply ``fn`` (state → new state) with compare-and-set, retrying with jittered
        backoff when another writer wins; return (state, version). Raises StaleStateError
        after ``retries`` lost attempts. ``fn`` may run more than once."""
        return await _update_session_state(self, session_id, fn, retries=retries)

    # --- session lease --------------------------------------------------------------------

    @abstractmethod
    async def acquire_session_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Take the session's lease for ``ttl`` seconds; return whether ``owner`` holds it.

        Succeeds when nobody holds it, when the holder's lease expired, or when ``owner``
        already holds it (then the expiry moves to now + ttl).
        """

    @abstractmethod
    async def renew_session_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease to now + ``ttl``; False when ``owner`` no longer holds it."""

    async def peek_session_lease(self, session_id: str) -> str | None:
        """The owner named by the session's lease, expired or not (a released lease is
        gone), or None. Stores that cannot tell cheaply return None."""
        return None

    @abstractmethod
    async def release_session_lease(self, session_id: str, owner: str) -> bool:
        """Give up ``owner``'s lease; return whether ``owner`` held it."""

    def session_lease(
        self,
        session_id: str,
        *,
        owner: str | None = None,
        ttl: float = 30.0,
        wait: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[SessionLease]:
        """``async with store.session_lease(sid): ...`` waits for the lease (up to ``wait``
        seconds; None: forever), renews it every ttl/3 s while the block runs, and releases
        it. Raises LeaseUnavailableError when the wait runs out."""
        return hold_session_lease(self, session_id, owner=owner, ttl=ttl, wait=wait)

    # --- user memories --------------------------------------------------------------------

    @abstractmethod
    async def add_memory(
        self, user_id: str, memory: str, *, topics: Iterable[str] | None = None
    ) -> MemoryRecord:
        """Store a new memory about the user and return it with its new memory_id."""

    @abstractmethod
    async def update_memory(
        self, memory_id: str, memory: str, *, topics: Iterable[str] | None = None
    ) -> MemoryRecord | None:
        """Replace a memory's text (and topics, unless None); None when there is no such
        memory."""

    @abstractmethod
    async def delete_memory(self, memory_id: str) -> bool:
        """Delete a memory; return whether it existed."""

    @abstractmethod
    async def get_user_memories(
        self, user_id: str, *, limit: int | None = None
    ) -> list[MemoryRecord]:
        """Return the user's memories oldest first; with ``limit``, the newest ``limit``."""

    @abstractmethod
    async def clear_memories(self, user_id: str) -> int:
        """Delete all of the user's memories; return how many there were."""

    # --- lifecycle ------------------------------------------------------------------------

    @abstractmethod
    async def schema_version(self) -> int:
        """Return the schema version recorded in the database."""

    @abstractmethod
    async def close(self) -> None:
        """Release this event loop's connections. A store used again afterwards opens new
        ones. A store used from several event loops (threads) is closed from each."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
