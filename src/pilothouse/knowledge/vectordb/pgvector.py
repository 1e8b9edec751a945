"""`PgVectorDb`: chunks in PostgreSQL with pgvector, for knowledge bases that outgrow a machine.

One table per store: the chunk's text, document name, content hash, metadata (JSONB, with a GIN
index), its vector (an HNSW index, cosine distance) and a generated ``tsvector`` (a GIN index)
for keyword search.

A filtered vector search is one query: the filter is its WHERE clause, and the transaction sets
``hnsw.iterative_scan = relaxed_order`` so that the index scan goes on past its first
``ef_search`` candidates until enough rows pass the filter (pgvector >= 0.8). Should that still
come back short (a very selective filter stops the scan at ``hnsw.max_scan_tuples``), the search
is repeated exactly, without the index: a filter never silently returns fewer results than
exist.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pilothouse.knowledge.document import Chunk
from pilothouse.knowledge.filters import Filter
from pilothouse.knowledge.vectordb.base import VectorDb, keyword_terms
from pilothouse.knowledge.vectordb.pg_filters import pg_sql

__all__ = ["PgVectorDb"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_COLUMNS = "chunk_id, name, idx, content, content_hash, metadata"


class PgVectorDb(VectorDb):
    """Chunks, vectors and metadata in PostgreSQL with pgvector (HNSW, cosine).

    Args:
        url: A libpq connection URL, e.g. ``"postgresql://user@host:5432/db"``.
        table: The table's name.
        schema: The schema to create it in (default: the connection's search path).
        hnsw_m, hnsw_ef_construction: The HNSW index's build parameters.
        ef_search: Candidates the index scan keeps (at least the number of results asked).
        text_search_config: The PostgreSQL text search configuration for keyword search.
        connect_timeout: Seconds to wait for a connection.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = "knowledge",
        schema: str | None = None,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        ef_search: int = 40,
        text_search_config: str = "english",
        connect_timeout: float = 10.0,
    ) -> None:
        for what, value in (("table", table), ("schema", schema), ("config", text_search_config)):
            if value is not None and not _IDENT.match(value):
                raise ValueError(f"PgVectorDb(): {what} must be a plain identifier: {value!r}")
        for what, number in (("hnsw_m", hnsw_m), ("hnsw_ef_construction", hnsw_ef_construction),
                             ("ef_search", ef_search)):  # fmt: skip
            if type(number) is not int or number < 1:
                raise ValueError(f"PgVectorDb(): {what} must be a whole number >= 1")
        self.url = url
        self.table = table
        self.schema = schema
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.ef_search = ef_search
        self.text_search_config = text_search_config
        self.connect_timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: Any = None
        self._dimensions: int | None = None
        self._checked = False

    @property
    def _name(self) -> str:
        return f'"{self.schema}"."{self.table}"' if self.schema else f'"{self.table}"'

    # ------------------------------------------------------------------ connection

    def _connection(self) -> Any:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        try:
            import psycopg
            from pgvector.psycopg import register_vector
        except ImportError as exc:
            raise RuntimeError(
                "PgVectorDb needs psycopg and pgvector: pip install 'pilothouse[knowledge]'"
            ) from exc
        conn = psycopg.connect(
            self.url, connect_timeout=max(1, round(self.connect_timeout)), autocommit=True
        )
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        self._conn = conn
        if not self._checked:
            self._read_dimensions(conn)
        return conn

    def _table_exists(self, conn: Any) -> bool:
        """Whether the table exists: known, or created since by another connection."""
        if self._dimensions is None:
            self._read_dimensions(conn)
        return self._dimensions is not None

    def _read_dimensions(self, conn: Any) -> None:
        if self.schema:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        row = conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = 'embedding'",
            (self._name,),
        ).fetchone()
        self._dimensions = int(row[0]) if row else None
        self._checked = True

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                yield conn

    def _ensure_table(self, conn: Any, dimensions: int) -> None:
        if self._dimensions is None:
            self._read_dimensions(conn)
        if self._dimensions is not None:
            if dimensions != self._dimensions:
                raise ValueError(
                    f"the table {self._name} holds {self._dimensions}-dimension vectors; these "
                    f"have {dimensions}: use the embedder the store was filled with"
                )
            return
        name, base = self._name, self.table
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {name} (id bigserial PRIMARY KEY, "
            "chunk_id text NOT NULL UNIQUE, name text NOT NULL, idx integer NOT NULL, "
            "content text NOT NULL, content_hash text NOT NULL, "
            "metadata jsonb NOT NULL DEFAULT '{}'::jsonb, "
            f"embedding vector({dimensions}) NOT NULL, "
            f"tsv tsvector GENERATED ALWAYS AS (to_tsvector('{self.text_search_config}', "
            "content)) STORED)"
        )
        conn.execute(
            f'CREATE INDEX IF NOT EXISTS "{base}_embedding" ON {name} USING hnsw '
            f"(embedding vector_cosine_ops) WITH (m = {self.hnsw_m}, "
            f"ef_construction = {self.hnsw_ef_construction})"
        )
        conn.execute(f'CREATE INDEX IF NOT EXISTS "{base}_tsv" ON {name} USING gin (tsv)')
        conn.execute(f'CREATE INDEX IF NOT EXISTS "{base}_metadata" ON {name} USING gin (metadata)')
        conn.execute(f'CREATE INDEX IF NOT EXISTS "{base}_name" ON {name} (name, content_hash)')
        self._dimensions = dimensions

    # ------------------------------------------------------------------ writing

    def has_document(self, name: str, content_hash: str) -> bool:
        """Whether the document ``name`` is stored with exactly this content hash."""
        with self._lock:
            conn = self._connection()
            if not self._table_exists(conn):
                return False
            row = conn.execute(
                f"SELECT 1 FROM {self._name} WHERE name = %s AND content_hash = %s LIMIT 1",
                (name, content_hash),
            ).fetchone()
        return row is not None

    def replace_document(
        self,
        name: str,
        content_hash: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
    ) -> bool:
        """Store a document's chunks in place of any other version of ``name``, atomically."""
        try:
            return self._replace(name, content_hash, chunks, vectors)
        except BaseException:
            # A table created in the rolled back transaction is gone again: look next time.
            self._dimensions = None
            raise

    def _replace(
        self,
        name: str,
        content_hash: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
    ) -> bool:
        import numpy as np

        with self._transaction() as conn:
            if chunks:
                self._ensure_table(conn, len(vectors[0]))
            if self._dimensions is None:
                return bool(chunks)
            # Two writers of one document take turns; the second then sees the first's rows.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self._name}:{name}",))
            if conn.execute(
                f"SELECT 1 FROM {self._name} WHERE name = %s AND content_hash = %s LIMIT 1",
                (name, content_hash),
            ).fetchone():
                return False
            conn.execute(f"DELETE FROM {self._name} WHERE name = %s", (name,))
            rows = [
                (
                    chunk.id,
                    chunk.name,
                    chunk.index,
                    chunk.content,
                    content_hash,
                    json.dumps(chunk.metadata, ensure_ascii=False),
                    np.asarray(vector, dtype=np.float32),
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ]
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {self._name} ({_COLUMNS}, embedding) "
                    "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s)",
                    rows,
                )
        return True

    def delete(self, *, name: str | None = None, filter: Filter | None = None) -> int:
        """Delete the chunks of document ``name`` and/or passing ``filter``; return how many."""
        conditions: list[str] = []
        params: list[Any] = []
        if name is not None:
            conditions.append("name = %s")
            params.append(name)
        if filter is not None:
            sql, filter_params = pg_sql(filter)
            conditions.append(sql)
            params.extend(filter_params)
        if not conditions:
            raise ValueError("delete() needs a name or a filter")
        with self._transaction() as conn:
            if not self._table_exists(conn):
                return 0
            cursor = conn.execute(
                f"DELETE FROM {self._name} WHERE {' AND '.join(conditions)}", params
            )
            return int(cursor.rowcount)

    # ------------------------------------------------------------------ reading

    def vector_search(
        self, vector: Sequence[float], limit: int, filter: Filter | None
    ) -> list[Chunk]:
        """The nearest chunks passing ``filter``; the filter is part of the index scan."""
        import numpy as np

        query_vector = np.asarray(vector, dtype=np.float32)
        where, params = ("", []) if filter is None else pg_sql(filter)
        condition = f"WHERE {where}" if where else ""
        with self._transaction() as conn:
            if not self._table_exists(conn) or limit <= 0:
                return []
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, min(limit, 1000))}")
            if filter is not None:
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            sql = (
                f"SELECT {_COLUMNS}, embedding <=> %s AS distance FROM {self._name} "
                f"{condition} ORDER BY distance LIMIT %s"
            )
            rows = conn.execute(sql, (query_vector, *params, limit)).fetchall()
            if filter is not None and len(rows) < limit:
                # The index scan gave up early: rank the rows that pass the filter exactly.
                conn.execute("SET LOCAL enable_indexscan = off")
                rows = conn.execute(sql, (query_vector, *params, limit)).fetchall()
        # relaxed_order may return neighbours slightly out of order.
        rows.sort(key=lambda row: row[6])
        return [_chunk(row, 1.0 - float(row[6])) for row in rows]

    def keyword_search(self, query: str, limit: int, filter: Filter | None) -> list[Chunk]:
        """Chunks matching any word of ``query``, best ``ts_rank_cd`` first, passing ``filter``."""
        terms = keyword_terms(query)
        if not terms or limit <= 0:
            return []
        where, params = ("", []) if filter is None else pg_sql(filter)
        condition = f" AND {where}" if where else ""
        sql = (
            f"SELECT {_COLUMNS}, ts_rank_cd(tsv, q) AS rank FROM {self._name}, "
            f"to_tsquery('{self.text_search_config}', %s) AS q WHERE tsv @@ q{condition} "
            "ORDER BY rank DESC, id LIMIT %s"
        )
        with self._lock:
            conn = self._connection()
            if not self._table_exists(conn):
                return []
            rows = conn.execute(sql, (" | ".join(terms), *params, limit)).fetchall()
        return [_chunk(row, float(row[6])) for row in rows]

    def metadata_keys(self) -> list[str]:
        """Every metadata key in use, sorted."""
        with self._lock:
            conn = self._connection()
            if not self._table_exists(conn):
                return []
            rows = conn.execute(
                f"SELECT DISTINCT jsonb_object_keys(metadata) AS key FROM {self._name} ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        """How many chunks are stored."""
        with self._lock:
            conn = self._connection()
            if not self._table_exists(conn):
                return 0
            return int(conn.execute(f"SELECT count(*) FROM {self._name}").fetchone()[0])

    def drop(self) -> None:
        """Delete the table and everything in it."""
        with self._lock:
            self._connection().execute(f"DROP TABLE IF EXISTS {self._name}")
            self._dimensions = None

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"PgVectorDb(table={self._name})"


def _chunk(row: Sequence[Any], score: float) -> Chunk:
    metadata = row[5]
    return Chunk(
        id=row[0],
        name=row[1],
        index=row[2],
        content=row[3],
        content_hash=row[4],
        metadata=metadata if isinstance(metadata, dict) else json.loads(metadata),
        score=score,
    )
