"""Turning SQLAlchemy and driver exceptions into the store's own errors."""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

from pilothouse.db.errors import StoreError

__all__ = ["is_disconnect", "is_sqlite_busy", "sqlstate", "translate_error"]

_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


def _driver_message(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    # Driver messages can run over several lines (context, hints); the first says what.
    return text.splitlines()[0] if text else type(error).__name__


def is_sqlite_busy(error: BaseException) -> bool:
    """True for SQLite's "another connection holds the write lock" errors, which a retry may
    cure, as opposed to errors that will recur (read-only file, disk full, corrupt file)."""
    if isinstance(error, sa_exc.OperationalError):
        text = str(error.orig).lower()
    elif isinstance(error, sqlite3.OperationalError):  # from the store's own SQLite thread
        text = str(error).lower()
    else:
        return False
    return any(marker in text for marker in _SQLITE_BUSY)


def is_disconnect(error: BaseException) -> bool:
    """True when the connection died under the statement (SQLAlchemy has invalidated it)."""
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)


def sqlstate(error: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of the failure, when the driver reported one."""
    orig = getattr(error, "orig", None)
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def translate_error(error: BaseException, store: str) -> BaseException:
    """Return the exception to raise for ``error``, a failure inside ``store`` (its label).

    Values that could not be serialised surface as the TypeError/ValueError they are; every
    database failure becomes a StoreError naming the store and the driver's reason.
    """
    if isinstance(error, sa_exc.StatementError) and not isinstance(error, sa_exc.DBAPIError):
        orig = error.orig
        if isinstance(orig, TypeError | ValueError):
            return type(orig)(str(orig))
    if isinstance(error, sa_exc.TimeoutError):
        return StoreError(f"{store}: no free database connection: {error}")
    if is_sqlite_busy(error):
        return StoreError(
            f"{store}: the database stayed locked by another writer: {_driver_message(error)}"
        )
    return StoreError(f"{store}: {_driver_message(error)}")
