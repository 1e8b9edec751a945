"""Splitting a document into chunks along its structure: headings, then paragraphs.

A chunk never spans two sections: a Markdown heading (``#`` to ``######``) starts a new one,
and the chunks of a section after its first repeat the heading, so that each chunk says what
it is about. Within a section whole paragraphs (text between blank lines; a fenced code block
counts as one paragraph) are packed up to ``chunk_size`` characters. Only a paragraph longer
than that is cut, at sentence ends, and a sentence longer than that at spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Chunker"]

_HEADING = re.compile(r"^ {0,3}#{1,6}\s+\S")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True, slots=True)
class Chunker:
    """Cuts text into chunks of at most ``chunk_size`` characters along headings and paragraphs.

    Args:
        chunk_size: The most characters in a chunk (the repeated heading included). The default
            suits the embedded embedder, which reads about 256 word pieces.
        repeat_headings: Start every chunk of a section with the section's heading.
    """

    chunk_size: int = 1000
    repeat_headings: bool = True

    def __post_init__(self) -> None:
        if type(self.chunk_size) is not int or self.chunk_size < 50:
            raise ValueError(f"chunk_size must be a whole number >= 50, not {self.chunk_size!r}")

    @property
    def settings(self) -> str:
        """What the chunks depend on, part of each document's content hash."""
        return f"chunker:{self.chunk_size}:{int(self.repeat_headings)}"

    def split(self, text: str) -> list[str]:
        """Return the chunks of ``text``, in order, none empty."""
        chunks: list[str] = []
        for heading, paragraphs in _sections(text):
            chunks.extend(self._pack(heading, paragraphs))
        return chunks

    def _pack(self, heading: str | None, paragraphs: list[str]) -> Iterator[str]:
        limit = self.chunk_size
        # Room for the heading, so that a cut piece still fits with it.
        room = max(limit - (len(heading) + 2 if heading else 0), limit // 2)
        current: list[str] = [heading] if heading else []
        size = len(heading) if heading else 0
        has_body = False
        for paragraph in paragraphs:
            for piece in (paragraph,) if len(paragraph) <= room else _cut(paragraph, room):
                if current and size + 2 + len(piece) > limit:
                    if has_body:
                        yield "\n\n".join(current)
                    repeat = has_body and heading is not None and self.repeat_headings
                    fits = heading is not None and len(heading) + 2 + len(piece) <= limit
                    current = [heading] if repeat and fits and heading is not None else []
                    size = len(current[0]) if current else 0
                    has_body = False
                size += len(piece) + (2 if current else 0)
                current.append(piece)
                has_body = True
        if has_body:
            yield "\n\n".join(current)


def _sections(text: str) -> Iterator[tuple[str | None, list[str]]]:
    """Yield (heading, paragraphs) for each section; the text before any heading has None."""
    heading: str | None = None
    paragraphs: list[str] = []
    block: list[str] = []
    in_fence = False

    def flush() -> None:
        joined = "\n".join(block).strip()
        if joined:
            paragraphs.append(joined)
        block.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            block.append(line)
            continue
        if in_fence:
            block.append(line)
            continue
        if _HEADING.match(line):
            flush()
            if heading is not None or paragraphs:
                yield heading, paragraphs
            heading, paragraphs = line.strip(), []
            continue
        if not line.strip():
            flush()
        else:
            block.append(line.rstrip())
    flush()
    if heading is not None or paragraphs:
        yield heading, paragraphs


def _cut(paragraph: str, limit: int) -> Iterator[str]:
    """Cut an over-long paragraph at sentence ends, then at spaces, then anywhere."""
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        for part in _cut_words(sentence, limit) if len(sentence) > limit else (sentence,):
            if current and len(current) + 1 + len(part) > limit:
                yield current
                current = part
            else:
                current = f"{current} {part}" if current else part
    if current:
        yield current


def _cut_words(sentence: str, limit: int) -> Iterator[str]:
    current = ""
    for word in sentence.split():
        while len(word) > limit:
            if current:
                yield current
                current = ""
            yield word[:limit]
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            yield current
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        yield current
