"""`PostgresDb`: the session store in PostgreSQL, on SQLAlchemy's async engine + psycopg 3.

JSON documents are JSONB columns. The connection pool checks a connection before handing it
out (``pool_pre_ping``), so connections broken by a server restart or a terminated backend
are replaced transparently; a statement that fails on a dropped connection before its commit
is retried once on a fresh one, as are serialisation failures and deadlocks.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Double, cast, func, text
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateSchema

from pilothouse.db.sql.errors import is_disconnect, sqlstate
from pilothouse.db.sql.store import SqlStore
from pilothouse.db.sql.tables import build_tables

if TYPE_CHECKING:
    from sqlalchemy import Table

__all__ = ["PostgresDb", "psycopg_url"]

_dumps = partial(json.dumps, ensure_ascii=False, allow_nan=False)
# serialization_failure, deadlock_detected: the transaction was rolled back, run it again.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


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
            "pool_pre_ping": True,
            "json_serializer": _dumps,
            "connect_args": {
                # libpq counts whole seconds, at least 2.
                "connect_timeout": max(2, round(connect_timeout)),
                "application_name": "pilothouse",
            },
            **(engine_kwargs or {}),
        }
        where = self.url.render_as_string(hide_password=True)
        super().__init__(
            build_tables(table_prefix, schema),
            label=f"PostgresDb({where!r}" + (f", schema={schema!r})" if schema else ")"),
            # Reads are single statements: autocommit saves the BEGIN and ROLLBACK round trips.
            read_options={"isolation_level": "AUTOCOMMIT"},
            write_options={},
        )

    def _create_engine(self) -> AsyncEngine:
        return create_async_engine(self.url, **self._engine_kwargs)

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
