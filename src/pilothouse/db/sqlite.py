"""`SqliteDb`: the session store in one SQLite file, on SQLAlchemy's async engine + aiosqlite.

Durability and concurrency settings, set on every connection:

- ``journal_mode=WAL``: readers never wait for the writer and the writer never waits for
  readers; only writers take turns.
- ``synchronous=FULL`` (default) makes every commit durable when it returns, even across a
  power cut, at the cost of one fsync of the write-ahead log per commit. ``NORMAL`` skips
  that fsync: still never corrupt, but the last commits before a power cut (not a process
  crash) may be lost. Choose with ``synchronous=``.
- ``busy_timeout``: a writer waits this long for another process's write lock before SQLite
  gives up; the store then retries a few times and finally raises StoreError.
- Write transactions start with ``BEGIN IMMEDIATE`` (the sqlite3 module's
  ``isolation_level="IMMEDIATE"``, issued before a transaction's first INSERT, UPDATE or
  DELETE), so that they take the write lock up front, where the busy timeout applies, instead
  of failing on a lock upgrade half-way through. Plain SELECTs run in autocommit mode, each
  on its own consistent snapshot. Within one process, writers queue on an asyncio lock first,
  so they never poll SQLite's busy handler against each other.

The path every run takes — `start_run`, `finish_run`, `get_last_runs` — runs on the store's
own SQLite threads (`SqliteThread`: one for writes, one for reads) with the sqlite3 module:
each call is one job, one crossing between the event loop and a thread, its statements
written once for the store's tables and prepared once per connection. Through SQLAlchemy's
async engine each statement crosses several times. With ``synchronous=FULL`` a run then costs
two write transactions, each one fsync of the write-ahead log, and one read. Everything else
goes through SQLAlchemy's async engine on aiosqlite, whose connections skip the pool's
"rollback on return" (nothing is ever left open: writes end in COMMIT or ROLLBACK, reads open
no transaction), which would cost one more crossing per call.

Within one process, the store's writes queue on its write thread or, for the other methods,
on an asyncio lock of the event loop; the two queues (and other processes) meet at SQLite's
write lock, where the busy timeout applies.

A database file deleted or moved while the store has it open is still written through the
connections that have it open (SQLite's behaviour); the store notices when it next opens a
connection, e.g. after `close()`.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Double, event, literal
from sqlalchemy.dialects.sqlite import Insert, insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pilothouse.db.errors import DuplicateRunError, RunNotFoundError
from pilothouse.db.records import RunStart
from pilothouse.db.sql.errors import is_sqlite_busy, translate_error
from pilothouse.db.sql.loops import LoopState
from pilothouse.db.sql.sqlite_thread import SqliteThread
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
    import contextlib

    from sqlalchemy import Table

__all__ = ["SqliteDb"]

T = TypeVar("T")


class _RunSql:
    """The statements of a run's path, for one set of tables (named parameters)."""

    def __init__(self, tables: Tables) -> None:
        s, r, lease = (
            _name(tables.sessions.name),
            _name(tables.runs.name),
            _name(tables.leases.name),
        )
        self.lease_owner = f"SELECT owner FROM {lease} WHERE session_id = :session_id"
        self.take_lease = (
            f"INSERT INTO {lease} (session_id, owner, expires_at) "
            "VALUES (:session_id, :owner, :now + :ttl) "
            "ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at "
            f"WHERE {lease}.owner = excluded.owner OR {lease}.expires_at <= :now "
            "RETURNING owner"
        )
        # Counting the run on its session row also numbers it (see SqlStore.insert_run).
        self.count_run = (
            f"UPDATE {s} SET run_count = run_count + :runs, updated_at = :now, "
            "user_id = coalesce(user_id, :user_id), agent_id = coalesce(agent_id, :agent_id) "
            "WHERE session_id = :session_id RETURNING run_count, session_state, state_version"
        )
        self.new_session = (
            f"INSERT INTO {s} (session_id, user_id, agent_id, session_state, state_version, "
            "run_count, created_at, updated_at) "
            "VALUES (:session_id, :user_id, :agent_id, '{}', 0, :runs, :now, :now) "
            "ON CONFLICT (session_id) DO NOTHING "
            "RETURNING run_count, session_state, state_version"
        )
        self.run_exists = f"SELECT 1 FROM {r} WHERE run_id = :run_id AND session_id = :session_id"
        self.insert_run = (
            f"INSERT INTO {r} (run_id, session_id, run_no, user_id, agent_id, status, "
            "created_at, updated_at, data) VALUES (:run_id, :session_id, :run_no, :user_id, "
            ":agent_id, :status, :created_at, :now, :data) "
            "ON CONFLICT (run_id) DO NOTHING RETURNING seq"
        )
        self.update_run = (
            f"UPDATE {r} SET user_id = :user_id, agent_id = :agent_id, status = :status, "
            "updated_at = :now, data = :data WHERE run_id = :run_id AND session_id = :session_id"
        )
        self.set_state = (
            f"UPDATE {s} SET session_state = :state, state_version = state_version + 1, "
            "updated_at = :now WHERE session_id = :session_id AND state_version = :expected"
        )
        self.release_lease = (
            f"DELETE FROM {lease} WHERE session_id = :session_id AND owner = :owner"
        )
        self.run_count = f"SELECT run_count FROM {s} WHERE session_id = :session_id"
        self._last_runs = (
            f"SELECT data FROM {r} WHERE session_id = :session_id AND run_no > "
            f"(SELECT run_count FROM {s} WHERE session_id = :session_id) - :window"
        )
        self._last_runs_cache: dict[int, str] = {}

    def last_runs(self, statuses: int) -> str:
        """The history query with a filter on ``statuses`` statuses (0: none)."""
        query = self._last_runs_cache.get(statuses)
        if query is None:
            where = ""
            if statuses:
                marks = ", ".join(f":status{i}" for i in range(statuses))
                where = f" AND status IN ({marks})"
            query = f"{self._last_runs}{where} ORDER BY run_no DESC LIMIT :limit"
            if statuses <= 8:  # the statuses a run can have; more are one-offs
                self._last_runs_cache[statuses] = query
        return query


def _name(table: str) -> str:
    # Table names are checked to be letters, digits and _ (build_tables); quoting keeps
    # SQL keywords usable as names.
    return f'"{table}"'


def _begin(conn: sqlite3.Connection) -> None:
    # IMMEDIATE: take the write lock now, where the busy timeout applies.
    conn.execute("BEGIN IMMEDIATE")


def _end(conn: sqlite3.Connection, commit: bool) -> None:
    if not conn.in_transaction:
        return
    if not commit:
        conn.execute("ROLLBACK")
        return
    try:
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (busy, disk full) leaves the transaction open: end it, so that
        # the connection's next job starts clean.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SqliteDb(SqlStore):
    """A session store in the SQLite file ``db_file``, created with its tables on first use.

    Several processes may use the same file at once. ``table_prefix`` names the tables
    (``{prefix}sessions``, ``{prefix}runs``, ...). ``engine_kwargs`` go to SQLAlchemy's
    ``create_async_engine``.
    """

    retries = 3
    # Autocommit would let each statement take the write lock by itself; one transaction
    # per write takes it once.
    _atomic_only = True

    def __init__(
        self,
        db_file: str | os.PathLike[str] = "pilothouse.db",
        *,
        table_prefix: str = "pilothouse_",
        busy_timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        pool_size: int = 5,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        path = os.fspath(db_file)
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError(
                f"SqliteDb needs a file path, got {path!r}; use InMemoryDb for a store in memory"
            )
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, got {busy_timeout}")
        self.db_file = os.path.abspath(path)
        self.table_prefix = table_prefix
        self._busy_ms = int(busy_timeout * 1000)
        self._synchronous = synchronous
        self._pool_size = pool_size
        self._engine_kwargs = dict(engine_kwargs or {})
        tables = build_tables(table_prefix)
        super().__init__(
            tables,
            label=f"SqliteDb({self.db_file!r})",
            read_options={},
            write_options={},
        )
        self._sql = _RunSql(tables)
        self._writer = SqliteThread(self.db_file, name="pilothouse-sqlite-w", setup=self._setup)
        self._reader = SqliteThread(self.db_file, name="pilothouse-sqlite-r", setup=self._setup)

    def _setup(self, dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL may itself wait for another process.
            cursor.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
        finally:
            cursor.close()

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module opens the transaction itself, before the first INSERT, UPDATE or
        # DELETE, as BEGIN IMMEDIATE: no extra statement (and thread hop) per write.
        dbapi_connection.isolation_level = "IMMEDIATE"
        self._setup(dbapi_connection)

    def _create_engine(self) -> AsyncEngine:
        kwargs: dict[str, Any] = {
            "pool_size": self._pool_size,
            "max_overflow": self._pool_size,
            "json_serializer": store_json,
            "json_deserializer": load_json,
            "pool_reset_on_return": None,
        }
        kwargs.update(self._engine_kwargs)
        engine = create_async_engine(
            URL.create("sqlite+aiosqlite", database=self.db_file), **kwargs
        )
        event.listen(engine.sync_engine, "connect", self._on_connect)
        return engine

    def _insert(self, table: Table) -> Insert:
        return insert(table)

    def _now(self) -> ColumnElement[float]:
        # Every process using the file runs on this machine, so its clock is the file's.
        return literal(time.time(), Double())

    def _retryable(self, error: BaseException, *, committing: bool) -> bool:
        # A busy error leaves nothing committed, whatever the stage, so a retry is safe.
        return is_sqlite_busy(error)

    def _write_guard(self, state: LoopState) -> contextlib.AbstractAsyncContextManager[Any]:
        return state.write_lock

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        # CREATE TABLE is not DML, so the sqlite3 module would not open the transaction:
        # open it here, so that the tables and the version row appear together or not at all.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")

    # --- a run's path, on the store's own SQLite threads ------------------------------------

    async def _on_thread(self, thread: SqliteThread, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` on ``thread``, retried from the start while another writer holds the
        lock past the busy timeout (the job rolled back: nothing was committed)."""
        await self._ensure_schema()
        attempt = 0
        while True:
            try:
                return await thread.run(job)
            except sqlite3.Error as error:
                if attempt < self.retries and is_sqlite_busy(error):
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
        """Begin a run in one write transaction (see `SessionStore.start_run`)."""
        row, data = run_row_json(run)
        check_id("lease_owner", lease_owner)
        check_ttl(lease_ttl)
        sql, label = self._sql, self._label
        params: dict[str, Any] = {
            "session_id": row.session_id,
            "owner": lease_owner,
            "ttl": lease_ttl,
            "user_id": row.user_id,
            "agent_id": row.agent_id,
            "runs": 0 if resume else 1,
        }

        def job(conn: sqlite3.Connection) -> RunStart | None:
            params["now"] = time.time()
            _begin(conn)
            ok = False
            try:
                previous = conn.execute(sql.lease_owner, params).fetchone()
                if conn.execute(sql.take_lease, params).fetchone() is None:
                    return None
                session = conn.execute(sql.count_run, params).fetchone()
                if session is None:
                    # Under the write lock nobody else can create it between the two.
                    session = conn.execute(sql.new_session, params).fetchone()
                    assert session is not None
                run_no, state, version = session
                if resume:
                    found = conn.execute(
                        sql.run_exists, {"run_id": row.run_id, "session_id": row.session_id}
                    ).fetchone()
                    if found is None:
                        raise RunNotFoundError(
                            f"{label}: no run {row.run_id!r} in session {row.session_id!r} "
                            "to resume"
                        )
                else:
                    inserted = conn.execute(
                        sql.insert_run,
                        {
                            "run_id": row.run_id,
                            "session_id": row.session_id,
                            "run_no": run_no,
                            "user_id": row.user_id,
                            "agent_id": row.agent_id,
                            "status": row.status,
                            "created_at": row.created_at,
                            "now": params["now"],
                            "data": data,
                        },
                    ).fetchone()
                    if inserted is None:
                        raise DuplicateRunError(f"{label}: run {row.run_id!r} is already stored")
                ok = True
                took_over = previous is not None and previous[0] != lease_owner
                return RunStart(load_json(state) if state else {}, int(version), took_over)
            finally:
                _end(conn, ok)

        return await self._on_thread(self._writer, job)

    async def finish_run(
        self,
        run: dict[str, Any],
        *,
        lease_owner: str | None = None,
        state: dict[str, Any] | None = None,
        expected_version: int = 0,
    ) -> bool:
        """End a run in one write transaction (see `SessionStore.finish_run`)."""
        row, data = run_row_json(run)
        if state is not None and not isinstance(state, dict):
            raise TypeError(f"session state must be a dict, got {type(state).__name__}")
        state_text = None if state is None else dump_json(state, what="session state")
        sql, label = self._sql, self._label

        def job(conn: sqlite3.Connection) -> bool:
            now = time.time()
            _begin(conn)
            ok = False
            try:
                updated = conn.execute(
                    sql.update_run,
                    {
                        "run_id": row.run_id,
                        "session_id": row.session_id,
                        "user_id": row.user_id,
                        "agent_id": row.agent_id,
                        "status": row.status,
                        "now": now,
                        "data": data,
                    },
                )
                if updated.rowcount == 0:
                    raise RunNotFoundError(
                        f"{label}: no run {row.run_id!r} in session {row.session_id!r} to update"
                    )
                ok = True
                if state_text is not None:
                    swapped = conn.execute(
                        sql.set_state,
                        {
                            "session_id": row.session_id,
                            "state": state_text,
                            "expected": expected_version,
                            "now": now,
                        },
                    )
                    if swapped.rowcount == 0:
                        return False  # the run row is committed; the lease stays held
                if lease_owner is not None:
                    conn.execute(
                        sql.release_lease, {"session_id": row.session_id, "owner": lease_owner}
                    )
                return True
            finally:
                _end(conn, ok)

        return await self._on_thread(self._writer, job)

    async def get_last_runs(
        self,
        session_id: str,
        *,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the session's last ``limit`` runs, oldest first: one range read of the
        (session_id, run_no) index, as `SqlStore.get_last_runs` describes, on the store's
        read thread."""
        check_limit(limit)
        wanted = normalise_statuses(statuses)
        if limit == 0 or wanted == frozenset():
            return []
        ordered = sorted(wanted) if wanted is not None else []
        sql = self._sql
        query = sql.last_runs(len(ordered))
        params: dict[str, Any] = {"session_id": session_id, "limit": limit}
        params.update({f"status{i}": status for i, status in enumerate(ordered)})

        def job(conn: sqlite3.Connection) -> list[str]:
            size = limit if wanted is None else max(4 * limit, 16)
            total: int | None = None
            while True:
                params["window"] = size
                found = [data for (data,) in conn.execute(query, params)]
                if len(found) == limit or wanted is None:
                    return found
                if total is None:
                    counted = conn.execute(sql.run_count, params).fetchone()
                    total = int(counted[0]) if counted else 0
                if size >= total:
                    return found
                size *= 4

        texts = await self._on_thread(self._reader, job)
        return [load_json(text) for text in reversed(texts)]

    async def close(self) -> None:
        """Close this event loop's pooled connections and the store's SQLite threads'
        connections (see `SessionStore.close`)."""
        try:
            await self._writer.close()
            await self._reader.close()
        finally:
            await super().close()

    async def _before_schema(self) -> None:
        # SQLite creates the file but not its directory. In a thread: the loop must not block.
        await asyncio.to_thread(os.makedirs, os.path.dirname(self.db_file), exist_ok=True)
