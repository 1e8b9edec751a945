"""Every filter operator on every store, against a brute-force reference.

The same 240 chunks (random unit vectors; metadata of every kind, some keys missing, lists,
look-alike values such as "7" and 7) go into SQLite (through the JSON side table, and with
vec0 metadata columns) and PostgreSQL with pgvector. For each filter, the reference is
`Filter.matches` over every chunk, then the exact cosine ranking in numpy. A search asking for
all the chunks must return exactly those that pass; a top-5 search must return the reference's
top 5 (PostgreSQL's HNSW index is approximate, so there a top-5 may differ by one neighbour);
and deleting with the filter must delete exactly the chunks that pass.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from pilothouse.knowledge import (
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
    Chunk,
    Filter,
    PgVectorDb,
    SqliteVecDb,
)
from pilothouse.knowledge.filters import to_filter
from pilothouse.knowledge.vectordb.base import VectorDb

N = 240
DIMS = 16
TAGS = ["docs", "blog", "Docs", "api", "doc", "7"]


def _metadata(rng: random.Random, i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "tag": rng.choice(TAGS),
        "year": rng.randint(2015, 2025),
        "score": round(rng.uniform(0, 1), 3),
        "draft": rng.random() < 0.3,
    }
    if rng.random() < 0.7:
        meta["langs"] = rng.sample(["en", "de", "fr", "es"], k=rng.randint(0, 3))
    if rng.random() < 0.6:
        meta["title"] = rng.choice(
            ["Getting started", "getting there", "Guide to deploys", "Ünïcode tïtle", "API"]
        )
    if rng.random() < 0.5:
        # A key whose type varies: str, int, float or bool.
        meta["mixed"] = rng.choice(["7", 7, 7.0, 3, "x", True, False, 1])
    return meta


def _data() -> tuple[list[Chunk], np.ndarray]:
    rng = random.Random(1234)
    vectors = np.random.default_rng(1234).normal(size=(N, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [
        Chunk(
            id=f"c{i:03d}",
            name=f"doc{i // 3}",
            content=f"chunk {i}",
            metadata=_metadata(rng, i),
            index=i % 3,
        )
        for i in range(N)
    ]
    return chunks, vectors


CHUNKS, VECTORS = _data()
QUERY = VECTORS[0] * 0.3 + VECTORS[1] * 0.7
QUERY = QUERY / np.linalg.norm(QUERY)

FILTERS: dict[str, Any] = {
    "dict": {"tag": "docs", "draft": False},
    "dict-list": {"tag": ["docs", "api"]},
    "EQ-str": EQ("tag", "docs"),
    "EQ-str-case": EQ("tag", "Docs"),
    "EQ-int": EQ("year", 2020),
    "EQ-float-int": EQ("year", 2020.0),
    "EQ-bool": EQ("draft", True),
    "EQ-mixed-str": EQ("mixed", "7"),
    "EQ-mixed-num": EQ("mixed", 7),
    "EQ-mixed-bool": EQ("mixed", True),
    "EQ-missing": EQ("nothere", 1),
    "NEQ-str": NEQ("tag", "docs"),
    "NEQ-partial-key": NEQ("title", "API"),
    "NEQ-bool": NEQ("draft", True),
    "GT-int": GT("year", 2020),
    "GTE-int": GTE("year", 2020),
    "LT-float": LT("score", 0.25),
    "LTE-float": LTE("score", 0.5),
    "GT-int-float": GT("year", 2019.5),
    "GT-str": GT("tag", "api"),
    "LTE-str": LTE("title", "Guide"),
    "GT-mixed": GT("mixed", 2),
    "GT-str-vs-number": GT("tag", 5),
    "IN-str": IN("tag", ["docs", "api"]),
    "IN-int": IN("year", [2016, 2018, 2024]),
    "IN-mixed": IN("mixed", ["7", 3, False]),
    "IN-empty": IN("tag", []),
    "CONTAINS-substring": CONTAINS("title", "start"),
    "CONTAINS-unicode": CONTAINS("title", "ïc"),
    "CONTAINS-list": CONTAINS("langs", "de"),
    "CONTAINS-case": CONTAINS("tag", "Do"),
    "CONTAINS-number-list": CONTAINS("year", 2020),
    "STARTSWITH": STARTSWITH("title", "Get"),
    "STARTSWITH-lower": STARTSWITH("title", "get"),
    "STARTSWITH-tag": STARTSWITH("tag", "doc"),
    "AND": AND(EQ("tag", "docs"), GT("year", 2018)),
    "OR": OR(EQ("tag", "blog"), LT("score", 0.1)),
    "OR-columns": EQ("tag", "api") | GTE("year", 2024),
    "NOT-leaf": NOT(EQ("tag", "docs")),
    "NOT-missing": ~EQ("title", "API"),
    "NOT-GT": ~GT("year", 2020),
    "NOT-OR": ~(EQ("tag", "docs") | CONTAINS("langs", "en")),
    "nested": (EQ("draft", False) & (IN("tag", ["docs", "blog"]) | STARTSWITH("title", "Guide")))
    & ~CONTAINS("langs", "fr"),
    "mixed-columns-and-json": EQ("tag", "docs") & CONTAINS("langs", "en") & LTE("year", 2022),
    "rare": EQ("tag", "api") & EQ("year", 2015),
}

STORES = [
    "sqlite",
    "sqlite-columns",
    pytest.param("postgres", marks=pytest.mark.integration),
]


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> VectorDb:
    if kind == "sqlite":
        return SqliteVecDb(tmp_path / "kb.db")
    if kind == "sqlite-columns":
        columns = {"tag": str, "year": int, "score": float, "draft": bool}
        return SqliteVecDb(tmp_path / "kb.db", metadata_columns=columns)
    url = request.getfixturevalue("pgvector_url")
    return PgVectorDb(url, table=f"ref_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[VectorDb]:
    opened = _open(request.param, request, tmp_path)
    by_name: dict[str, list[int]] = {}
    for i, chunk in enumerate(CHUNKS):
        by_name.setdefault(chunk.name, []).append(i)
    for name, indexes in by_name.items():
        opened.replace_document(
            name, f"hash-{name}", [CHUNKS[i] for i in indexes], [VECTORS[i] for i in indexes]
        )
    yield opened
    opened.drop()
    opened.close()


def _reference(condition: Filter) -> list[str]:
    passing = [i for i, c in enumerate(CHUNKS) if condition.matches(c.metadata)]
    order = sorted(passing, key=lambda i: -float(VECTORS[i] @ QUERY))
    return [CHUNKS[i].id for i in order]


@pytest.mark.timeout(120)
def test_every_operator_matches_the_reference(store: VectorDb) -> None:
    exact = isinstance(store, SqliteVecDb)
    checked = 0
    for label, given in FILTERS.items():
        condition = to_filter(given)
        assert condition is not None
        expected = _reference(condition)
        everything = store.vector_search(QUERY.tolist(), N, condition)
        assert sorted(c.id for c in everything) == sorted(expected), label
        top = [c.id for c in store.vector_search(QUERY.tolist(), 5, condition)]
        assert len(top) == min(5, len(expected)), label
        assert set(top) <= set(expected), label
        if exact:
            assert top == expected[:5], label
        else:
            assert len(set(top) & set(expected[:5])) >= len(top) - 1, label
        for chunk in store.vector_search(QUERY.tolist(), 3, condition):
            assert chunk.score == pytest.approx(float(VECTORS[int(chunk.id[1:])] @ QUERY), abs=1e-4)
        checked += 1
    assert checked == len(FILTERS)
    # Filters that select something and filters that select nothing are both exercised.
    sizes = [len(_reference(to_filter(f))) for f in FILTERS.values()]  # type: ignore[arg-type]
    assert 0 in sizes and max(sizes) > N // 2 and any(0 < s < 5 for s in sizes)


def test_keyword_search_applies_filters(store: VectorDb) -> None:
    for label in ("EQ-str", "OR", "NOT-OR", "CONTAINS-list", "nested"):
        condition = to_filter(FILTERS[label])
        assert condition is not None
        found = store.keyword_search("chunk", N, condition)
        assert sorted(c.id for c in found) == sorted(_reference(condition)), label


@pytest.mark.parametrize(
    "label", ["OR", "NOT-leaf", "CONTAINS-list", "STARTSWITH", "mixed-columns-and-json"]
)
def test_delete_removes_exactly_what_passes(store: VectorDb, label: str) -> None:
    condition = to_filter(FILTERS[label])
    assert condition is not None
    expected = set(_reference(condition))
    assert store.delete(filter=condition) == len(expected)
    left = {c.id for c in store.vector_search(QUERY.tolist(), N, None)}
    assert left == {c.id for c in CHUNKS} - expected
