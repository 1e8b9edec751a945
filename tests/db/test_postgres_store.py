"""PostgresDb beyond the shared contract: URLs, schemas, indexes, and a server that goes away."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from storekit import PG_URL, free_port, make_run, new_id
from tcpproxy import TcpProxy

from pilothouse.db import PostgresDb, StoreError
from pilothouse.db.postgres import psycopg_url


def _sync_query(sql: str, *params: object) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
        cursor = conn.execute(sql, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
async def pg(pg_schema: str) -> AsyncIterator[PostgresDb]:
    store = PostgresDb(PG_URL, schema=pg_schema, table_prefix=new_id("t") + "_")
    yield store
    await store.close()


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:secret@db.example:5433/app",
        "postgres://u:secret@db.example:5433/app",
        "postgresql+psycopg://u:secret@db.example:5433/app",
    ],
)
def test_urls_are_rewritten_to_psycopg(given: str) -> None:
    url = psycopg_url(given)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "u",
        "secret",
        "db.example",
        5433,
        "app",
    )


def test_other_drivers_and_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="psycopg"):
        psycopg_url("postgresql+asyncpg://u@h/db")
    with pytest.raises(ValueError, match="postgresql://"):
        psycopg_url("mysql://u@h/db")


def test_the_password_never_shows_in_the_store_label() -> None:
    store = PostgresDb("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in repr(store)
    assert make_url(str(store.url).replace("***", "x")).host == "127.0.0.1"


async def test_tables_live_in_the_requested_schema(pg_schema: str) -> None:
    schema = new_id("pilothouse_own_")
    try:
        async with PostgresDb(PG_URL, schema=schema, table_prefix="ph_") as store:
            await store.insert_run(make_run("s-1", "r-1"))
            assert (await store.get_run("r-1") or {}).get("run_id") == "r-1"
        tables = {
            name
            for (name,) in _sync_query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", schema
            )
        }
        assert tables == {"ph_sessions", "ph_runs", "ph_memories", "ph_session_leases", "ph_meta"}
        kinds = dict(
            _sync_query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'ph_runs'",
                schema,
            )
        )
        assert kinds["data"] == "jsonb"
        assert _sync_query(f'SELECT value FROM "{schema}".ph_meta') == [("1",)]
    finally:
        _sync_query(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows that scans of ``table`` produced, summed over an EXPLAIN ANALYZE JSON plan."""
    own = plan["Actual Rows"] if plan.get("Relation Name") == table else 0
    return own + sum(_rows_read(child, table) for child in plan.get("Plans", []))


async def test_history_read_stays_bounded_without_planner_statistics(pg: PostgresDb) -> None:
    await pg.upsert_session("small")  # creates the tables
    schema, runs = pg.schema, f"{pg.table_prefix}runs"
    sessions = f'"{schema}".{pg.table_prefix}sessions'
    # A 5,000-run session written in bulk into fresh tables: no ANALYZE has run, so the
    # planner knows nothing about how the runs spread over sessions and statuses.
    _sync_query(
        f"INSERT INTO {sessions} (session_id, session_state, state_version, run_count, "
        "created_at, updated_at) VALUES ('big', '{}', 0, 5000, 0, 0)"
    )
    _sync_query(
        f'INSERT INTO "{schema}".{runs} (run_id, session_id, run_no, status, created_at, '
        "updated_at, data) SELECT 'big-' || g, 'big', g, 'COMPLETED', 0, 0, "
        "jsonb_build_object('run_id', 'big-' || g) FROM generate_series(1, 5000) g"
    )

    last = await pg.get_last_runs("big", limit=3, statuses=["COMPLETED"])
    assert [r["run_id"] for r in last] == ["big-4998", "big-4999", "big-5000"]

    # The store's history query, as it sends it: a range of the (session_id, run_no) index.
    ((plan,),) = _sync_query(
        f'EXPLAIN (ANALYZE, FORMAT JSON) SELECT data FROM "{schema}".{runs} '
        f"WHERE session_id = 'big' AND run_no > (SELECT run_count FROM {sessions} "
        "WHERE session_id = 'big') - 16 AND status IN ('COMPLETED') ORDER BY run_no DESC LIMIT 3"
    )
    assert _rows_read(plan[0]["Plan"], runs) <= 16


async def test_terminated_backends_are_replaced_transparently(pg: PostgresDb) -> None:
    await pg.insert_run(make_run("s-1", "r-1"))
    killed = _sync_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'pilothouse' AND pid <> pg_backend_pid()"
    )
    assert killed and all(ok for (ok,) in killed)

    # The pool's pre-ping notices the dead connections and opens new ones.
    assert (await pg.get_run("r-1") or {}).get("run_id") == "r-1"
    await pg.insert_run(make_run("s-1", "r-2"))
    assert [r["run_id"] for r in await pg.list_runs("s-1")] == ["r-1", "r-2"]


async def test_server_gone_is_a_store_error_and_coming_back_heals(pg_schema: str) -> None:
    target = make_url(PG_URL)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    via_proxy = make_url(PG_URL).set(host="127.0.0.1", port=proxy.port)
    store = PostgresDb(
        via_proxy, schema=pg_schema, table_prefix=new_id("t") + "_", connect_timeout=2
    )
    try:
        await store.insert_run(make_run("s-1", "r-1"))
        await proxy.stop()  # the server vanishes mid-use

        started = time.monotonic()
        with pytest.raises(StoreError, match="PostgresDb"):
            await store.insert_run(make_run("s-1", "r-2"))
        with pytest.raises(StoreError):
            await store.get_run("r-1")
        assert time.monotonic() - started < 15

        await proxy.start()  # and comes back
        await store.insert_run(make_run("s-1", "r-3"))
        assert [r["run_id"] for r in await store.list_runs("s-1")] == ["r-1", "r-3"]
    finally:
        await store.close()
        await proxy.stop()


async def test_nothing_listening_is_a_quick_store_error() -> None:
    store = PostgresDb(f"postgresql://postgres@127.0.0.1:{free_port()}/test", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"PostgresDb.*127\.0\.0\.1"):
        await store.get_session("s-1")
    assert time.monotonic() - started < 10
    await store.close()
