"""Readers: files, directories and URLs to text documents.

Text and Markdown are read as UTF-8, PDF through ``pypdf`` (imported when a PDF is read), HTML
through the standard library's parser (headings kept as ``#`` lines). A directory is read file
by file, in sorted order, keeping the files whose suffix has a reader.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from pilothouse.knowledge.readers.html import html_to_text

__all__ = [
    "READERS",
    "ReaderError",
    "files_in",
    "read_bytes",
    "read_file",
]

# Suffix -> kind of reader.
READERS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "text",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
}
_MAX_FILE_BYTES = 200 * 1024 * 1024


class ReaderError(ValueError):
    """A document could not be read: the message says which and why."""


def files_in(directory: Path, *, recursive: bool = True) -> Iterator[Path]:
    """The readable files of a directory (by suffix), sorted, hidden files left out."""
    pattern = "**/*" if recursive else "*"
    for path in sorted(directory.glob(pattern)):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in READERS:
            yield path


def read_file(path: Path) -> str:
    """Read one file as text with the reader its suffix names (UTF-8 text otherwise).

    Raises:
        ReaderError: The file is missing, too large, not text, or not a readable PDF.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReaderError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if size > _MAX_FILE_BYTES:
        raise ReaderError(f"{path} is {size} bytes; the most a reader takes is {_MAX_FILE_BYTES}")
    kind = READERS.get(path.suffix.lower(), "text")
    return read_bytes(path.read_bytes(), kind, str(path))


def read_bytes(data: bytes, kind: str, source: str) -> str:
    """Turn the bytes of a document of the given kind (text, markdown, pdf, html) into text."""
    if kind == "pdf":
        return _read_pdf(data, source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReaderError(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if "\x00" in text:
        raise ReaderError(f"{source} looks like a binary file, not text")
    if kind == "html":
        return html_to_text(text)[0]
    return text


def _read_pdf(data: bytes, source: str) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError as exc:  # pragma: no cover - pypdf comes with the knowledge extra
        raise ReaderError(
            f"reading {source} needs pypdf: pip install 'pilothouse[knowledge]'"
        ) from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise ReaderError(f"{source} is not a readable PDF: {exc}") from exc
    # Pages are separated like paragraphs, so that no chunk joins two pages' lines into one.
    return "\n\n".join(page.strip() for page in pages if page.strip())
