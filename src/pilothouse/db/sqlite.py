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

Each statement costs a hop to aiosqlite's thread and back; connections skip the pool's
"rollback on return" (nothing is ever left open: writes end in COMMIT or ROLLBACK, reads open
no transaction), which would cost one more per call.

A database file deleted or moved while the store has it open is still written through the
connections that have it open (SQLite's behaviour); the store notices when it next opens a
connection, e.g. after `close()`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Double, event, literal
from sqlalchemy.dialects.sqlite import Insert, insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pilothouse.db.sql.errors import is_sqlite_busy
from pilothouse.db.sql.loops import LoopState
from pilothouse.db.sql.store import SqlStore
from pilothouse.db.sql.tables import build_tables

if TYPE_CHECKING:
    import contextlib

    from sqlalchemy import Table

__all__ = ["SqliteDb"]

_dumps = partial(json.dumps, ensure_ascii=False, allow_nan=False)


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
        super().__init__(
            build_tables(table_prefix),
            label=f"SqliteDb({self.db_file!r})",
            read_options={},
            write_options={},
        )

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module opens the transaction itself, before the first INSERT, UPDATE or
        # DELETE, as BEGIN IMMEDIATE: no extra statement (and thread hop) per write.
        dbapi_connection.isolation_level = "IMMEDIATE"
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL may itself wait for another process.
            cursor.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
        finally:
            cursor.close()

    def _create_engine(self) -> AsyncEngine:
        kwargs: dict[str, Any] = {
            "pool_size": self._pool_size,
            "max_overflow": self._pool_size,
            "json_serializer": _dumps,
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

    async def _before_schema(self) -> None:
        # SQLite creates the file but not its directory. In a thread: the loop must not block.
        await asyncio.to_thread(os.makedirs, os.path.dirname(self.db_file), exist_ok=True)
