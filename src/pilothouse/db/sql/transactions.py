"""`SqlTransactions`: how the SQL stores talk to their database.

One engine per event loop, reads as autocommit statements, writes as short transactions
retried from the start when the dialect says a failure is transient, driver errors turned
into StoreError, and the tables created (and their schema version checked) on first use.
Every call goes through the async driver: nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Connection, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

from pilothouse.db.base import SCHEMA_VERSION, SessionStore
from pilothouse.db.errors import StoreError
from pilothouse.db.sql.errors import translate_error
from pilothouse.db.sql.loops import LoopEngines, LoopState
from pilothouse.db.sql.tables import Tables

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

__all__ = ["SqlTransactions"]

logger = logging.getLogger("pilothouse")

T = TypeVar("T")
# read: autocommit reads; write: one transaction; autocommit: statements commit one by one.
_Mode = Literal["read", "write", "autocommit"]

# The metadata row that records the schema version.
VERSION_KEY = "schema_version"


class SqlTransactions(SessionStore):
    """Transactions, retries and schema creation for a SQL store; dialects supply the engine
    and their few differences (upsert syntax, clock, write serialisation, which errors to
    retry)."""

    #: Extra attempts after a retryable failure (lock contention, dropped connection).
    retries = 2
    #: Dialects whose every write must be a transaction (SQLite) set this.
    _atomic_only = False

    def __init__(
        self,
        tables: Tables,
        *,
        label: str,
        read_options: dict[str, Any],
        write_options: dict[str, Any],
    ) -> None:
        self._tables = tables
        self._label = label
        self._ready = False
        self._engines = LoopEngines(
            self._create_engine, read_options=read_options, write_options=write_options
        )

    def __repr__(self) -> str:
        return self._label

    # --- what a dialect supplies ----------------------------------------------------------

    @abstractmethod
    def _create_engine(self) -> AsyncEngine:
        """A new engine with its pool and connection setup."""

    @abstractmethod
    def _insert(self, table: Table) -> SqliteInsert | PgInsert:
        """The dialect's INSERT, which has ON CONFLICT."""

    @abstractmethod
    def _now(self) -> ColumnElement[float]:
        """The current time in Unix seconds, as the database should see it (leases)."""

    @abstractmethod
    def _retryable(self, error: BaseException, *, committing: bool) -> bool:
        """Whether an attempt that failed with ``error`` may be run again from the start."""

    def _write_guard(self, state: LoopState) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held around every write transaction; none by default."""
        return contextlib.nullcontext()

    async def _before_schema(self) -> None:
        """Runs once before the tables are created (e.g. to make a directory)."""

    async def _prepare_schema(self, conn: AsyncConnection) -> None:
        """Runs in the schema transaction before CREATE TABLE (e.g. locks, CREATE SCHEMA)."""

    # --- running transactions -------------------------------------------------------------

    async def _read(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``fn`` on a read connection (single statements: each sees a consistent
        snapshot)."""
        await self._ensure_schema()
        return await self._attempt(fn, "read")

    async def _write(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, atomic: bool = True
    ) -> T:
        """Run ``fn`` as one write transaction, retried from the start on retryable errors.

        ``atomic=False`` declares that each of fn's statements is correct on its own, which
        lets a dialect commit them one by one (PostgreSQL: autocommit, saving the BEGIN and
        COMMIT round trips). Such writes are never retried after a dropped connection, since
        the statement may have committed.
        """
        await self._ensure_schema()
        return await self._attempt(fn, "write" if atomic or self._atomic_only else "autocommit")

    async def _attempt(self, fn: Callable[[AsyncConnection], Awaitable[T]], mode: _Mode) -> T:
        state = await self._engines.get()
        attempt = 0
        while True:
            committing = mode == "autocommit"
            try:
                if mode == "read":
                    async with state.read.connect() as conn:
                        return await fn(conn)
                if mode == "autocommit":
                    async with self._write_guard(state), state.read.connect() as conn:
                        return await fn(conn)
                async with self._write_guard(state), state.write.connect() as conn:
                    await conn.begin()
                    result = await fn(conn)
                    committing = True
                    await conn.commit()
                    return result
            except (sa_exc.SQLAlchemyError, OSError) as error:
                if attempt < self.retries and self._retryable(error, committing=committing):
                    attempt += 1
                    logger.debug("%s: retrying after %s", self._label, error)
                    await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
                    continue
                raise translate_error(error, self._label) from error

    def _schema_ready(self) -> bool:
        # A method, not the bare attribute: the flag changes across awaits, and a type
        # checker would otherwise assume it cannot.
        return self._ready

    async def _ensure_schema(self) -> None:
        if self._schema_ready():
            return
        state = await self._engines.get()
        async with state.init_lock:
            if self._schema_ready():
                return
            # Look before creating: DDL takes table locks even when every table exists, and
            # those would collide with other processes (or event loops) already writing.
            try:
                version = await self._attempt(self._read_version, "read")
            except StoreError:
                version = None  # no database or no tables yet: creating them will tell
            if version is None or self._check_version(version) < SCHEMA_VERSION:
                await self._before_schema()
                await self._attempt(self._create_schema, "write")
            self._ready = True

    async def _read_version(self, conn: AsyncConnection) -> int | None:
        meta = self._tables.meta
        found = await conn.scalar(select(meta.c.value).where(meta.c.key == VERSION_KEY))
        return None if found is None else int(found)

    def _check_version(self, version: int) -> int:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._label}: the database has schema version {version}, newer than this "
                f"release understands ({SCHEMA_VERSION}); upgrade Pilothouse"
            )
        return version

    async def _create_schema(self, conn: AsyncConnection) -> None:
        await self._prepare_schema(conn)
        meta = self._tables.meta

        def has_meta(sync_conn: Connection) -> bool:
            return inspect(sync_conn).has_table(meta.name, schema=meta.schema)

        # Whoever held the schema lock before us may have just created everything.
        if await conn.run_sync(has_meta) and await self._read_version(conn) == SCHEMA_VERSION:
            return
        # IF NOT EXISTS: some tables may exist without the version row (made by hand, or by a
        # release that crashed half-way on a database without transactional DDL).
        for table in self._tables.metadata.sorted_tables:
            await conn.execute(CreateTable(table, if_not_exists=True))
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                await conn.execute(CreateIndex(index, if_not_exists=True))
        found = await conn.scalar(select(meta.c.value).where(meta.c.key == VERSION_KEY))
        if found is None:
            await conn.execute(meta.insert().values(key=VERSION_KEY, value=str(SCHEMA_VERSION)))
            logger.debug("%s: created schema version %d", self._label, SCHEMA_VERSION)
            return
        version = self._check_version(int(found))
        if version < SCHEMA_VERSION:
            # Upgrades between versions go here, one step at a time, in this transaction.
            raise StoreError(f"{self._label}: no upgrade from schema version {version}")
