"""The service's shared event log and worker signals; see `base` for the design."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

from pilothouse.db.base import SessionStore
from pilothouse.serve.eventlog.base import EventLog, LoggedEvent, RunRecord, Signal

if TYPE_CHECKING:
    from pilothouse.db.postgres import PostgresDb
    from pilothouse.db.sqlite import SqliteDb

__all__ = ["EventLog", "LoggedEvent", "RunRecord", "Signal", "event_log_for", "is_shared"]

_SQLITE = ("pilothouse.db.sqlite", "SqliteDb")
_POSTGRES = ("pilothouse.db.postgres", "PostgresDb")


def _is(db: SessionStore, where: tuple[str, str]) -> bool:
    # A store of that class exists only if its module was imported: no need to import it.
    module = sys.modules.get(where[0])
    cls = getattr(module, where[1], None) if module is not None else None
    return cls is not None and isinstance(db, cls)


def is_shared(db: SessionStore) -> bool:
    """Whether several worker processes can share ``db`` (and so the event log on it)."""
    return _is(db, _SQLITE) or _is(db, _POSTGRES)


def event_log_for(db: SessionStore, worker_id: str, *, retention: float) -> EventLog:
    """The event log that lives next to ``db``: in its SQLite file, in its PostgreSQL
    database, or (for any other store) in this process's memory."""
    if _is(db, _SQLITE):
        from pilothouse.serve.eventlog.sqlite import SqliteEventLog

        sqlite_db = cast("SqliteDb", db)
        return SqliteEventLog(
            sqlite_db.db_file, sqlite_db.table_prefix, worker_id, retention=retention
        )
    if _is(db, _POSTGRES):
        from pilothouse.serve.eventlog.postgres import PostgresEventLog

        pg = cast("PostgresDb", db)
        conninfo = pg.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresEventLog(
            conninfo, pg.table_prefix, worker_id, schema=pg.schema, retention=retention
        )
    from pilothouse.serve.eventlog.memory import MemoryEventLog

    return MemoryEventLog(worker_id, retention=retention)
