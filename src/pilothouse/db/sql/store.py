"""`SqlStore`: the session store contract in SQL (SQLAlchemy Core), shared by SQLite and
PostgreSQL.

Each method is one short transaction or one autocommit read whose statements use an index;
no method reads or rewrites more than the rows it returns.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Row, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from pilothouse.db.errors import DuplicateRunError, RunNotFoundError, StoreError
from pilothouse.db.records import MemoryRecord, SessionRecord
from pilothouse.db.sql.transactions import VERSION_KEY, SqlTransactions
from pilothouse.db.values import (
    check_id,
    check_limit,
    check_ttl,
    json_copy,
    normalise_statuses,
    normalise_topics,
    run_row,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

__all__ = ["SqlStore"]


class SqlStore(SqlTransactions):
    """The contract implemented once in SQL; `SqliteDb` and `PostgresDb` supply the engine
    and the dialect's differences."""

    # --- sessions -------------------------------------------------------------------------

    @staticmethod
    def _session_record(row: Row[Any]) -> SessionRecord:
        return SessionRecord(
            session_id=row.session_id,
            user_id=row.user_id,
            agent_id=row.agent_id,
            session_state=dict(row.session_state or {}),
            state_version=int(row.state_version),
            created_at=float(row.created_at),
            updated_at=float(row.updated_at),
            run_count=int(row.run_count),
        )

    async def _fetch_session(self, conn: AsyncConnection, session_id: str) -> SessionRecord | None:
        s = self._tables.sessions
        row = (await conn.execute(select(s).where(s.c.session_id == session_id))).first()
        return None if row is None else self._session_record(row)

    def _new_session(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        state: dict[str, Any] | None = None,
        state_version: int = 0,
        run_count: int = 0,
    ) -> SqliteInsert | PgInsert:
        s = self._tables.sessions
        now = time.time()
        return self._insert(s).values(
            session_id=session_id,
            user_id=user_id,
            agent_id=agent_id,
            session_state=state or {},
            state_version=state_version,
            run_count=run_count,
            created_at=now,
            updated_at=now,
        )

    async def upsert_session(
        self, session_id: str, *, user_id: str | None = None, agent_id: str | None = None
    ) -> SessionRecord:
        """Return the session, creating it when missing (see `SessionStore.upsert_session`)."""
        check_id("session_id", session_id)

        async def read(conn: AsyncConnection) -> SessionRecord | None:
            return await self._fetch_session(conn, session_id)

        # The common case, an existing session with nothing to fill in, is a plain read: no
        # write lock, no new row version.
        found = await self._read(read)
        if (
            found is not None
            and (user_id is None or found.user_id is not None)
            and (agent_id is None or found.agent_id is not None)
        ):
            return found

        async def write(conn: AsyncConnection) -> SessionRecord:
            s = self._tables.sessions
            stmt = self._new_session(session_id, user_id=user_id, agent_id=agent_id)
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=[s.c.session_id]))
            for column, value in ((s.c.user_id, user_id), (s.c.agent_id, agent_id)):
                if value is not None:
                    await conn.execute(
                        update(s)
                        .where(s.c.session_id == session_id, column.is_(None))
                        .values({column.name: value})
                    )
            record = await self._fetch_session(conn, session_id)
            assert record is not None  # inserted or already there, in this transaction
            return record

        return await self._write(write)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """Return the session, or None."""

        async def read(conn: AsyncConnection) -> SessionRecord | None:
            return await self._fetch_session(conn, session_id)

        return await self._read(read)

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
        s = self._tables.sessions
        query = select(s)
        if user_id is not None:
            query = query.where(s.c.user_id == user_id)
        if agent_id is not None:
            query = query.where(s.c.agent_id == agent_id)
        query = (
            query.order_by(s.c.created_at.desc(), s.c.session_id.desc()).limit(limit).offset(offset)
        )

        async def read(conn: AsyncConnection) -> list[SessionRecord]:
            return [self._session_record(row) for row in await conn.execute(query)]

        return await self._read(read)

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session with its runs and lease."""
        t = self._tables

        async def write(conn: AsyncConnection) -> bool:
            await conn.execute(delete(t.runs).where(t.runs.c.session_id == session_id))
            await conn.execute(delete(t.leases).where(t.leases.c.session_id == session_id))
            gone = await conn.execute(
                delete(t.sessions).where(t.sessions.c.session_id == session_id)
            )
            return gone.rowcount == 1

        return await self._write(write)

    # --- runs -----------------------------------------------------------------------------

    async def insert_run(self, run: dict[str, Any]) -> None:
        """Store a new run, creating its session when missing."""
        row = run_row(run)
        s, r = self._tables.sessions, self._tables.runs

        async def write(conn: AsyncConnection) -> None:
            now = time.time()
            # Counting the run on its session row also numbers it: the row lock makes run
            # numbers of one session dense and in commit order.
            count = (
                update(s)
                .where(s.c.session_id == row.session_id)
                .values(run_count=s.c.run_count + 1, updated_at=now)
                .returning(s.c.run_count)
            )
            run_no = await conn.scalar(count)
            if run_no is None:
                created = (
                    self._new_session(
                        row.session_id, user_id=row.user_id, agent_id=row.agent_id, run_count=1
                    )
                    .on_conflict_do_nothing(index_elements=[s.c.session_id])
                    # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT.
                    .returning(s.c.run_count)
                )
                run_no = await conn.scalar(created)
                if run_no is None:
                    # Another writer created the session between our two statements.
                    run_no = await conn.scalar(count)
            inserted = await conn.execute(
                self._insert(r)
                .values(
                    run_id=row.run_id,
                    session_id=row.session_id,
                    run_no=run_no,
                    user_id=row.user_id,
                    agent_id=row.agent_id,
                    status=row.status,
                    created_at=row.created_at,
                    updated_at=now,
                    data=row.data,
                )
                .on_conflict_do_nothing(index_elements=[r.c.run_id])
                .returning(r.c.seq)
            )
            if inserted.first() is None:
                # Raising rolls back the run counter increment above.
                raise DuplicateRunError(f"{self._label}: run {row.run_id!r} is already stored")

        await self._write(write)

    async def update_run(self, run: dict[str, Any]) -> None:
        """Replace the stored run with the same run_id and session_id."""
        row = run_row(run)
        r = self._tables.runs
        stmt = (
            update(r)
            .where(r.c.run_id == row.run_id, r.c.session_id == row.session_id)
            .values(
                user_id=row.user_id,
                agent_id=row.agent_id,
                status=row.status,
                updated_at=time.time(),
                data=row.data,
            )
        )

        async def write(conn: AsyncConnection) -> None:
            if (await conn.execute(stmt)).rowcount == 0:
                raise RunNotFoundError(
                    f"{self._label}: no run {row.run_id!r} in session {row.session_id!r} to update"
                )

        await self._write(write, atomic=False)

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        """Return the run dict, or None."""
        r = self._tables.runs

        async def read(conn: AsyncConnection) -> dict[str, Any] | None:
            data = await conn.scalar(select(r.c.data).where(r.c.run_id == run_id))
            return None if data is None else dict(data)

        return await self._read(read)

    async def get_last_runs(
        self,
        session_id: str,
        *,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the session's last ``limit`` runs, oldest first.

        One query over a range of the (session_id, run_no) index: the runs numbered above
        ``run_count - window``. The range, not the query planner, bounds the rows read: an
        ``ORDER BY ... LIMIT`` alone lets PostgreSQL choose to read and sort all of a
        session's runs when its statistics are missing or stale. Without a status filter the
        window is ``limit``; with one it starts at a few times ``limit`` and widens (x4) only
        while too few runs in it have a wanted status.
        """
        check_limit(limit)
        wanted = normalise_statuses(statuses)
        if limit == 0 or wanted == frozenset():
            return []
        s, r = self._tables.sessions, self._tables.runs
        run_count = select(s.c.run_count).where(s.c.session_id == session_id).scalar_subquery()
        window = bindparam("window", type_=BigInteger())
        query = select(r.c.data).where(
            r.c.session_id == session_id, r.c.run_no > run_count - window
        )
        if wanted is not None:
            query = query.where(r.c.status.in_(sorted(wanted)))
        query = query.order_by(r.c.run_no.desc()).limit(limit)
        count_query = select(s.c.run_count).where(s.c.session_id == session_id)

        async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
            size = limit if wanted is None else max(4 * limit, 16)
            total: int | None = None
            while True:
                found = [dict(data) for data in await conn.scalars(query, {"window": size})]
                if len(found) == limit or wanted is None:
                    return found
                if total is None:
                    total = int(await conn.scalar(count_query) or 0)
                if size >= total:
                    return found
                size *= 4

        newest_first = await self._read(read)
        newest_first.reverse()
        return newest_first

    async def list_runs(
        self, session_id: str, *, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Return the session's runs in insertion order (``offset`` is a run number, so
        paging costs the page, not the offset)."""
        check_limit(limit)
        check_limit(offset, name="offset")
        r = self._tables.runs
        query = (
            select(r.c.data)
            .where(r.c.session_id == session_id, r.c.run_no > offset)
            .order_by(r.c.run_no)
            .limit(limit)
        )

        async def read(conn: AsyncConnection) -> list[dict[str, Any]]:
            return [dict(data) for data in await conn.scalars(query)]

        return await self._read(read)

    # --- session state --------------------------------------------------------------------

    async def get_session_state(self, session_id: str) -> tuple[dict[str, Any], int]:
        """Return (state, version); ({}, 0) for a session without state."""
        s = self._tables.sessions
        query = select(s.c.session_state, s.c.state_version).where(s.c.session_id == session_id)

        async def read(conn: AsyncConnection) -> tuple[dict[str, Any], int]:
            row = (await conn.execute(query)).first()
            if row is None:
                return {}, 0
            return dict(row.session_state or {}), int(row.state_version)

        return await self._read(read)

    async def set_session_state(
        self, session_id: str, state: dict[str, Any], *, expected_version: int
    ) -> int | None:
        """Compare-and-set the session's state in one UPDATE ... WHERE state_version = expected;
        the new version, or None when another writer got there first."""
        check_id("session_id", session_id)
        if not isinstance(state, dict):
            raise TypeError(f"session state must be a dict, got {type(state).__name__}")
        stored = json_copy(state, what="session state")
        s = self._tables.sessions

        async def write(conn: AsyncConnection) -> int | None:
            swapped = await conn.execute(
                update(s)
                .where(s.c.session_id == session_id, s.c.state_version == expected_version)
                .values(
                    session_state=stored,
                    state_version=s.c.state_version + 1,
                    updated_at=time.time(),
                )
            )
            if swapped.rowcount == 1:
                return expected_version + 1
            # The two statements need no transaction: if the session appears between them,
            # the INSERT does nothing and the caller is told it lost the race, which it did.
            if expected_version != 0:
                return None
            created = await conn.execute(
                self._new_session(session_id, state=stored, state_version=1)
                .on_conflict_do_nothing(index_elements=[s.c.session_id])
                .returning(s.c.state_version)
            )
            return 1 if created.first() is not None else None

        return await self._write(write, atomic=False)

    # --- session lease --------------------------------------------------------------------

    async def acquire_session_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Take the lease in one atomic upsert: insert it, or take over a row that is ours or
        expired; any other holder's live row stays untouched."""
        check_id("session_id", session_id)
        check_id("owner", owner)
        check_ttl(ttl)
        lease = self._tables.leases
        now = self._now()
        stmt = self._insert(lease).values(session_id=session_id, owner=owner, expires_at=now + ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=[lease.c.session_id],
            set_={"owner": stmt.excluded.owner, "expires_at": stmt.excluded.expires_at},
            where=or_(lease.c.owner == stmt.excluded.owner, lease.c.expires_at <= now),
        )
        returning = stmt.returning(lease.c.owner)

        async def write(conn: AsyncConnection) -> bool:
            return (await conn.execute(returning)).first() is not None

        return await self._write(write, atomic=False)

    async def renew_session_lease(self, session_id: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s lease; False when ``owner`` no longer holds it."""
        check_ttl(ttl)
        lease = self._tables.leases
        stmt = (
            update(lease)
            .where(lease.c.session_id == session_id, lease.c.owner == owner)
            .values(expires_at=self._now() + ttl)
        )

        async def write(conn: AsyncConnection) -> bool:
            return (await conn.execute(stmt)).rowcount == 1

        return await self._write(write, atomic=False)

    async def release_session_lease(self, session_id: str, owner: str) -> bool:
        """Give up ``owner``'s lease."""
        lease = self._tables.leases
        stmt = delete(lease).where(lease.c.session_id == session_id, lease.c.owner == owner)

        async def write(conn: AsyncConnection) -> bool:
            return (await conn.execute(stmt)).rowcount == 1

        return await self._write(write, atomic=False)

    # --- user memories --------------------------------------------------------------------

    @staticmethod
    def _memory_record(row: Row[Any]) -> MemoryRecord:
        return MemoryRecord(
            memory_id=row.memory_id,
            user_id=row.user_id,
            memory=row.memory,
            topics=list(row.topics or []),
            created_at=float(row.created_at),
            updated_at=float(row.updated_at),
        )

    async def add_memory(
        self, user_id: str, memory: str, *, topics: Iterable[str] | None = None
    ) -> MemoryRecord:
        """Store a new memory about the user."""
        check_id("user_id", user_id)
        now = time.time()
        record = MemoryRecord(
            uuid.uuid4().hex, user_id, str(memory), normalise_topics(topics), now, now
        )
        m = self._tables.memories
        stmt = m.insert().values(
            memory_id=record.memory_id,
            user_id=user_id,
            memory=record.memory,
            topics=record.topics,
            created_at=now,
            updated_at=now,
        )

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(stmt)

        await self._write(write, atomic=False)
        return record

    async def update_memory(
        self, memory_id: str, memory: str, *, topics: Iterable[str] | None = None
    ) -> MemoryRecord | None:
        """Replace a memory's text (and topics unless None)."""
        m = self._tables.memories
        values: dict[str, Any] = {"memory": str(memory), "updated_at": time.time()}
        if topics is not None:
            values["topics"] = normalise_topics(topics)
        stmt = update(m).where(m.c.memory_id == memory_id).values(values).returning(*m.c)

        async def write(conn: AsyncConnection) -> MemoryRecord | None:
            row = (await conn.execute(stmt)).first()
            return None if row is None else self._memory_record(row)

        return await self._write(write, atomic=False)

    async def delete_memory(self, memory_id: str) -> bool:
        """Delete a memory."""
        m = self._tables.memories
        stmt = delete(m).where(m.c.memory_id == memory_id)

        async def write(conn: AsyncConnection) -> bool:
            return (await conn.execute(stmt)).rowcount == 1

        return await self._write(write, atomic=False)

    async def get_user_memories(
        self, user_id: str, *, limit: int | None = None
    ) -> list[MemoryRecord]:
        """Return the user's memories oldest first; with ``limit``, the newest ``limit``."""
        check_limit(limit)
        m = self._tables.memories
        query = select(m).where(m.c.user_id == user_id)
        if limit is None:
            query = query.order_by(m.c.seq)
        else:
            query = query.order_by(m.c.seq.desc()).limit(limit)

        async def read(conn: AsyncConnection) -> list[MemoryRecord]:
            return [self._memory_record(row) for row in await conn.execute(query)]

        records = await self._read(read)
        if limit is not None:
            records.reverse()
        return records

    async def clear_memories(self, user_id: str) -> int:
        """Delete all of the user's memories."""
        m = self._tables.memories
        stmt = delete(m).where(m.c.user_id == user_id)

        async def write(conn: AsyncConnection) -> int:
            return int((await conn.execute(stmt)).rowcount)

        return await self._write(write, atomic=False)

    # --- lifecycle ------------------------------------------------------------------------

    async def schema_version(self) -> int:
        """Return the schema version recorded in the database's metadata table."""
        meta = self._tables.meta
        query = select(meta.c.value).where(meta.c.key == VERSION_KEY)

        async def read(conn: AsyncConnection) -> int:
            found = await conn.scalar(query)
            if found is None:
                raise StoreError(f"{self._label}: no schema version recorded")
            return int(found)

        return await self._read(read)

    async def close(self) -> None:
        """Close this event loop's pooled connections (see `SessionStore.close`)."""
        await self._engines.dispose()
