"""`SqliteVecDb`: the embedded vector store, one SQLite file (or memory) with sqlite-vec.

Tables, for a store named ``knowledge``:

* ``knowledge_chunks``: one row per chunk (id, chunk id, document name, position, text,
  content hash, metadata as JSON);
* ``knowledge_vec``: a vec0 virtual table (cosine distance) with the chunk's vector under the
  same rowid, plus one metadata column per key declared in ``metadata_columns``;
* ``knowledge_fts``: an FTS5 table of the chunk texts (Porter stemming), for keyword search.

A filter is applied inside the KNN query: its plain comparisons on declared columns as vec0
constraints, everything else as ``rowid IN (SELECT id FROM knowledge_chunks WHERE ...)`` over
the JSON metadata (see `sqlite_filters`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from pilothouse.knowledge.document import Chunk
from pilothouse.knowledge.filters import Filter, check_key
from pilothouse.knowledge.vectordb.base import VectorDb, keyword_terms
from pilothouse.knowledge.vectordb.sqlite_connect import open_with_vec
from pilothouse.knowledge.vectordb.sqlite_filters import (
    COLUMN_TYPES,
    json_sql,
    split_for_vec0,
    vec0_column,
)

__all__ = ["SqliteVecDb"]

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
# vec0 answers at most this many nearest neighbours in one query.
_MAX_K = 4096
_CHUNK_COLUMNS = "c.chunk_id, c.name, c.idx, c.content, c.content_hash, c.metadata"


class SqliteVecDb(VectorDb):
    """Chunks, vectors and metadata in SQLite with sqlite-vec (brute-force exact KNN).

    Args:
        path: The database file, or ``":memory:"`` (the default) for a store that lives as
            long as this object.
        table: The name the store's tables start with.
        metadata_columns: Metadata keys to keep as vec0 metadata columns, with their type
            (``str``, ``int``, ``float`` or ``bool``): comparisons on them are evaluated by vec0
            itself. Every document must then have these keys, with values of that type.
            Filters on any other key work as well, through the chunks table.
        drivers: The SQLite modules to try (default: the standard library's, then sqlean's).
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        table: str = "knowledge",
        metadata_columns: Mapping[str, type] | None = None,
        drivers: Sequence[ModuleType] | None = None,
    ) -> None:
        if not _TABLE.match(table):
            raise ValueError(f"table must be a plain identifier of up to 41 characters: {table!r}")
        columns = dict(metadata_columns or {})
        for key, kind in columns.items():
            check_key(key)
            if kind not in COLUMN_TYPES:
                raise TypeError(
                    f"metadata_columns[{key!r}] must be str, int, float or bool, not {kind!r}"
                )
        self.path = str(path)
        self.table = table
        self.metadata_columns = columns
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        opened = open_with_vec(self.path, drivers)
        self._db = opened.connection
        self.driver = opened.driver.__name__
        self._lock = threading.RLock()
        self._dimensions: int | None = None
        self._create_tables()

    # ------------------------------------------------------------------ schema

    @property
    def _chunks(self) -> str:
        return f"{self.table}_chunks"

    @property
    def _vec(self) -> str:
        return f"{self.table}_vec"

    @property
    def _fts(self) -> str:
        return f"{self.table}_fts"

    def _create_tables(self) -> None:
        with self._lock:
            db = self._db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {self._chunks} (id INTEGER PRIMARY KEY, "
                "chunk_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, idx INTEGER NOT NULL, "
                "content TEXT NOT NULL, content_hash TEXT NOT NULL, metadata TEXT NOT NULL)"
            )
            db.execute(
                f"CREATE INDEX IF NOT EXISTS {self._chunks}_name ON {self._chunks} "
                "(name, content_hash)"
            )
            db.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {self._fts} USING fts5(content, "
                "tokenize='porter unicode61')"
            )
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table}_info (key TEXT PRIMARY KEY, value TEXT)"
            )
            self._dimensions = self._stored_dimensions()
            if self._dimensions is not None:
                self._check_columns()

    def _stored_dimensions(self) -> int | None:
        """The vectors' length as recorded when the vec0 table was made (None: not yet)."""
        row = self._db.execute(
            f"SELECT value FROM {self.table}_info WHERE key = 'dimensions'"
        ).fetchone()
        return int(row[0]) if row is not None else None

    def _check_columns(self) -> None:
        row = self._db.execute(
            f"SELECT value FROM {self.table}_info WHERE key = 'metadata_columns'"
        ).fetchone()
        stored = json.loads(row[0]) if row else {}
        declared = {k: COLUMN_TYPES[t] for k, t in self.metadata_columns.items()}
        if stored != declared:
            raise ValueError(
                f"the store {self.table!r} in {self.path} was created with metadata_columns "
                f"{stored}, not {declared}: open it with the same columns, or use a new table"
            )

    def _ensure_vectors(self, dimensions: int) -> None:
        """Create the vec0 table on the first insert, when the vectors' length is known."""
        if self._dimensions is not None:
            if dimensions != self._dimensions:
                raise ValueError(
                    f"the store {self.table!r} holds {self._dimensions}-dimension vectors; "
                    f"these have {dimensions}: use the embedder the store was filled with"
                )
            return
        columns = "".join(
            f", {vec0_column(k)} {COLUMN_TYPES[t]}" for k, t in self.metadata_columns.items()
        )
        self._db.execute(
            f"CREATE VIRTUAL TABLE {self._vec} USING vec0("
            f"embedding float[{dimensions}] distance_metric=cosine{columns})"
        )
        declared = {k: COLUMN_TYPES[t] for k, t in self.metadata_columns.items()}
        self._db.executemany(
            f"INSERT INTO {self.table}_info (key, value) VALUES (?, ?)",
            [("dimensions", str(dimensions)), ("metadata_columns", json.dumps(declared))],
        )
        self._dimensions = dimensions

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                # A vec0 table created in the rolled back transaction is gone again.
                self._dimensions = self._stored_dimensions()
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------------ writing

    def has_document(self, name: str, content_hash: str) -> bool:
        """Whether the document ``name`` is stored with exactly this content hash."""
        with self._lock:
            row = self._db.execute(
                f"SELECT 1 FROM {self._chunks} WHERE name = ? AND content_hash = ? LIMIT 1",
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
        import numpy as np

        rows = [self._column_values(chunk) for chunk in chunks]
        blobs = [np.asarray(v, dtype=np.float32).tobytes() for v in vectors]
        with self._transaction() as db:
            if db.execute(
                f"SELECT 1 FROM {self._chunks} WHERE name = ? AND content_hash = ? LIMIT 1",
                (name, content_hash),
            ).fetchone():
                return False
            self._delete_where(db, "name = ?", [name])
            if not chunks:
                return True
            self._ensure_vectors(len(vectors[0]))
            columns = "".join(f", {vec0_column(k)}" for k in self.metadata_columns)
            marks = ", ?" * len(self.metadata_columns)
            for chunk, blob, values in zip(chunks, blobs, rows, strict=True):
                cursor = db.execute(
                    f"INSERT INTO {self._chunks} (chunk_id, name, idx, content, content_hash, "
                    "metadata) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        chunk.id,
                        chunk.name,
                        chunk.index,
                        chunk.content,
                        content_hash,
                        json.dumps(chunk.metadata, ensure_ascii=False),
                    ),
                )
                rowid = cursor.lastrowid
                db.execute(
                    f"INSERT INTO {self._vec} (rowid, embedding{columns}) VALUES (?, ?{marks})",
                    (rowid, blob, *values),
                )
                db.execute(
                    f"INSERT INTO {self._fts} (rowid, content) VALUES (?, ?)",
                    (rowid, chunk.content),
                )
        return True

    def _column_values(self, chunk: Chunk) -> list[Any]:
        values = []
        for key, kind in self.metadata_columns.items():
            value = chunk.metadata.get(key)
            ok = (
                isinstance(value, bool)
                if kind is bool
                else isinstance(value, kind) and not isinstance(value, bool)
                if kind is not float
                else isinstance(value, int | float) and not isinstance(value, bool)
            )
            if not ok:
                raise ValueError(
                    f"document {chunk.name!r}: metadata[{key!r}] must be a {kind.__name__} "
                    f"(a declared metadata column of this store), not {value!r}"
                )
            values.append(int(bool(value)) if kind is bool else value)
        return values

    def _delete_where(self, db: Any, condition: str, params: Sequence[Any]) -> int:
        ids = [
            row[0] for row in db.execute(f"SELECT id FROM {self._chunks} WHERE {condition}", params)
        ]
        if not ids:
            return 0
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ", ".join("?" for _ in batch)
            if self._dimensions is not None:
                db.execute(f"DELETE FROM {self._vec} WHERE rowid IN ({marks})", batch)
            db.execute(f"DELETE FROM {self._fts} WHERE rowid IN ({marks})", batch)
            db.execute(f"DELETE FROM {self._chunks} WHERE id IN ({marks})", batch)
        return len(ids)

    def delete(self, *, name: str | None = None, filter: Filter | None = None) -> int:
        """Delete the chunks of document ``name`` and/or passing ``filter``; return how many."""
        conditions: list[str] = []
        params: list[Any] = []
        if name is not None:
            conditions.append("name = ?")
            params.append(name)
        if filter is not None:
            sql, filter_params = json_sql(filter)
            conditions.append(sql)
            params.extend(filter_params)
        if not conditions:
            raise ValueError("delete() needs a name or a filter")
        with self._transaction() as db:
            return self._delete_where(db, " AND ".join(conditions), params)

    # ------------------------------------------------------------------ reading

    def vector_search(
        self, vector: Sequence[float], limit: int, filter: Filter | None
    ) -> list[Chunk]:
        """The nearest chunks passing ``filter``, the filter applied inside the KNN query."""
        import numpy as np

        if self._dimensions is None:
            # Another connection may have stored the first document since.
            with self._lock:
                self._dimensions = self._stored_dimensions()
        if self._dimensions is None or limit <= 0:
            return []
        conditions, params, rest = split_for_vec0(filter, self.metadata_columns)
        where = "".join(f" AND v.{c}" for c in conditions)
        if rest is not None:
            sql, rest_params = json_sql(rest)
            where += f" AND v.rowid IN (SELECT id FROM {self._chunks} WHERE {sql})"
            params = [*params, *rest_params]
        query = (
            f"SELECT {_CHUNK_COLUMNS}, v.distance FROM (SELECT v.rowid AS rowid, v.distance "
            f"AS distance FROM {self._vec} AS v WHERE v.embedding MATCH ? AND k = ?{where}) "
            f"AS v JOIN {self._chunks} AS c ON c.id = v.rowid ORDER BY v.distance"
        )
        blob = np.asarray(vector, dtype=np.float32).tobytes()
        with self._lock:
            rows = self._db.execute(query, (blob, min(limit, _MAX_K), *params)).fetchall()
        return [_chunk(row, 1.0 - float(row[6])) for row in rows]

    def keyword_search(self, query: str, limit: int, filter: Filter | None) -> list[Chunk]:
        """Chunks matching any word of ``query``, best BM25 first, passing ``filter``."""
        terms = keyword_terms(query)
        if not terms or limit <= 0:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        where = ""
        params: list[Any] = [match]
        if filter is not None:
            sql, filter_params = json_sql(filter, "c.metadata")
            where = f" AND {sql}"
            params.extend(filter_params)
        sql = (
            f"SELECT {_CHUNK_COLUMNS}, bm25({self._fts}) AS rank FROM {self._fts} AS f "
            f"JOIN {self._chunks} AS c ON c.id = f.rowid WHERE {self._fts} MATCH ?{where} "
            "ORDER BY rank LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [_chunk(row, -float(row[6])) for row in rows]

    def metadata_keys(self) -> list[str]:
        """Every metadata key in use, sorted."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT DISTINCT j.key FROM {self._chunks} AS c, json_each(c.metadata) AS j "
                "ORDER BY j.key"
            ).fetchall()
        return [row[0] for row in rows]

    def count(self) -> int:
        """How many chunks are stored."""
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) FROM {self._chunks}").fetchone()[0])

    def all_chunks(self) -> list[Chunk]:
        """Every stored chunk (with its vector), for checks and exports."""
        import numpy as np

        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CHUNK_COLUMNS}, c.id FROM {self._chunks} AS c ORDER BY c.id"
            ).fetchall()
            vectors: dict[int, bytes] = {}
            if self._dimensions is not None:
                vectors = dict(
                    self._db.execute(f"SELECT rowid, embedding FROM {self._vec}").fetchall()
                )
        found = []
        for row in rows:
            chunk = _chunk(row, None)
            blob = vectors.get(row[6])
            if blob is not None:
                chunk.embedding = np.frombuffer(blob, dtype=np.float32).tolist()
            found.append(chunk)
        return found

    def drop(self) -> None:
        """Delete the store's tables and everything in them."""
        with self._lock:
            for name in (self._vec, self._fts, self._chunks, f"{self.table}_info"):
                self._db.execute(f"DROP TABLE IF EXISTS {name}")
            self._dimensions = None
            self._create_tables()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SqliteVecDb({self.path!r}, table={self.table!r})"


def _chunk(row: Sequence[Any], score: float | None) -> Chunk:
    return Chunk(
        id=row[0],
        name=row[1],
        index=row[2],
        content=row[3],
        content_hash=row[4],
        metadata=json.loads(row[5]),
        score=score,
    )
