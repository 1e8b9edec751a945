"""The embedded MiniLM embedder: offline, pinned files, sensible vectors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pilothouse.knowledge.embedders.minilm import (
    MODEL_SHA256,
    EmbedderFileError,
    MiniLMEmbedder,
    default_model_path,
    default_tokenizer_path,
    verify_file,
)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_normalised_and_meaningful() -> None:
    embedder = MiniLMEmbedder()
    texts = [
        "How do I reset my password?",
        "Steps to change a forgotten password",
        "The kettle boils water in ninety seconds.",
    ]
    vectors = embedder.embed(texts)
    assert len(vectors) == 3 and all(len(v) == 384 for v in vectors)
    assert all(abs(_cos(v, v) - 1.0) < 1e-4 for v in vectors)
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2]) + 0.3


def test_batching_and_order_do_not_change_vectors() -> None:
    texts = [f"sentence {i} " + "word " * (i % 7) for i in range(11)]
    one_by_one = [MiniLMEmbedder(batch_size=1).embed([t])[0] for t in texts]
    batched = MiniLMEmbedder(batch_size=4).embed(texts)
    for a, b in zip(one_by_one, batched, strict=True):
        assert _cos(a, b) > 0.9999
    assert MiniLMEmbedder().embed([]) == []
    query = MiniLMEmbedder().embed_query(texts[3])
    assert _cos(query, batched[3]) > 0.9999


async def test_async_embedding_matches_sync() -> None:
    embedder = MiniLMEmbedder()
    assert (
        _cos((await embedder.aembed(["hello world"]))[0], embedder.embed_query("hello world"))
        > 0.9999
    )


def test_long_texts_are_cut_at_256_word_pieces() -> None:
    embedder = MiniLMEmbedder()
    base = "alpha beta gamma " * 100
    a, b = embedder.embed([base, base + " totally different ending " * 50])
    assert _cos(a, b) > 0.9999


def test_the_pinned_files_are_checked(tmp_path: Path) -> None:
    verify_file(default_model_path(), MODEL_SHA256, "model")
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(default_model_path(), tampered)
    with tampered.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EmbedderFileError, match="sha256"):
        MiniLMEmbedder(model_path=tampered).embed(["x"])
    with pytest.raises(EmbedderFileError, match="does not exist"):
        MiniLMEmbedder(model_path=tmp_path / "nothing.onnx").embed(["x"])
    assert default_tokenizer_path().is_file()
    assert (default_tokenizer_path().parent / "NOTICE").is_file()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)
    with pytest.raises(TypeError, match="list of texts"):
        MiniLMEmbedder().embed("one text")  # type: ignore[arg-type]
