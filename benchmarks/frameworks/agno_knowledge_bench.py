"""agno's Knowledge on the knowledge benchmark's collection, for ``benchmarks/knowledge.py``.

Runs under ``benchmarks/.venv-others/bin/python``; prints one JSON object. agno 3.1.10's
``Knowledge`` with its ``PgVector`` (HNSW, cosine; agno's defaults otherwise: its text reader
and chunking) on the PostgreSQL server the runner started, the same 150 manuals given as
``text_content`` with the same names and metadata, and the same embedder: Pilothouse's
MiniLMEmbedder (int8 ONNX) behind agno's ``Embedder`` interface, batched.

* ingestion: ``Knowledge.insert`` per manual (reading, chunking, embedding, storing), then the
  same inserts again;
* recall@5 on the 150 questions, counted exactly as for Pilothouse (a top-5 chunk from the right
  manual containing the answer sentence), for vector, keyword and hybrid search and for vector
  search filtered on the category;
* query latency of ``PgVector.search`` at 10,000 chunks, filled through ``PgVector.insert`` with
  the runner's synthetic vectors (an embedder that looks the vector of each synthetic text up),
  the query vector given the same way, so embedding time is excluded as on our side.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import statistics
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


h = _load(HERE.parent / "harness.py", "bench_harness")
h.apply_quiet_env()
h.block_network()
corpus = _load(HERE.parent / "knowledge_corpus.py", "knowledge_corpus")
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from agno.knowledge.document import Document  # noqa: E402
from agno.knowledge.embedder.base import Embedder  # noqa: E402
from agno.knowledge.knowledge import Knowledge  # noqa: E402
from agno.vectordb.pgvector import PgVector, SearchType  # noqa: E402

from pilothouse.knowledge.embedders.minilm import MiniLMEmbedder  # noqa: E402

# agno logs every search at INFO on stdout; the result is the last line of stdout.
logging.getLogger("agno").setLevel(logging.WARNING)

CATEGORIES = [f"c{i}" for i in range(10)]


class MiniLM(Embedder):
    """Pilothouse's embedded MiniLM as an agno embedder; ``table`` answers known texts."""

    def __init__(self) -> None:
        super().__init__(dimensions=384, enable_batch=True, batch_size=32)
        self.model = MiniLMEmbedder()
        self.table: dict[str, list[float]] = {}

    def _many(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.table]
        vectors = dict(zip(missing, self.model.embed(missing), strict=True)) if missing else {}
        return [self.table.get(t) or vectors[t] for t in texts]

    def get_embedding(self, text: str) -> list[float]:
        return self._many([text])[0]

    def get_embedding_and_usage(self, text: str) -> tuple[list[float], dict[str, Any] | None]:
        return self.get_embedding(text), None

    async def async_get_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.get_embedding, text)

    async def async_get_embedding_and_usage(
        self, text: str
    ) -> tuple[list[float], dict[str, Any] | None]:
        return await self.async_get_embedding(text), None

    def get_embeddings_batch_and_usage(
        self, texts: list[str]
    ) -> tuple[list[list[float]], list[dict[str, Any] | None]]:
        return self._many(texts), [None] * len(texts)

    async def async_get_embeddings_batch_and_usage(
        self, texts: list[str]
    ) -> tuple[list[list[float]], list[dict[str, Any] | None]]:
        return await asyncio.to_thread(self.get_embeddings_batch_and_usage, texts)


def answered(found: list[Document], question: Any) -> bool:
    return any(d.name == question.document and question.answer in d.content for d in found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    documents, questions = corpus.build()
    embedder = MiniLM()
    embedder.get_embedding("warm up")
    result: dict[str, Any] = {"ingest": {}, "recall": {}, "latency": {}}

    db = PgVector(table_name=f"agno_{uuid.uuid4().hex[:10]}", schema="agno", db_url=url,
                  embedder=embedder, search_type=SearchType.vector)  # fmt: skip
    kb = Knowledge(vector_db=db)
    started = time.perf_counter()
    for d in documents:
        kb.insert(name=d.name, text_content=d.text, metadata=d.metadata)
    seconds = time.perf_counter() - started
    chunks = db.get_count()
    started = time.perf_counter()
    for d in documents:
        kb.insert(name=d.name, text_content=d.text, metadata=d.metadata, skip_if_exists=True)
    again = time.perf_counter() - started
    assert db.get_count() == chunks
    result["ingest"] = {
        "chunks": chunks,
        "seconds": seconds,
        "chunks_per_s": chunks / seconds,
        "reinsert_unchanged_s": again,
    }
    for kind in ("vector", "keyword", "hybrid", "vector, category filter"):
        at5 = at1 = 0
        for q in questions:
            filters = {"category": q.category} if "filter" in kind else None
            found = kb.search(
                q.text, max_results=5, filters=filters, search_type=kind.split(",")[0]
            )
            at5 += answered(found, q)
            at1 += answered(found[:1], q)
        result["recall"][kind] = at5 / len(questions)
        result["recall"][f"{kind} @1"] = at1 / len(questions)
    base = np.array(embedder.model.embed([c for c in _chunk_texts(db)]), dtype=np.float32)
    db.drop()

    queries = [q.text for q in questions]
    for text, vector in zip(queries, embedder.model.embed(queries), strict=True):
        embedder.table[text] = vector
    sizes = (2_000,) if args.quick else (10_000,)
    for size in sizes:
        result["latency"][str(size)] = latency(
            url, embedder, base, queries, size, 100 if args.quick else 300
        )
    from importlib.metadata import version

    result["agno"] = version("agno")
    print(json.dumps(result))


def _chunk_texts(db: PgVector) -> list[str]:
    from sqlalchemy import text

    with db.Session() as session:
        rows = session.execute(text(f'SELECT content FROM "{db.schema}"."{db.table_name}"'))
        return [row[0] for row in rows]


def latency(
    url: str, embedder: MiniLM, base: np.ndarray, queries: list[str], size: int, count: int
) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    vectors = base[rng.integers(0, len(base), size=size)]
    vectors = vectors + rng.normal(scale=0.5 / np.sqrt(base.shape[1]), size=vectors.shape)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    db = PgVector(table_name=f"agno_{uuid.uuid4().hex[:10]}", schema="agno", db_url=url,
                  embedder=embedder, search_type=SearchType.vector)  # fmt: skip
    db.create()
    docs = []
    for i, vector in enumerate(vectors):
        content = f"synthetic chunk {i}"
        embedder.table[content] = vector.tolist()
        docs.append(Document(content=content, name=f"synthetic-{i // 500}",
                             meta_data={"category": CATEGORIES[i % 10], "n": i}))  # fmt: skip
    started = time.perf_counter()
    for start in range(0, size, 500):
        db.insert(
            content_hash=f"synthetic-{start}", documents=docs[start : start + 500], batch_size=500
        )
    figures: dict[str, Any] = {"store_ingest_chunks_per_s": size / (time.perf_counter() - started)}
    for label, filters in (("no filter", None), ("EQ (10%)", {"category": "c3"})):
        for q in queries[:5]:
            db.search(q, limit=5, filters=filters)
        samples = []
        for i in range(count):
            started = time.perf_counter()
            found = db.search(queries[i % len(queries)], limit=5, filters=filters)
            samples.append(time.perf_counter() - started)
            assert len(found) == 5, (label, len(found))
        ordered = sorted(samples)
        figures[label] = {
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[round(0.99 * (len(ordered) - 1))] * 1000,
        }
    db.drop()
    return figures


if __name__ == "__main__":
    main()
