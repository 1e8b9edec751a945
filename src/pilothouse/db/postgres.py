"""`PostgresDb`: the session store in PostgreSQL, on SQLAlchemy's async engine + psycopg 3.

JSON documents are JSONB columns. Connections are in autocommit mode; writes that need a
transaction open one. Before the pool hands out a connection it checks, without a round trip,
that the server has not closed it (a closed connection's socket turns readable: a terminated
backend, a restarted server), and replaces it if so. A statement that fails on a dropped
connection before its commit is retried once on a fresh one, as are serialisation failures
and deadlocks.

The path every run takes — `start_run`, `finish_run`, `get_last_runs` — talks to psycopg
directly on a pooled connection, with statements written once for the store's tables (and
prepared by psycopg on the server after a few uses). `start_run` is one statement whose parts
(take the lease, count the run on its session, insert it) each happen only when the one
before did, and so is `finish_run` (finalise the run, compare-and-set the state, release the
lease); the history is one query. That is three round trips per run.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import select
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Double, cast, event, func, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateSchema

from pilothouse.db.errors import DuplicateRunError, RunNotFoundError, StoreError
from pilothouse.db.records import RunStart
from pilothouse.db.sql.errors import is_disconnect, sqlstate, translate_error
from pilothouse.db.sql.store import SqlStore
from pilothouse.db.sql.tables import Tables, build_tables
from pilothouse.db.values import (
    check_id,
    check_limit,
    check_ttl,
    dump_json,
    load_json,
    normalise_statuses,
    run_row_json,
    store_json,
)

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Table

__all__ = ["PostgresDb", "psycopg_url"]

# serialization_failure, deadlock_detected: the transaction was rolled back, run it again.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
# unique_violation: in start_run, another writer inserting the same run id at the same time.
_UNIQUE_VIOLATION = "23505"
T = TypeVar("T")
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open
_NOW = "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)"


class _RunSql:
    """The statements of a run's path, for one set of tables (psycopg named parameters)."""

    def __init__(self, tables: Tables) -> None:
        quote = PGDialect_psycopg().identifier_preparer.format_table  # type: ignore[no-untyped-call]
        s, r, lease = quote(tables.sessions), quote(tables.runs), quote(tables.leases)
        # One statement: take the lease, count the run on its session (creating the session
        # or filling in a user or agent id it lacks) and insert it, each part only when the
        # part before it happened. The counter also numbers the run (see
        # SqlStore.insert_run); the upsert keeps the session row locked until the statement
        # commits, so the number is this run's. ``found``: the run is already stored, which
        # must not be for a new run and must be for a resumed one.
        self.start = (
            f"WITH found AS (SELECT 1 FROM {r} WHERE run_id = %(run_id)s "
            "AND session_id = %(session_id)s), "
            f"previous AS (SELECT owner FROM {lease} WHERE session_id = %(session_id)s), "
            f"lease AS (INSERT INTO {lease} AS l (session_id, owner, expires_at) "
            f"SELECT CAST(%(session_id)s AS VARCHAR), CAST(%(owner)s AS VARCHAR), {_NOW} + "
            "CAST(%(ttl)s AS DOUBLE PRECISION) "
            "WHERE EXISTS (SELECT 1 FROM found) = %(resume)s "
            "ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at WHERE l.owner = excluded.owner "
            f"OR l.expires_at <= {_NOW} RETURNING owner), "
            f"session AS (INSERT INTO {s} AS s (session_id, user_id, agent_id, session_state, "
            "state_version, run_count, created_at, updated_at) "
            "SELECT CAST(%(session_id)s AS VARCHAR), CAST(%(user_id)s AS VARCHAR), "
            "CAST(%(agent_id)s AS VARCHAR), CAST('{}' AS JSONB), 0, CAST(%(runs)s AS BIGINT), "
            "CAST(%(now)s AS DOUBLE PRECISION), CAST(%(now)s AS DOUBLE PRECISION) FROM lease "
            "ON CONFLICT (session_id) DO UPDATE SET "
            "run_count = s.run_count + excluded.run_count, updated_at = excluded.updated_at, "
            "user_id = coalesce(s.user_id, excluded.user_id), "
            "agent_id = coalesce(s.agent_id, excluded.agent_id) "
            "RETURNING run_count, session_state, state_version), "
            f"run AS (INSERT INTO {r} (run_id, session_id, run_no, user_id, agent_id, status, "
            "created_at, updated_at, data) "
            "SELECT CAST(%(run_id)s AS VARCHAR), CAST(%(session_id)s AS VARCHAR), "
            "session.run_count, CAST(%(user_id)s AS VARCHAR), CAST(%(agent_id)s AS VARCHAR), "
            "CAST(%(status)s AS VARCHAR), CAST(%(created_at)s AS DOUBLE PRECISION), "
            "CAST(%(now)s AS DOUBLE PRECISION), CAST(%(data)s AS JSONB) FROM session "
            "WHERE NOT %(resume)s RETURNING seq) "
            "SELECT EXISTS (SELECT 1 FROM found), EXISTS (SELECT 1 FROM lease), "
            "session.session_state, session.state_version, "
            "EXISTS (SELECT 1 FROM previous WHERE owner <> %(owner)s) "
            "FROM (SELECT 1) AS one LEFT JOIN session ON true"
        )
        self.finish = (
            f"WITH run AS (UPDATE {r} SET user_id = %(user_id)s, agent_id = %(agent_id)s, "
            "status = %(status)s, updated_at = %(now)s, data = CAST(%(data)s AS JSONB) "
            "WHERE run_id = %(run_id)s AND session_id = %(session_id)s RETURNING 1), "
            f"cas AS (UPDATE {s} SET session_state = CAST(%(state)s AS JSONB), "
            "state_version = state_version + 1, updated_at = %(now)s "
            "WHERE session_id = %(session_id)s AND state_version = %(expected)s "
            "AND %(write_state)s AND EXISTS (SELECT 1 FROM run) RETURNING 1), "
            f"rel AS (DELETE FROM {lease} WHERE session_id = %(session_id)s "
            "AND owner = %(owner)s AND EXISTS (SELECT 1 FROM run) "
            "AND (NOT %(write_state)s OR EXISTS (SELECT 1 FROM cas)) RETURNING 1) "
            "SELECT EXISTS (SELECT 1 FROM run), EXISTS (SELECT 1 FROM cas), "
            "EXISTS (SELECT 1 FROM rel)"
        )
        last_runs = (
            f"SELECT data FROM {r} WHERE session_id = %(session_id)s AND run_no > "
            f"(SELECT run_count FROM {s} WHERE session_id = %(session_id)s) - %(window)s"
        )
        order = " ORDER BY run_no DESC LIMIT %(limit)s"
        self.last_runs = last_runs + order
        self.last_runs_with_status = (
            last_runs + " AND status = ANY(CAST(%(statuses)s AS TEXT[]))" + order
        )
        self.run_count = f"SELECT run_count FROM {s} WHERE session_id = %(session_id)s"


class _Progress:
    """How far an attempt got: past the point where retrying could repeat a commit?"""

    __slots__ = ("committing",)

    def __init__(self) -> None:
        self.committing = False


def psycopg_url(db_url: str | URL) -> URL:
    """Return ``db_url`` with the psycopg 3 async driver: ``postgresql://`` and
    ``postgres://`` become ``postgresql+psycopg://``; other drivers are refused."""
    url = make_url(db_url)
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("postgresql", "postgres"):
        raise ValueError(f"PostgresDb needs a postgresql:// URL, got {url.drivername}://")
    if driver not in ("", "psycopg", "psycopg_async"):
        raise ValueError(
            f"PostgresDb connects with psycopg 3; use postgresql:// or postgresql+psycopg:// "
            f"instead of postgresql+{driver}://"
        )
    return url.set(drivername="postgresql+psycopg")


class PostgresDb(SqlStore):
    """A session store in the PostgreSQL database at ``db_url``; tables are created on first
    use, in ``schema`` when given (created if missing), else in the default search path.

    The pool keeps ``pool_size`` connections per event loop and opens up to ``max_overflow``
    more under load; a caller waits at most ``pool_timeout`` s for one. ``engine_kwargs`` go
    to SQLAlchemy's ``create_async_engine``.
    """

    def __init__(
        self,
        db_url: str | URL,
        *,
        schema: str | None = None,
        table_prefix: str = "pilothouse_",
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_timeout: float = 30.0,
        pool_recycle: float = 1800.0,
        connect_timeout: float = 10.0,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.url = psycopg_url(db_url)
        self.schema = schema
        self.table_prefix = table_prefix
        self._engine_kwargs: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
            "pool_recycle": pool_recycle,
            # Autocommit unless a write opens a transaction: single-statement reads and
            # writes then cost one round trip, not BEGIN + statement + COMMIT.
            "isolation_level": "AUTOCOMMIT",
            "json_serializer": store_json,
            "json_deserializer": load_json,
            "connect_args": {
                # libpq counts whole seconds, at least 2.
                "connect_timeout": max(2, round(connect_timeout)),
                "application_name": "pilothouse",
            },
            **(engine_kwargs or {}),
        }
        where = self.url.render_as_string(hide_password=True)
        tables = build_tables(table_prefix, schema)
        self._sql = _RunSql(tables)
        super().__init__(
            tables,
            label=f"PostgresDb({where!r}" + (f", schema={schema!r})" if schema else ")"),
            read_options={},
            write_options={"isolation_level": "READ COMMITTED"},
        )

    def _create_engine(self) -> AsyncEngine:
        engine = create_async_engine(self.url, **self._engine_kwargs)
        event.listen(engine.sync_engine, "checkout", _check_alive)
        return engine

    def _insert(self, table: Table) -> Insert:
        return insert(table)

    def _now(self) -> ColumnElement[float]:
        # The server's clock: lease holders on different machines agree on it.
        return cast(func.extract("epoch", func.clock_timestamp()), Double)

    def _retryable(self, error: BaseException, *, committing: bool) -> bool:
        if sqlstate(error) in _RETRY_SQLSTATES:
            return True
        # A connection that died before COMMIT was sent committed nothing; one that died
        # during COMMIT may have committed, and running the writes again could duplicate.
        return is_disconnect(error) and not committing

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # Concurrent CREATE ... IF NOT EXISTS can still collide in PostgreSQL's catalogs; an
        # advisory lock makes processes creating the same tables take turns.
        name = f"pilothouse:{self.schema or ''}:{self.table_prefix}".encode()
        key = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        if self.schema:
            await conn.execute(CreateSchema(self.schema, if_not_exists=True))

    # --- a run's path, on psycopg directly ---------------------------------------------------

    async def _on_psycopg(
        self,
        fn: Callable[[psycopg.AsyncConnection[Any], _Progress], Awaitable[T]],
        *,
        commits_at_once: bool = False,
        retry_unique: bool = False,
    ) -> T:
        """Run ``fn`` on a pooled connection's psycopg connection (autocommit mode: fn opens
        a transaction when it needs one), retried from the start on a fresh connection when
        it failed in a way that committed nothing. ``commits_at_once``: fn's first statement
        commits by itself, so a connection lost under it may have committed."""
        import psycopg

        await self._ensure_schema()
        state = await self._engines.get()
        engine = state.engine
        attempt = 0
        while True:
            progress = _Progress()
            progress.committing = commits_at_once
            try:
                async with engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    aconn: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
                    try:
                        return await fn(aconn, progress)
                    except BaseException:
                        if not (aconn.broken or aconn.closed) and (
                            aconn.pgconn.transaction_status != _IDLE
                        ):
                            try:
                                await aconn.rollback()
                            except Exception:
                                raw.invalidate()
                        if aconn.broken or aconn.closed:
                            raw.invalidate()  # the pool must not hand it out again
                        raise
            except psycopg.Error as error:
                broken = isinstance(error, psycopg.OperationalError) and not progress.committing
                retry = (
                    sqlstate(error) in _RETRY_SQLSTATES
                    or (retry_unique and sqlstate(error) == _UNIQUE_VIOLATION)
                    or (broken and sqlstate(error) is None)
                )
                if attempt < self.retries and retry:
                    attempt += 1
                    await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
                    continue
                raise StoreError(f"{self._label}: {_first_line(error)}") from error
            except Exception as error:
                if isinstance(error, StoreError | RunNotFoundError | DuplicateRunError):
                    raise
                from sqlalchemy import exc as sa_exc

                if not isinstance(error, sa_exc.SQLAlchemyError | OSError):
                    raise
                if attempt < self.retries and self._retryable(error, committing=False):
                    attempt += 1
                    await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
                    continue
                raise translate_error(error, self._label) from error

    async def start_run(
        self,
        run: dict[str, Any],
        *,
        lease_owner: str,
        lease_ttl: float,
        resume: bool = False,
    ) -> RunStart | None:
        """Begin a run in one statement (see `SessionStore.start_run`)."""
        import time

        row, data = run_row_json(run)
        check_id("lease_owner", lease_owner)
        check_ttl(lease_ttl)
        sql, label = self._sql, self._label
        params: dict[str, Any] = {
            "session_id": row.session_id,
            "owner": lease_owner,
            "ttl": float(lease_ttl),
            "user_id": row.user_id,
            "agent_id": row.agent_id,
            "runs": 0 if resume else 1,
            "resume": resume,
            "run_id": row.run_id,
            "status": row.status,
            "created_at": row.created_at,
            "data": data,
        }

        async def fn(conn: psycopg.AsyncConnection[Any], progress: _Progress) -> RunStart | None:
            params["now"] = time.time()
            row_found = await (await conn.execute(sql.start, params)).fetchone()
            assert row_found is not None  # the SELECT always returns its one row
            found, leased, state, version, took_over = row_found
            if found and not resume:
                raise DuplicateRunError(f"{label}: run {row.run_id!r} is already stored")
            if resume and not found:
                raise RunNotFoundError(
                    f"{label}: no run {row.run_id!r} in session {row.session_id!r} to resume"
                )
            if not leased:
                return None
            return RunStart(dict(state or {}), int(version), bool(took_over))

        # A unique violation means another writer inserted the same run id at the same time:
        # the retry, which sees it, reports the duplicate.
        return await self._on_psycopg(fn, commits_at_once=True, retry_unique=True)

    async def finish_run(
        self,
        run: dict[str, Any],
        *,
        lease_owner: str | None = None,
        state: dict[str, Any] | None = None,
        expected_version: int = 0,
    ) -> bool:
        """End a run in one statement (see `SessionStore.finish_run`)."""
        import time

        row, data = run_row_json(run)
        if state is not None and not isinstance(state, dict):
            raise TypeError(f"session state must be a dict, got {type(state).__name__}")
        params: dict[str, Any] = {
            "session_id": row.session_id,
            "run_id": row.run_id,
            "user_id": row.user_id,
            "agent_id": row.agent_id,
            "status": row.status,
            "data": data,
            "state": None if state is None else dump_json(state, what="session state"),
            "write_state": state is not None,
            "expected": int(expected_version),
            "owner": lease_owner,
        }
        sql, label = self._sql, self._label

        async def fn(conn: psycopg.AsyncConnection[Any], progress: _Progress) -> bool:
            params["now"] = time.time()
            found = await (await conn.execute(sql.finish, params)).fetchone()
            assert found is not None  # the SELECT always returns its one row
            updated, swapped, _released = found
            if not updated:
                raise RunNotFoundError(
                    f"{label}: no run {row.run_id!r} in session {row.session_id!r} to update"
                )
            return bool(swapped) or state is None

        return await self._on_psycopg(fn, commits_at_once=True)

    async def get_last_runs(
        self,
        session_id: str,
        *,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the session's last ``limit`` runs, oldest first: one range read of the
        (session_id, run_no) index, as `SqlStore.get_last_runs` describes."""
        check_limit(limit)
        wanted = normalise_statuses(statuses)
        if limit == 0 or wanted == frozenset():
            return []
        sql = self._sql
        query = sql.last_runs if wanted is None else sql.last_runs_with_status
        params: dict[str, Any] = {
            "session_id": session_id,
            "limit": limit,
            "statuses": sorted(wanted or ()),
        }

        async def fn(conn: psycopg.AsyncConnection[Any], progress: _Progress) -> list[Any]:
            size = limit if wanted is None else max(4 * limit, 16)
            total: int | None = None
            while True:
                params["window"] = size
                cursor = await conn.execute(query, params)
                found = [data for (data,) in await cursor.fetchall()]
                if len(found) == limit or wanted is None:
                    return found
                if total is None:
                    counted = await (await conn.execute(sql.run_count, params)).fetchone()
                    total = int(counted[0]) if counted else 0
                if size >= total:
                    return found
                size *= 4

        found = await self._on_psycopg(fn)
        return [dict(data) for data in reversed(found)]


def _check_alive(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pool checkout hook: refuse a connection the server has closed.

    An idle connection receives nothing unless the server ends it (a terminated backend
    sends its error, a stopping server closes the socket), so a readable socket means a dead
    connection. The pool then opens a new one. Costs a poll(2), not a round trip.
    """
    conn = record.driver_connection
    if conn is None or conn.closed or conn.broken:
        raise sa_exc.DisconnectionError("connection closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        raise sa_exc.DisconnectionError("the server closed the connection")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
