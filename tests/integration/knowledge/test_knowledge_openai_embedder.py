"""OpenAIEmbedder through the official SDK against llama-cpp-python's /v1/embeddings."""

from __future__ import annotations

import math

import pytest

from pilothouse.knowledge import Knowledge, OpenAIEmbedder, SqliteVecDb

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_embeddings_sync_and_async_agree(embeddings_server: str) -> None:
    import asyncio

    embedder = OpenAIEmbedder("smollm2", base_url=embeddings_server, batch_size=2)
    texts = ["The kettle boils water.", "Deploy with make deploy.", "The kettle boils water."]
    vectors = embedder.embed(texts)
    assert len(vectors) == 3 and len(vectors[0]) == embedder.dimensions == 576
    assert _cos(vectors[0], vectors[2]) > 0.999  # same text, same vector, across batches
    assert _cos(vectors[0], vectors[1]) < 0.999
    again = asyncio.run(embedder.aembed(texts[:1]))
    assert _cos(again[0], vectors[0]) > 0.999


def test_a_knowledge_base_on_the_server_embeddings(embeddings_server: str) -> None:
    kb = Knowledge(
        vector_db=SqliteVecDb(), embedder=OpenAIEmbedder("smollm2", base_url=embeddings_server)
    )
    kb.insert(
        text_content="Zephyr kettles boil water quickly.", name="kettle", metadata={"tag": "home"}
    )
    kb.insert(
        text_content="Servers are deployed with make deploy.",
        name="deploy",
        metadata={"tag": "ops"},
    )
    found = kb.search("kettle", max_results=2)
    assert {c.name for c in found} == {"kettle", "deploy"}
    assert [c.name for c in kb.search("kettle", filters={"tag": "ops"})] == ["deploy"]
    assert kb.insert(
        text_content="Zephyr kettles boil water quickly.", name="kettle", metadata={"tag": "home"}
    ).unchanged


def test_a_server_that_is_down_is_a_clear_error() -> None:
    import openai
    from serverkit import free_port

    embedder = OpenAIEmbedder(
        "x", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0, timeout=5
    )
    with pytest.raises(openai.APIConnectionError):
        embedder.embed(["hello"])
