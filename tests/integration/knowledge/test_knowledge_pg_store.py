"""PgVectorDb against a real PostgreSQL with pgvector: schema, documents, concurrency."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from pilothouse.knowledge import EQ, Chunk, Knowledge, PgVectorDb

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _chunks(name: str, texts: list[str], metadata: dict[str, object]) -> list[Chunk]:
    return [
        Chunk(
            id=f"{name}-{i}-{uuid.uuid4().hex[:6]}",
            name=name,
            content=t,
            metadata=dict(metadata),
            index=i,
        )
        for i, t in enumerate(texts)
    ]


def _unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


@pytest.fixture
def table(pgvector_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    PgVectorDb(pgvector_url, table=name, schema="kb_tests").drop()


def test_a_second_connection_sees_the_first_ones_table(pgvector_url: str, table: str) -> None:
    reader = PgVectorDb(pgvector_url, table=table, schema="kb_tests")
    assert reader.vector_search(_unit(1, 0), 5, None) == [] and reader.count() == 0
    writer = PgVectorDb(pgvector_url, table=table, schema="kb_tests")
    assert writer.replace_document("a", "h1", _chunks("a", ["one"], {"tag": "x"}), [_unit(1, 0)])
    assert [c.name for c in reader.vector_search(_unit(1, 0), 5, None)] == ["a"]
    assert reader.has_document("a", "h1") and not reader.has_document("a", "h2")
    with pytest.raises(ValueError, match="2-dimension vectors; these have 3"):
        reader.replace_document("b", "h", _chunks("b", ["x"], {}), [_unit(1, 0, 0)])
    assert reader.count() == 1
    assert reader.metadata_keys() == ["tag"]
    assert reader.delete(filter=EQ("tag", "x")) == 1 and writer.count() == 0
    reader.close()
    writer.close()


def test_concurrent_inserts_of_one_document_store_it_once(pgvector_url: str, table: str) -> None:
    stores = [PgVectorDb(pgvector_url, table=table, schema="kb_tests") for _ in range(4)]
    stores[0].replace_document("seed", "s", _chunks("seed", ["x"], {}), [_unit(0, 1)])
    results: list[bool] = []

    def insert(store: PgVectorDb) -> None:
        chunks = [Chunk(id=f"doc-{i}", name="doc", content=f"part {i}", index=i) for i in range(3)]
        results.append(
            store.replace_document("doc", "same-hash", chunks, [_unit(1, i) for i in range(3)])
        )

    threads = [threading.Thread(target=insert, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, False, False, True]
    assert stores[0].count() == 4
    for s in stores:
        s.close()


def test_knowledge_on_postgres_keyword_and_hybrid(pgvector_url: str, table: str) -> None:
    kb = Knowledge(vector_db=PgVectorDb(pgvector_url, table=table, schema="kb_tests"))
    kb.insert(
        text_content="# Kettle\n\nThe Zephyr kettle boils water.",
        name="kettle",
        metadata={"tag": "home"},
    )
    kb.insert(
        text_content="# Deploy\n\nShip services with make deploy.",
        name="deploy",
        metadata={"tag": "ops"},
    )
    assert [c.name for c in kb.search("kettles boiling", search_type="keyword")] == ["kettle"]
    assert kb.search("kettle", search_type="keyword", filters={"tag": "ops"}) == []
    assert kb.search("how do I ship a service", search_type="hybrid")[0].name == "deploy"
    assert kb.insert(
        text_content="# Kettle\n\nThe Zephyr kettle boils water.",
        name="kettle",
        metadata={"tag": "home"},
    ).unchanged
    assert kb.delete(name="kettle") == 1
    kb.vector_db.close()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        PgVectorDb("postgresql://x", table="drop table")
    with pytest.raises(ValueError, match="ef_search"):
        PgVectorDb("postgresql://x", ef_search=0)
