"""The tables of the SQL stores, named with a configurable prefix.

One row per session, one row per run (append-only: a run's row is written when it starts and
finalised when it ends), one row per memory, one per held lease, and a metadata table that
records the schema version so that a later release can upgrade an existing database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["Tables", "build_tables"]

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}\Z|\Z")

# JSONB on PostgreSQL (binary, compact); JSON text elsewhere.
_Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments its 64-bit INTEGER PRIMARY KEY (the rowid); PostgreSQL gets a
# BIGINT identity. Either way: a sequence that only grows, giving runs their order.
_Seq = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class Tables:
    """The store's tables, bound to one MetaData."""

    metadata: MetaData
    meta: Table
    sessions: Table
    runs: Table
    memories: Table
    leases: Table


def build_tables(prefix: str = "pilothouse_", schema: str | None = None) -> Tables:
    """Define the tables as ``{prefix}sessions`` etc., in ``schema`` when given."""
    if not _PREFIX.match(prefix):
        raise ValueError(
            f"table_prefix must be letters, digits and _ (at most 40, not starting with a "
            f"digit), got {prefix!r}"
        )
    md = MetaData(schema=schema)
    p = prefix
    meta = Table(
        f"{p}meta",
        md,
        Column("key", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )
    sessions = Table(
        f"{p}sessions",
        md,
        Column("session_id", String(255), primary_key=True),
        Column("user_id", String(255)),
        Column("agent_id", String(255)),
        Column("session_state", _Json, nullable=False),
        Column("state_version", BigInteger, nullable=False),
        # A counter kept by insert_run: counting rows would cost O(runs) per read.
        Column("run_count", BigInteger, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
        Index(f"{p}sessions_created", "created_at"),
        Index(f"{p}sessions_user_created", "user_id", "created_at"),
        Index(f"{p}sessions_agent_created", "agent_id", "created_at"),
    )
    runs = Table(
        f"{p}runs",
        md,
        # seq is the physical key (see _Seq); run_id is unique and is what callers use.
        Column("seq", _Seq, primary_key=True, autoincrement=True),
        Column("run_id", String(255), nullable=False),
        Column("session_id", String(255), nullable=False),
        # The run's number in its session (1, 2, ...), taken from the session's run counter
        # in the inserting transaction: dense, so "the last n runs" is a key range.
        Column("run_no", BigInteger, nullable=False),
        Column("user_id", String(255)),
        Column("agent_id", String(255)),
        Column("status", String(32), nullable=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
        Column("data", _Json, nullable=False),
        Index(f"{p}runs_run_id", "run_id", unique=True),
        # History reads are a range of this index ending at the session's newest run.
        Index(f"{p}runs_session_run_no", "session_id", "run_no", unique=True),
        # Without AUTOINCREMENT SQLite may reuse the largest rowid after a delete.
        sqlite_autoincrement=True,
    )
    memories = Table(
        f"{p}memories",
        md,
        Column("seq", _Seq, primary_key=True, autoincrement=True),
        Column("memory_id", String(64), nullable=False),
        Column("user_id", String(255), nullable=False),
        Column("memory", Text, nullable=False),
        Column("topics", _Json, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
        Index(f"{p}memories_memory_id", "memory_id", unique=True),
        Index(f"{p}memories_user_seq", "user_id", "seq"),
        sqlite_autoincrement=True,
    )
    leases = Table(
        f"{p}session_leases",
        md,
        Column("session_id", String(255), primary_key=True),
        Column("owner", String(255), nullable=False),
        Column("expires_at", Double, nullable=False),
    )
    return Tables(md, meta, sessions, runs, memories, leases)
