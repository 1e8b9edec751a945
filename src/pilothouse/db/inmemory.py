"""`InMemoryDb`: the session store contract on plain dicts, for tests and throwaway agents."""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pilothouse.db.base import SCHEMA_VERSION, SessionStore
from pilothouse.db.errors import DuplicateRunError, RunNotFoundError
from pilothouse.db.records import MemoryRecord, SessionRecord
from pilothouse.db.values import (
    check_id,
    check_limit,
    check_ttl,
    json_copy,
    normalise_statuses,
    normalise_topics,
    run_row,
)

__all__ = ["InMemoryDb", "process_store"]


@dataclass(slots=True)
class _Session:
    record: SessionRecord
    # Run ids in insertion order: the in-memory counterpart of the (session_id, seq) index.
    run_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Run:
    session_id: str
    status: str
    data: dict[str, Any]


class InMemoryDb(SessionStore):
    """A session store that keeps everything in this process's memory.

    Same semantics as the SQL stores, including JSON round-trips of stored values, so code
    tested against it behaves the same on a database. A plain threading lock guards the data:
    no method awaits while holding it, so it never blocks an event loop for longer than a
    dict operation, and it works from any loop or thread.

    Args:
        max_sessions: Keep at most this many sessions; the oldest one that no run holds is
            forgotten (with its runs) to make room for a new one. None: no bound.
        max_runs_per_session: Keep at most this many runs per session; the oldest finished
            runs are forgotten first. None: no bound.
    """

    def __init__(
        self, *, max_sessions: int | None = None, max_runs_per_session: int | None = None
    ) -> None:
        check_limit(max_sessions, name="max_sessions")
        check_limit(max_runs_per_session, name="max_runs_per_session")
        self._max_sessions = max_sessions
        self._max_runs = max_runs_per_session
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._runs: dict[str, _Run] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._memories: dict[str, MemoryRecord] = {}
        # user id → memory ids in insertion order (the user_id index).
        self._user_memories: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return "InMemoryDb()"

    # --- sessions -------------------------------------------------------------------------

    def _ensure_session(
        self,
        session_id: str,
        user_id: str | None,
        agent_id: str | None,
        now: float,
        *,
        fill: bool = True,
    ) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            if self._max_sessions is not None and len(self._sessions) >= self._max_sessions:
                self._forget_a_session()
            record = SessionRecord(session_id, user_id, agent_id, {}, 0, now, now, 0)
            session = self._sessions[session_id] = _Session(record)
        elif fill:
            if session.record.user_id is None and user_id is not None:
                session.record.user_id = user_id
            if session.record.agent_id is None and agent_id is not None:
                session.record.agent_id = agent_id
        return session

    async def upsert_session(
        self, session_id: str, *, user_id: str | None = None, agent_id: str | None = None
    ) -> SessionRecord:
        """Return the session, creating it when missing (see `SessionStore.upsert_session`)."""
        check_id("session_id", session_id)
        with self._lock:
            session = self._ensure_session(session_id, user_id, agent_id, time.time())
            return copy.deepcopy(session.record)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """Return the session, or None."""
        with self._lock:
            session = self._sessions.get(session_id)
            return None if session is None else copy.deepcopy(session.record)

    async def list_sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[SessionRecord]:
        """Return sessions newest first, optionally of one user and/or agent."""
        check_limit(limit)
        check_limit(offset, name="offset")
        with self._lock:
            records = [
                s.record
                for s in self._sessions.values()
                if (user_id is None or s.record.user_id == user_id)
                and (agent_id is None or s.record.agent_id == agent_id)
            ]
            records.sort(key=lambda r: (r.created_at, r.session_id), reverse=True)
            return [copy.deepcopy(r) for r in records[offset : offset + limit]]

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session with its runs and lease."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
            self._leases.pop(session_id, None)
            if session is None:
                return False
            for run_id in session.run_ids:
                self._runs.pop(run_id, None)
            return True

    def _forget_a_session(self) -> None:
        """Make room for a new session: forget the oldest one no run holds a lease on."""
        now = time.monotonic()
        for session_id in self._sessions:
            lease = self._leases.get(session_id)
            if lease is None or lease[1] <= now:
                session = self._sessions.pop(session_id)
                self._leases.pop(session_id, None)
                for run_id in session.run_ids:
                    self._runs.pop(run_id, None)
                return

    def _forget_old_runs(self, session: _Session) -> None:
        """Forget a session's oldest finished runs beyond the bound."""
        assert self._max_runs is not None
        excess = len(session.run_ids) - self._max_runs
        kept: list[str] = []
        for run_id in session.run_ids:
            if excess > 0 and self._runs[run_id].status not in _UNFINISHED:
                del self._runs[run_id]
                excess -= 1
            else:
                kept.append(run_id)
        session.run_ids = kept

    # --- runs -----------------------------------------------------------------------------

    async def insert_run(self, run: dict[str, Any]) -> None:
        """Store a new run, creating its session when missing."""
        row = run_row(run)
        with self._lock:
            if row.run_id in self._runs:
                raise DuplicateRunError(f"run {row.run_id!r} is already stored")
            now = time.time()
            # As in the SQL stores: a run creates a missing session, never edits an existing one.
            session = self._ensure_session(
                row.session_id, row.user_id, row.agent_id, now, fill=False
            )
            self._runs[row.run_id] = _Run(row.session_id, row.status, row.data)
            session.run_ids.append(row.run_id)
            if self._max_runs is not None and len(session.run_ids) > self._max_runs:
                self._forget_old_runs(session)
            session.record.run_count += 1
            session.record.updated_at = now

    async def update_run(self, run: dict[str, Any]) -> None:
        """Replace the stored run with the same run_id and session_id."""
        row = run_row(run)
        with self._lock:
            stored = self._runs.get(row.run_id)
            if stored is None or stored.session_id != row.session_id:
                raise RunNotFoundError(
                    f"no run {row.run_id!r} in session {row.session_id!r} to update"
                )
            stored.status = row.status
            stored.data = row.data

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        """Return the run dict, or None."""
        with self._lock:
            stored = self._runs.get(run_id)
            return None if stored is None else copy.deepcopy(stored.data)

    async def get_last_runs(
        self,
        session_id: str,
        *,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the session's last ``limit`` runs, oldest first."""
        check_limit(limit)
        wanted = normalise_statuses(statuses)
        found: list[dict[str, Any]] = []
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or limit == 0:
                return []
            for run_id in reversed(session.run_ids):
                stored = self._runs[run_id]
                if wanted is None or stored.status in wanted:
                    found.append(copy.deepcopy(stored.data))
                    if len(found) == limit:
                        break
        found.reverse()
        return found

    async def list_runs(
        self, session_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Return the session's runs in insertion order."""
        check_limit(limit)
        check_limit(offset, name="offset")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return []
            end = None if limit is None else offset + limit
            return [copy.deepcopy(self._runs[r].data) for r in session.run_ids[offset:end]]

    # --- session state --------------------------------------------------------------------

    async def get_session_state(self, session_id: str) -> tuple[dict[str, Any], int]:
        """Return (state, version); ({}, 0) for a session without state."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return {}, 0
            return copy.deepcopy(session.record.session_state), session.record.state_version

    async def set_session_state(
        self, session_id: str, state: dict[str, Any], *, expected_version: int
    ) -> int | None:
        """Compare-and-set the session's state; the new version, or None when stale."""
        check_id("session_id", session_id)
        if not isinstance(state, dict):
            raise TypeError(f"session state must be a dict, got {type(state).__name__}")
        stored_state = json_copy(state, what="session state")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                if expected_version != 0:
                    return None
                session = self._ensure_session(session_id, None, None, time.time())
            record = session.record
            if record.state_version != expected_version:
                return None
            record.session_state = stored_state
            record.state_version += 1
            record.updated_at = time.time()
            return record.state_version

    # --- session lease --------------------------------------------------------------------

    async def acquire_session_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Take the session's lease for ``ttl`` seconds if free, expired or already ours."""
        check_id("session_id", session_id)
        check_id("owner", owner)
        check_ttl(ttl)
        with self._lock:
            now = time.monotonic()
            held = self._leases.get(session_id)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._leases[session_id] = (owner, now + ttl)
            return True

    async def renew_session_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease; False when ``owner`` no longer holds it."""
        check_ttl(ttl)
        with self._lock:
            held = self._leases.get(session_id)
            if held is None or held[0] != owner:
                return False
            self._leases[session_id] = (owner, time.monotonic() + ttl)
            return True

    async def peek_session_lease(self, session_id: str) -> str | None:
        """The owner named by the session's lease, expired or not, or None."""
        with self._lock:
            lease = self._leases.get(session_id)
            return None if lease is None else lease[0]

    async def release_session_lease(self, session_id: str, owner: str) -> bool:
        """Give up ``owner``'s lease."""
        with self._lock:
            held = self._leases.get(session_id)
            if held is None or held[0] != owner:
                return False
            del self._leases[session_id]
            return True

    # --- user memories --------------------------------------------------------------------

    async def add_memory(
        self, user_id: str, memory: str, *, topics: Iterable[str] | None = None
    ) -> MemoryRecord:
        """Store a new memory about the user."""
        check_id("user_id", user_id)
        now = time.time()
        record = MemoryRecord(
            uuid.uuid4().hex, user_id, str(memory), normalise_topics(topics), now, now
        )
        with self._lock:
            self._memories[record.memory_id] = record
            self._user_memories.setdefault(user_id, []).append(record.memory_id)
            return copy.deepcopy(record)

    async def update_memory(
        self, memory_id: str, memory: str, *, topics: Iterable[str] | None = None
    ) -> MemoryRecord | None:
        """Replace a memory's text (and topics unless None)."""
        with self._lock:
            record = self._memories.get(memory_id)
            if record is None:
                return None
            record.memory = str(memory)
            if topics is not None:
                record.topics = normalise_topics(topics)
            record.updated_at = time.time()
            return copy.deepcopy(record)

    async def delete_memory(self, memory_id: str) -> bool:
        """Delete a memory."""
        with self._lock:
            record = self._memories.pop(memory_id, None)
            if record is None:
                return False
            self._user_memories[record.user_id].remove(memory_id)
            return True

    async def get_user_memories(
        self, user_id: str, *, limit: int | None = None
    ) -> list[MemoryRecord]:
        """Return the user's memories oldest first; with ``limit``, the newest ``limit``."""
        check_limit(limit)
        with self._lock:
            ids = self._user_memories.get(user_id, [])
            if limit is not None:
                ids = ids[len(ids) - limit :] if limit else []
            return [copy.deepcopy(self._memories[m]) for m in ids]

    async def clear_memories(self, user_id: str) -> int:
        """Delete all of the user's memories."""
        with self._lock:
            ids = self._user_memories.pop(user_id, [])
            for memory_id in ids:
                del self._memories[memory_id]
            return len(ids)

    # --- lifecycle ------------------------------------------------------------------------

    async def schema_version(self) -> int:
        """The schema version this release writes (nothing is persisted)."""
        return SCHEMA_VERSION

    async def close(self) -> None:
        """Nothing to release; the data stays for as long as the object lives."""


_UNFINISHED = frozenset({"PENDING", "RUNNING", "PAUSED"})
_process_store: InMemoryDb | None = None
_process_store_lock = threading.Lock()


def process_store() -> InMemoryDb:
    """The session store of agents that ask for history or memories without a db.

    It lives in this process only and is bounded (10,000 sessions of at most 100 runs each),
    so that a long-lived process does not grow without end.
    """
    global _process_store
    with _process_store_lock:
        if _process_store is None:
            _process_store = InMemoryDb(max_sessions=10_000, max_runs_per_session=100)
        return _process_store
