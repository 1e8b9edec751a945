"""Vector stores: `SqliteVecDb` (embedded, sqlite-vec) and `PgVectorDb` (PostgreSQL, pgvector).

Importing this package imports neither sqlite-vec nor psycopg: each store loads its driver when
it is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pilothouse.knowledge.vectordb.base import SearchType, VectorDb

if TYPE_CHECKING:
    from pilothouse.knowledge.vectordb.pgvector import PgVectorDb
    from pilothouse.knowledge.vectordb.sqlite_vec import SqliteVecDb

__all__ = ["PgVectorDb", "SearchType", "SqliteVecDb", "VectorDb"]


def __getattr__(name: str) -> Any:
    if name == "SqliteVecDb":
        from pilothouse.knowledge.vectordb.sqlite_vec import SqliteVecDb

        return SqliteVecDb
    if name == "PgVectorDb":
        from pilothouse.knowledge.vectordb.pgvector import PgVectorDb

        return PgVectorDb
    raise AttributeError(f"module 'pilothouse.knowledge.vectordb' has no attribute {name!r}")
