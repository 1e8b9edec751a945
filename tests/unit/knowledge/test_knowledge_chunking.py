"""Chunking along headings and paragraphs."""

from __future__ import annotations

import pytest

from pilothouse.knowledge.chunking import Chunker


def test_small_document_is_one_chunk() -> None:
    assert Chunker().split("# Title\n\nOne paragraph.\n\nAnother.") == [
        "# Title\n\nOne paragraph.\n\nAnother."
    ]


def test_a_heading_starts_a_new_chunk() -> None:
    text = "# Install\n\nRun pip.\n\n## Configure\n\nSet the key.\n\nIntro text."
    assert Chunker().split(text) == [
        "# Install\n\nRun pip.",
        "## Configure\n\nSet the key.\n\nIntro text.",
    ]


def test_paragraphs_are_packed_whole_and_the_heading_repeated() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(6)]
    text = "## Section\n\n" + "\n\n".join(p.strip() for p in paragraphs)
    chunks = Chunker(chunk_size=400).split(text)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= 400
        assert chunk.startswith("## Section\n\n")
    # Every paragraph is in exactly one chunk, unbroken.
    for paragraph in paragraphs:
        assert sum(paragraph.strip() in chunk for chunk in chunks) == 1


def test_without_repeated_headings_only_the_first_chunk_has_it() -> None:
    text = "## Section\n\n" + "\n\n".join("word " * 40 for _ in range(4))
    chunks = Chunker(chunk_size=300, repeat_headings=False).split(text)
    assert chunks[0].startswith("## Section")
    assert not any(c.startswith("## Section") for c in chunks[1:])


def test_a_long_paragraph_is_cut_at_sentences_then_words() -> None:
    sentences = [f"Sentence number {i} says something useful." for i in range(40)]
    chunks = Chunker(chunk_size=200).split(" ".join(sentences))
    assert all(len(c) <= 200 for c in chunks)
    assert " ".join(chunks) == " ".join(sentences)
    assert all(c.endswith(".") for c in chunks)
    giant = "x" * 450
    cut = Chunker(chunk_size=200).split(giant)
    assert "".join(cut) == giant and all(len(c) <= 200 for c in cut)


def test_fenced_code_is_one_paragraph_and_hides_headings() -> None:
    text = "Intro.\n\n```\n# not a heading\n\nstill code\n```\n\nAfter."
    assert Chunker().split(text) == [text]


def test_empty_text_has_no_chunks_and_size_is_checked() -> None:
    assert Chunker().split("  \n\n ") == []
    with pytest.raises(ValueError, match="chunk_size"):
        Chunker(chunk_size=10)
    assert Chunker(chunk_size=500).settings != Chunker(chunk_size=600).settings
