"""What a knowledge base holds and returns: source documents, their chunks, and references."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chunk", "Reference", "SourceDocument", "content_hash"]


@dataclass(slots=True)
class SourceDocument:
    """A document as a reader returned it, before chunking.

    ``name`` identifies the document in the knowledge base: inserting a document with the
    same name again replaces it (or changes nothing when its content hash is the same).
    """

    name: str
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)


def content_hash(name: str, content: str, metadata: dict[str, Any], settings: str) -> str:
    """The sha256 of everything a document's stored chunks depend on.

    ``settings`` describes the chunking and the embedder, so that changing either re-embeds
    the document on its next insert.
    """
    payload = json.dumps(
        [name, content, metadata, settings], sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Chunk:
    """One stored piece of a document, with its search score when it comes from a search.

    ``id`` is stable: the document's content hash and the chunk's position, so the same
    document inserted twice yields the same ids.
    """

    id: str
    name: str
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    index: int = 0
    content_hash: str = ""
    score: float | None = None
    embedding: list[float] | None = field(default=None, repr=False)

    def to_reference(self, query: str) -> Reference:
        """The reference a run records for this chunk."""
        return Reference(
            name=self.name,
            chunk_id=self.id,
            score=self.score,
            metadata=dict(self.metadata),
            content=self.content,
            query=query,
        )


@dataclass(slots=True)
class Reference:
    """A chunk of the knowledge base that a run used: listed on ``RunOutput.references``."""

    name: str
    chunk_id: str
    score: float | None
    metadata: dict[str, Any]
    content: str
    query: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "chunk_id": self.chunk_id,
            "score": self.score,
            "metadata": self.metadata,
            "content": self.content,
            "query": self.query,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        """Rebuild a reference from `to_dict` output."""
        return cls(
            name=data.get("name", ""),
            chunk_id=data.get("chunk_id", ""),
            score=data.get("score"),
            metadata=dict(data.get("metadata") or {}),
            content=data.get("content", ""),
            query=data.get("query", ""),
        )
