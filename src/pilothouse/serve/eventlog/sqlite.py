"""`SqliteEventLog`: the event log in the SQLite file of the app's `SqliteDb`.

Workers on one machine share the file. Writes go through one thread with its own connection
(WAL, ``synchronous=NORMAL``: the log is for reconnecting clients, and a power cut ends their
streams anyway), reads through another. SQLite has no notifications, so a worker waiting for
another worker's events reads again every ``poll_interval`` seconds, and signals are rows of
``serve_signals`` that every worker polls for every ``signal_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from typing import Any

from pilothouse.db.sql.sqlite_thread import SqliteThread
from pilothouse.serve.eventlog.base import EventLog, LoggedEvent, RunRecord, Signal

__all__ = ["SqliteEventLog"]

logger = logging.getLogger("pilothouse")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteEventLog(EventLog):
    """The event log in ``db_file``, tables named ``{table_prefix}serve_*``."""

    signal_interval = 0.2

    def __init__(
        self,
        db_file: str,
        table_prefix: str,
        worker_id: str,
        *,
        retention: float = 86400.0,
        busy_timeout: float = 5.0,
    ) -> None:
        super().__init__(worker_id, retention=retention)
        self._busy_ms = int(busy_timeout * 1000)
        self._runs_t = _quote(f"{table_prefix}serve_runs")
        self._events_t = _quote(f"{table_prefix}serve_events")
        self._signals_t = _quote(f"{table_prefix}serve_signals")
        self._runs_index = _quote(f"{table_prefix}serve_runs_created_at")
        self._sessions_t = _quote(f"{table_prefix}sessions")
        self._writer_thread = SqliteThread(db_file, name="pilothouse-serve-w", setup=self._setup)
        self._reader_thread = SqliteThread(db_file, name="pilothouse-serve-r", setup=self._setup)
        self._last_signal = 0
        self._poller: asyncio.Task[None] | None = None

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        def create(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._runs_t} (run_id TEXT PRIMARY KEY, "
                    "agent_id TEXT NOT NULL, user_id TEXT, session_id TEXT, "
                    "created_at REAL NOT NULL)"
                )
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {self._runs_index} ON {self._runs_t} (created_at)"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._events_t} (run_id TEXT NOT NULL, "
                    "seq INTEGER NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL, "
                    "created_at REAL NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
                )
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._signals_t} (id INTEGER PRIMARY KEY "
                    "AUTOINCREMENT, kind TEXT NOT NULL, run_id TEXT NOT NULL, "
                    "origin TEXT NOT NULL, reason TEXT, created_at REAL NOT NULL)"
                )
                row = conn.execute(f"SELECT coalesce(max(id), 0) FROM {self._signals_t}").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(row[0])

        self._last_signal = await self._writer_thread.run(create)
        self._poller = asyncio.get_running_loop().create_task(self._poll_signals())

    async def _close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self._writer_thread.close()
        await self._reader_thread.close()

    # --- writing ---------------------------------------------------------------------------

    async def _write(
        self, runs: list[RunRecord], events: list[tuple[str, int, str, str, float]]
    ) -> None:
        run_rows = [(r.run_id, r.agent_id, r.user_id, r.session_id, r.created_at) for r in runs]

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if run_rows:
                    conn.executemany(
                        f"INSERT OR IGNORE INTO {self._runs_t} VALUES (?, ?, ?, ?, ?)", run_rows
                    )
                if events:
                    conn.executemany(
                        f"INSERT OR IGNORE INTO {self._events_t} VALUES (?, ?, ?, ?, ?)", events
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._writer_thread.run(job)

    # --- reading ---------------------------------------------------------------------------

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        def job(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        return await self._reader_thread.run(job)

    async def events_after(self, run_id: str, after: int, limit: int = 500) -> list[LoggedEvent]:
        rows = await self._read(
            f"SELECT seq, event, data FROM {self._events_t} WHERE run_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        )
        return [LoggedEvent(int(seq), name, data) for seq, name, data in rows]

    async def last_seq(self, run_id: str) -> int:
        rows = await self._read(
            f"SELECT coalesce(max(seq), 0) FROM {self._events_t} WHERE run_id = ?", (run_id,)
        )
        return int(rows[0][0])

    async def last_event(self, run_id: str) -> LoggedEvent | None:
        rows = await self._read(
            f"SELECT seq, event, data FROM {self._events_t} WHERE run_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (run_id,),
        )
        return LoggedEvent(int(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._read(
            f"SELECT run_id, agent_id, user_id, session_id, created_at FROM {self._runs_t} "
            "WHERE run_id = ?",
            (run_id,),
        )
        return RunRecord(*rows[0]) if rows else None

    async def count_sessions(self, user_id: str | None, agent_id: str | None) -> int | None:
        try:
            rows = await self._read(
                f"SELECT count(*) FROM {self._sessions_t} WHERE (? IS NULL OR user_id = ?) "
                "AND (? IS NULL OR agent_id = ?)",
                (user_id, user_id, agent_id, agent_id),
            )
        except sqlite3.Error:
            return None
        return int(rows[0][0])

    # --- signals ---------------------------------------------------------------------------

    async def publish(self, signal: Signal) -> None:
        row = (signal.kind, signal.run_id, signal.origin, signal.reason, time.time())

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO {self._signals_t} (kind, run_id, origin, reason, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                row,
            )

        await self._writer_thread.run(job)

    async def _poll_signals(self) -> None:
        while True:
            await asyncio.sleep(self.signal_interval)
            try:
                rows = await self._read(
                    f"SELECT id, kind, run_id, origin, reason FROM {self._signals_t} "
                    "WHERE id > ? ORDER BY id",
                    (self._last_signal,),
                )
            except sqlite3.Error as exc:
                logger.warning("serve: reading signals failed: %s", exc)
                continue
            for signal_id, kind, run_id, origin, reason in rows:
                self._last_signal = max(self._last_signal, int(signal_id))
                self._dispatch(Signal(kind, run_id, origin, reason))

    # --- pruning ---------------------------------------------------------------------------

    async def prune(self, older_than: float) -> None:
        def job(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"DELETE FROM {self._events_t} WHERE run_id IN (SELECT run_id FROM "
                    f"{self._runs_t} WHERE created_at < ?)",
                    (older_than,),
                )
                conn.execute(f"DELETE FROM {self._runs_t} WHERE created_at < ?", (older_than,))
                conn.execute(
                    f"DELETE FROM {self._signals_t} WHERE created_at < ?", (time.time() - 300,)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._writer_thread.run(job)
