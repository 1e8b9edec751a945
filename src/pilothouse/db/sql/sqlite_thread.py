"""A thread that owns one sqlite3 connection and runs whole jobs on it, one at a time.

aiosqlite, under SQLAlchemy's async engine, crosses from the event loop to its thread and back
for every step of every statement (cursor, execute, fetch, close, commit): five or more
crossings per statement, each a wake-up of another thread. A run's start and end are several
statements each; here each becomes one job, so one crossing, with the statements run back to
back by the sqlite3 module in the thread. The event loop only awaits the job's future.

The connection is opened lazily in the thread, with the settings the store gives, and closed
by `close` after the jobs already queued; the next job opens a new one. The thread is
loop-agnostic: event loops in several threads may queue jobs on the same `SqliteThread`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["SqliteThread"]

T = TypeVar("T")


class _Worker:
    """One executor thread and the connection that only it touches."""

    __slots__ = ("conn", "executor")

    def __init__(self, name: str) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        self.conn: sqlite3.Connection | None = None


class SqliteThread:
    """Runs ``fn(connection)`` jobs in a dedicated thread on a connection to ``db_file``.

    ``setup`` runs on each new connection (PRAGMAs). Connections are in autocommit mode
    (``isolation_level=None``): jobs issue BEGIN / COMMIT themselves.
    """

    def __init__(
        self, db_file: str, *, name: str, setup: Callable[[sqlite3.Connection], None]
    ) -> None:
        self._db_file = db_file
        self._name = name
        self._setup = setup
        self._lock = threading.Lock()
        self._worker: _Worker | None = None

    def _current(self) -> _Worker:
        with self._lock:
            if self._worker is None:
                self._worker = _Worker(self._name)
            return self._worker

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the connection in the thread; its result or exception."""
        loop = asyncio.get_running_loop()
        while True:
            worker = self._current()
            try:
                future = loop.run_in_executor(worker.executor, _call, worker, self, fn)
            except RuntimeError:
                # `close` (from another thread) shut this worker down just now: use the next.
                if worker is self._worker:
                    raise
                continue
            return await future

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._db_file, isolation_level=None, check_same_thread=False, cached_statements=64
        )
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Close the connection once the jobs queued before are done, and let the thread
        end; a later job starts a new thread and connection."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(worker.executor, _close, worker)
        finally:
            worker.executor.shutdown(wait=False)


def _call(worker: _Worker, owner: SqliteThread, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn = worker.conn
    if conn is None:
        conn = worker.conn = owner._open()
    return fn(conn)


def _close(worker: _Worker) -> None:
    conn, worker.conn = worker.conn, None
    if conn is not None:
        conn.close()
