"""Knowledge bases: documents an agent can search.

```python
from pilothouse.knowledge import Knowledge, SqliteVecDb, EQ, GT

kb = Knowledge(vector_db=SqliteVecDb("kb.db"))        # the embedded MiniLM embedder, offline
kb.insert(path="docs/", metadata={"tag": "docs"})
kb.search("How do I deploy?", filters=EQ("tag", "docs") & GT("year", 2020))
agent = Agent(knowledge=kb, search_knowledge=True)
```

Everything here is imported on first use, so ``import pilothouse.knowledge`` costs nothing;
the heavy parts (numpy, onnxruntime, sqlite-vec, psycopg) load when a store or embedder is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.knowledge.chunking import Chunker
    from pilothouse.knowledge.document import Chunk, Reference, SourceDocument
    from pilothouse.knowledge.embedders import Embedder, MiniLMEmbedder, OpenAIEmbedder
    from pilothouse.knowledge.filters import (
        AND,
        CONTAINS,
        EQ,
        GT,
        GTE,
        IN,
        LT,
        LTE,
        NEQ,
        NOT,
        OR,
        STARTSWITH,
        Filter,
    )
    from pilothouse.knowledge.knowledge import InsertResult, Knowledge
    from pilothouse.knowledge.readers import ReaderError
    from pilothouse.knowledge.vectordb import PgVectorDb, SearchType, SqliteVecDb, VectorDb

_EXPORTS = {
    "Knowledge": "knowledge",
    "InsertResult": "knowledge",
    "Chunker": "chunking",
    "Chunk": "document",
    "Reference": "document",
    "SourceDocument": "document",
    "Embedder": "embedders",
    "MiniLMEmbedder": "embedders",
    "OpenAIEmbedder": "embedders",
    "ReaderError": "readers",
    "PgVectorDb": "vectordb",
    "SearchType": "vectordb",
    "SqliteVecDb": "vectordb",
    "VectorDb": "vectordb",
    "AND": "filters",
    "CONTAINS": "filters",
    "EQ": "filters",
    "GT": "filters",
    "GTE": "filters",
    "IN": "filters",
    "LT": "filters",
    "LTE": "filters",
    "NEQ": "filters",
    "NOT": "filters",
    "OR": "filters",
    "STARTSWITH": "filters",
    "Filter": "filters",
}

__all__ = [
    "AND",
    "CONTAINS",
    "EQ",
    "GT",
    "GTE",
    "IN",
    "LT",
    "LTE",
    "NEQ",
    "NOT",
    "OR",
    "STARTSWITH",
    "Chunk",
    "Chunker",
    "Embedder",
    "Filter",
    "InsertResult",
    "Knowledge",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "PgVectorDb",
    "ReaderError",
    "Reference",
    "SearchType",
    "SourceDocument",
    "SqliteVecDb",
    "VectorDb",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pilothouse.knowledge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pilothouse.knowledge.{module}"), name)
    globals()[name] = value
    return value
