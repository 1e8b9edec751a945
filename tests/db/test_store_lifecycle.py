"""Conformance: opening, closing, reopening and the recorded schema version."""

from __future__ import annotations

import subprocess
import sys

from storekit import StoreFactory, make_run

from pilothouse.db import SCHEMA_VERSION, SessionStore


async def test_schema_version_is_recorded(store: SessionStore) -> None:
    assert await store.schema_version() == SCHEMA_VERSION == 1


async def test_async_with_closes_and_a_closed_store_reopens(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.insert_run(make_run("s-1", "r-1"))
    # close() released the connections; using the store again opens new ones.
    assert (await store.get_run("r-1") or {}).get("run_id") == "r-1"
    await store.close()


async def test_a_second_store_on_the_same_database_sees_everything(
    store_factory: StoreFactory,
) -> None:
    first = store_factory()
    run = make_run("s-1", "r-1", content="kept")
    await first.insert_run(run)
    await first.set_session_state("s-1", {"k": 1}, expected_version=0)
    memory = await first.add_memory("u-1", "remember me")
    await first.close()

    second = store_factory()
    try:
        assert await second.get_run("r-1") == run
        assert await second.get_session_state("s-1") == ({"k": 1}, 1)
        assert await second.get_user_memories("u-1") == [memory]
        session = await second.get_session("s-1")
        assert session is not None and session.run_count == 1
        assert await second.schema_version() == SCHEMA_VERSION
    finally:
        await second.close()


def test_importing_pilothouse_db_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, pilothouse.db as db\n"
        "assert 'sqlalchemy' not in sys.modules, 'eager'\n"
        "db.InMemoryDb(); db.SessionStore; db.StoreError\n"
        "assert 'sqlalchemy' not in sys.modules, 'eager after use'\n"
        "db.SqliteDb\n"
        "assert 'sqlalchemy' in sys.modules, 'lazy attribute did not load'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
