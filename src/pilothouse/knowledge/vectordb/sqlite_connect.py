"""Opening a SQLite connection with the sqlite-vec extension loaded.

The standard library's ``sqlite3`` is tried first. Some Python builds leave out extension
loading (``Connection.enable_load_extension`` is missing, as on the Python this project is
developed with), and some SQLite libraries are too old for sqlite-vec; then ``sqlean`` (the
``sqlean.py`` package: the same DB-API module over its own, current SQLite) is used instead.
The reason for the fallback is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["VecConnection", "default_drivers", "open_with_vec"]

logger = logging.getLogger("pilothouse")


class VecConnection:
    """A DB-API connection with sqlite-vec loaded, and the module (driver) it came from."""

    __slots__ = ("connection", "driver")

    def __init__(self, connection: Any, driver: ModuleType) -> None:
        self.connection = connection
        self.driver = driver


def default_drivers() -> list[ModuleType]:
    """The SQLite modules to try, in order: the standard library's, then sqlean's if present."""
    import sqlite3

    drivers: list[ModuleType] = [sqlite3]
    try:
        import sqlean  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        drivers.append(sqlean)
    return drivers


def _load_vec(connection: Any) -> None:
    import sqlite_vec  # type: ignore[import-untyped]

    connection.enable_load_extension(True)
    try:
        sqlite_vec.load(connection)
    finally:
        connection.enable_load_extension(False)
    connection.execute("SELECT vec_version()").fetchone()


def open_with_vec(path: str, drivers: Sequence[ModuleType] | None = None) -> VecConnection:
    """Open ``path`` with the first driver that can load sqlite-vec.

    Raises:
        RuntimeError: No driver could; the message gives each one's reason.
    """
    try:
        import sqlite_vec  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            "SqliteVecDb needs the sqlite-vec package: pip install 'pilothouse[knowledge]'"
        ) from exc
    reasons: list[str] = []
    for driver in drivers if drivers is not None else default_drivers():
        name = driver.__name__
        if not hasattr(driver.Connection, "enable_load_extension"):
            reasons.append(f"{name}: this Python's SQLite module cannot load extensions")
            continue
        connection = driver.connect(path, check_same_thread=False, isolation_level=None)
        try:
            _load_vec(connection)
        except Exception as exc:
            connection.close()
            reasons.append(f"{name}: loading sqlite-vec failed: {exc}")
            continue
        if reasons:
            logger.info("sqlite-vec: using %s (%s)", name, "; ".join(reasons))
        return VecConnection(connection, driver)
    raise RuntimeError(
        "no SQLite module here can load sqlite-vec ("
        + "; ".join(reasons)
        + "); install sqlean.py: pip install 'pilothouse[knowledge]'"
    )
