"""`PostgresEventLog`: the event log in the PostgreSQL database of the app's `PostgresDb`.

Talks to PostgreSQL with psycopg 3 directly: one connection writes (batches of rows with
``executemany``, pipelined by psycopg), one LISTENs, and a few more read. A batch's commit
sends one NOTIFY naming the runs it carried, so a worker following another worker's run
wakes up at once; signals (cancel, attach, detach) are NOTIFYs too. The listener reconnects
by itself; while it is away, followers fall back to reading every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pilothouse.serve.eventlog.base import EventLog, LoggedEvent, RunRecord, Signal

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresEventLog"]

logger = logging.getLogger("pilothouse")

# NOTIFY payloads must stay under 8000 bytes; a longer list of runs becomes "everyone look".
_MAX_PAYLOAD = 7900


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Pool:
    """A few psycopg connections, opened on demand, handed out one caller at a time."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await _connect(self._conninfo)
            try:
                yield conn
            finally:
                # A statement that failed leaves an autocommit connection usable; a lost
                # connection is dropped.
                if conn.closed or conn.broken:
                    with contextlib.suppress(Exception):
                        await conn.close()
                else:
                    self._idle.append(conn)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()


async def _connect(conninfo: str) -> psycopg.AsyncConnection[Any]:
    import psycopg

    return await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, connect_timeout=10, application_name="pilothouse-serve"
    )


class PostgresEventLog(EventLog):
    """The event log at ``conninfo``, tables ``{table_prefix}serve_*`` (in ``schema``)."""

    def __init__(
        self,
        conninfo: str,
        table_prefix: str,
        worker_id: str,
        *,
        schema: str | None = None,
        retention: float = 86400.0,
        readers: int = 4,
    ) -> None:
        super().__init__(worker_id, retention=retention)
        self._conninfo = conninfo
        qualify = (_ident(schema) + ".") if schema else ""
        self._runs_t = qualify + _ident(f"{table_prefix}serve_runs")
        self._events_t = qualify + _ident(f"{table_prefix}serve_events")
        self._sessions_t = qualify + _ident(f"{table_prefix}sessions")
        self._runs_index = _ident(f"{table_prefix}serve_runs_created_at")
        self._channel = f"{schema or ''}.{table_prefix}serve"[-63:]
        self._lock_key = f"pilothouse-serve:{schema or ''}:{table_prefix}"
        self._pool = _Pool(conninfo, readers)
        self._writer_conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = False

    def _wait_bound(self) -> float:
        return 1.0 if self._listening else self.poll_interval

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key,))
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._runs_t} (run_id VARCHAR PRIMARY KEY, "
                "agent_id VARCHAR NOT NULL, user_id VARCHAR, session_id VARCHAR, "
                "created_at DOUBLE PRECISION NOT NULL)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {self._runs_index} ON {self._runs_t} (created_at)"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._events_t} (run_id VARCHAR NOT NULL, "
                "seq INTEGER NOT NULL, event VARCHAR NOT NULL, data TEXT NOT NULL, "
                "created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, seq))"
            )
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._listener = asyncio.get_running_loop().create_task(self._listen(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), 15)
        except BaseException:
            await self._close()
            raise

    async def _close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._writer_conn is not None:
            with contextlib.suppress(Exception):
                await self._writer_conn.close()
        await self._pool.close()

    # --- writing ---------------------------------------------------------------------------

    async def _write(
        self, runs: list[RunRecord], events: list[tuple[str, int, str, str, float]]
    ) -> None:
        conn = self._writer_conn
        if conn is None or conn.closed:
            conn = self._writer_conn = await _connect(self._conninfo)
        run_ids = sorted({e[0] for e in events})
        payload = "e:" + ",".join(run_ids)
        if len(payload.encode()) > _MAX_PAYLOAD:
            payload = "e:*"
        try:
            async with conn.transaction(), conn.cursor() as cur:
                if runs:
                    await cur.executemany(
                        f"INSERT INTO {self._runs_t} VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [
                            (r.run_id, r.agent_id, r.user_id, r.session_id, r.created_at)
                            for r in runs
                        ],
                    )
                if events:
                    await cur.executemany(
                        f"INSERT INTO {self._events_t} VALUES (%s, %s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        events,
                    )
                    await cur.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))
        except BaseException:
            if conn.closed or conn.broken:
                self._writer_conn = None
            raise

    # --- reading ---------------------------------------------------------------------------

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        import psycopg

        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    cursor = await conn.execute(sql, params)
                    return await cursor.fetchall()
            except psycopg.OperationalError:
                # An idle connection the server closed: one more try on a new one.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def events_after(self, run_id: str, after: int, limit: int = 500) -> list[LoggedEvent]:
        rows = await self._read(
            f"SELECT seq, event, data FROM {self._events_t} WHERE run_id = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            (run_id, after, limit),
        )
        return [LoggedEvent(int(seq), name, data) for seq, name, data in rows]

    async def last_seq(self, run_id: str) -> int:
        rows = await self._read(
            f"SELECT coalesce(max(seq), 0) FROM {self._events_t} WHERE run_id = %s", (run_id,)
        )
        return int(rows[0][0])

    async def last_event(self, run_id: str) -> LoggedEvent | None:
        rows = await self._read(
            f"SELECT seq, event, data FROM {self._events_t} WHERE run_id = %s "
            "ORDER BY seq DESC LIMIT 1",
            (run_id,),
        )
        return LoggedEvent(int(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._read(
            f"SELECT run_id, agent_id, user_id, session_id, created_at FROM {self._runs_t} "
            "WHERE run_id = %s",
            (run_id,),
        )
        return RunRecord(*rows[0]) if rows else None

    async def count_sessions(self, user_id: str | None, agent_id: str | None) -> int | None:
        import psycopg

        try:
            rows = await self._read(
                f"SELECT count(*) FROM {self._sessions_t} WHERE "
                "(CAST(%s AS VARCHAR) IS NULL OR user_id = %s) AND "
                "(CAST(%s AS VARCHAR) IS NULL OR agent_id = %s)",
                (user_id, user_id, agent_id, agent_id),
            )
        except psycopg.Error:
            return None
        return int(rows[0][0])

    # --- signals ---------------------------------------------------------------------------

    async def publish(self, signal: Signal) -> None:
        reason = (signal.reason or "")[:1000] or None
        payload = "s:" + json.dumps([signal.kind, signal.run_id, signal.origin, reason])
        async with self._pool.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        delay = 0.1
        while True:
            try:
                conn = await _connect(self._conninfo)
            except Exception as exc:
                logger.warning("serve: cannot LISTEN (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await conn.execute(f"LISTEN {_ident(self._channel)}")
                self._listening = True
                delay = 0.1
                if not ready.done():
                    ready.set_result(None)
                # Anything sent while nobody listened is read from the tables instead.
                self._wake(None)
                async for notify in conn.notifies():
                    self._on_notify(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("serve: the LISTEN connection failed (%s); reconnecting", exc)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(delay)

    def _on_notify(self, payload: str) -> None:
        kind, _, body = payload.partition(":")
        if kind == "e":
            self._wake(None if body == "*" else body.split(","))
        elif kind == "s":
            try:
                signal_kind, run_id, origin, reason = json.loads(body)
            except (ValueError, TypeError):
                return
            self._dispatch(Signal(signal_kind, run_id, origin, reason))

    # --- pruning ---------------------------------------------------------------------------

    async def prune(self, older_than: float) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {self._events_t} WHERE run_id IN (SELECT run_id FROM "
                f"{self._runs_t} WHERE created_at < %s)",
                (older_than,),
            )
            await conn.execute(f"DELETE FROM {self._runs_t} WHERE created_at < %s", (older_than,))
