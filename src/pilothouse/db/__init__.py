"""Session stores: where sessions, runs, session state, leases and user memories live.

``SessionStore`` is the contract; ``InMemoryDb``, ``SqliteDb`` and ``PostgresDb`` fulfil it.
Importing this package does not import SQLAlchemy: the SQL stores load on first access.

    from pilothouse.db import SqliteDb

    async with SqliteDb("agents.db") as db:
        await db.insert_run(run_output.to_dict())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pilothouse.db.base import SCHEMA_VERSION, SessionStore
from pilothouse.db.errors import (
    DuplicateRunError,
    LeaseUnavailableError,
    RunNotFoundError,
    StaleStateError,
    StoreError,
)
from pilothouse.db.inmemory import InMemoryDb, process_store
from pilothouse.db.lease import SessionLease, new_lease_owner
from pilothouse.db.records import MemoryRecord, SessionRecord

if TYPE_CHECKING:
    from pilothouse.db.postgres import PostgresDb
    from pilothouse.db.sqlite import SqliteDb

__all__ = [
    "SCHEMA_VERSION",
    "DuplicateRunError",
    "InMemoryDb",
    "LeaseUnavailableError",
    "MemoryRecord",
    "PostgresDb",
    "RunNotFoundError",
    "SessionLease",
    "SessionRecord",
    "SessionStore",
    "SqliteDb",
    "StaleStateError",
    "StoreError",
    "new_lease_owner",
    "process_store",
]

# Names whose modules import SQLAlchemy and a driver: loaded when first asked for.
_LAZY = {"SqliteDb": "pilothouse.db.sqlite", "PostgresDb": "pilothouse.db.postgres"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pilothouse.db' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
