"""Fixtures of the session store conformance suite.

``store`` is parametrised over every store: tests written once against the contract run on
InMemoryDb, SqliteDb (a temporary file) and PostgresDb (127.0.0.1:5432, in a schema made
for this test session and dropped afterwards, a fresh table prefix per test). Without a
reachable PostgreSQL the PostgreSQL cases skip with the reason, and fail under CI=true.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from storekit import PG_URL, StoreFactory, new_id, unavailable

from pilothouse.db import InMemoryDb, PostgresDb, SessionStore, SqliteDb

STORES = ["memory", "sqlite", "postgres"]
SQL_STORES = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema for this test session, dropped with everything in it at the end."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a test dependency
        unavailable(f"psycopg is not installed: {exc}")
    schema = new_id("pilothouse_test_")
    try:
        with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_URL} is not reachable: {str(exc).strip()}")
    yield schema
    with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _factory(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A function that opens stores on one fresh database of the given kind."""
    if kind == "memory":
        shared = InMemoryDb()
        return lambda: shared
    if kind == "sqlite":
        db_file = tmp_path / "db" / "pilothouse.db"
        return lambda: SqliteDb(db_file)
    schema = request.getfixturevalue("pg_schema")
    prefix = new_id("t") + "_"
    return lambda: PostgresDb(PG_URL, schema=schema, table_prefix=prefix)


@pytest.fixture(params=STORES)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Opens stores (of the parametrised kind) that all see the same fresh database."""
    return _factory(request.param, request, tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[SessionStore]:
    """A store on a fresh database, closed after the test."""
    opened = store_factory()
    yield opened
    await opened.close()


@pytest.fixture(params=SQL_STORES)
async def sql_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SqliteDb | PostgresDb]:
    """A SQL store (SQLite, PostgreSQL) on a fresh database, closed after the test."""
    opened = _factory(request.param, request, tmp_path)()
    assert isinstance(opened, SqliteDb | PostgresDb)
    yield opened
    await opened.close()
