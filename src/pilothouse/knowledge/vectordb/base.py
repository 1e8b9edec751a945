"""`VectorDb`: where a knowledge base keeps its chunks, vectors and metadata.

A store implements the storage primitives; `search` on top of them dispatches on the search
type and fuses the two rankings of a hybrid search (reciprocal rank fusion). The primitives are
synchronous; their async forms run them in a worker thread, so that no store call ever blocks
an event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from enum import StrEnum

from pilothouse.knowledge.document import Chunk
from pilothouse.knowledge.filters import Filter

__all__ = ["SearchType", "VectorDb", "keyword_terms", "reciprocal_rank_fusion"]

# The usual constant of reciprocal rank fusion: high enough that the first few ranks of either
# list do not drown the other list.
RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)


class SearchType(StrEnum):
    """How a knowledge base is searched."""

    vector = "vector"
    keyword = "keyword"
    hybrid = "hybrid"


def keyword_terms(query: str, limit: int = 32) -> list[str]:
    """The words of a query, lower-cased and de-duplicated, for a full-text search."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        seen.setdefault(word, None)
        if len(seen) >= limit:
            break
    return list(seen)


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Chunk]], limit: int) -> list[Chunk]:
    """Merge rankings: each chunk scores the sum of 1 / (60 + rank) over the lists it is in."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    for ranking in rankings:
        for rank, chunk in enumerate(ranking, start=1):
            scores[chunk.id] = scores.get(chunk.id, 0.0) + 1.0 / (RRF_K + rank)
            chunks.setdefault(chunk.id, chunk)
    ordered = sorted(scores, key=lambda chunk_id: scores[chunk_id], reverse=True)[:limit]
    fused = []
    for chunk_id in ordered:
        chunk = chunks[chunk_id]
        chunk.score = scores[chunk_id]
        fused.append(chunk)
    return fused


class VectorDb:
    """Base class of the vector stores (`SqliteVecDb`, `PgVectorDb`).

    Every document is stored as chunks that share its ``name`` and ``content_hash``. Filters
    are applied inside the store's query, before the nearest chunks are chosen.
    """

    # How many more candidates than asked for each side of a hybrid search fetches.
    hybrid_candidates: int = 4

    # ---- primitives, implemented by each store ----

    def has_document(self, name: str, content_hash: str) -> bool:
        """Whether the document ``name`` is stored with exactly this content hash."""
        raise NotImplementedError

    def replace_document(
        self,
        name: str,
        content_hash: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
    ) -> bool:
        """Store a document's chunks in place of any other version of ``name``, atomically.

        Returns False, changing nothing, when that version is stored already.
        """
        raise NotImplementedError

    def vector_search(
        self, vector: Sequence[float], limit: int, filter: Filter | None
    ) -> list[Chunk]:
        """The ``limit`` chunks nearest to ``vector`` among those passing ``filter``.

        ``score`` is the cosine similarity.
        """
        raise NotImplementedError

    def keyword_search(self, query: str, limit: int, filter: Filter | None) -> list[Chunk]:
        """The ``limit`` chunks that best match the words of ``query`` (full-text search)."""
        raise NotImplementedError

    def delete(self, *, name: str | None = None, filter: Filter | None = None) -> int:
        """Delete the chunks of document ``name`` and/or passing ``filter``; return how many."""
        raise NotImplementedError

    def metadata_keys(self) -> list[str]:
        """Every metadata key in use, sorted."""
        raise NotImplementedError

    def count(self) -> int:
        """How many chunks are stored."""
        raise NotImplementedError

    def drop(self) -> None:
        """Delete the store's tables and everything in them."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the store's connection."""

    # ---- built on the primitives ----

    def search(
        self,
        query: str,
        vector: Sequence[float] | None,
        *,
        limit: int,
        filter: Filter | None,
        search_type: SearchType,
    ) -> list[Chunk]:
        """Search by vector, by keywords, or both fused (hybrid)."""
        if search_type is SearchType.keyword:
            return self.keyword_search(query, limit, filter)
        assert vector is not None, "vector and hybrid searches need the query's vector"
        if search_type is SearchType.vector:
            return self.vector_search(vector, limit, filter)
        wide = max(limit * self.hybrid_candidates, 20)
        by_vector = self.vector_search(vector, wide, filter)
        by_words = self.keyword_search(query, wide, filter)
        return reciprocal_rank_fusion([by_vector, by_words], limit)

    async def asearch(
        self,
        query: str,
        vector: Sequence[float] | None,
        *,
        limit: int,
        filter: Filter | None,
        search_type: SearchType,
    ) -> list[Chunk]:
        """Async `search`, in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.search(query, vector, limit=limit, filter=filter, search_type=search_type)
        )
