"""Turning what `Knowledge.insert` is given (a path, a URL or text) into source documents."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pilothouse.knowledge.document import SourceDocument
from pilothouse.knowledge.filters import check_metadata
from pilothouse.knowledge.readers import ReaderError, files_in, read_bytes, read_file
from pilothouse.knowledge.readers.html import html_to_text

__all__ = ["InsertRequest", "fetch_url", "plan_sources", "read_source"]

_MAX_URL_BYTES = 50 * 1024 * 1024
_URL_TIMEOUT = 30.0


class InsertRequest:
    """One thing to insert, checked: exactly one of path, url and text_content."""

    __slots__ = ("metadata", "name", "path", "recursive", "text_content", "url")

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        text_content: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        recursive: bool = True,
    ) -> None:
        given = [x for x in (path, url, text_content) if x is not None]
        if len(given) != 1:
            raise TypeError(
                "insert(): give exactly one of path=, url= or text_content= "
                "(e.g. insert(path='docs/'), insert(text_content='...', name='note'))"
            )
        if path is not None and not isinstance(path, str | Path):
            raise TypeError(f"insert(): path must be a str or a Path, not {type(path).__name__}")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise ValueError(f"insert(): url must be an http:// or https:// URL, not {url!r}")
        if text_content is not None and not isinstance(text_content, str):
            raise TypeError("insert(): text_content must be a str")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError("insert(): name must be a non-empty str")
        self.path = Path(path) if path is not None else None
        self.url = url
        self.text_content = text_content
        self.name = name
        self.metadata = check_metadata(metadata)
        self.recursive = recursive

    @property
    def is_directory(self) -> bool:
        """Whether the request names a directory."""
        return self.path is not None and self.path.is_dir()


def plan_sources(request: InsertRequest) -> Iterator[tuple[str, str, Any]]:
    """Yield (name, kind, source) for each document of a request, without reading it yet.

    ``kind`` is "path" (source: a Path), "url" (a URL) or "text" (the text itself).
    """
    if request.text_content is not None:
        digest = hashlib.sha256(request.text_content.encode("utf-8")).hexdigest()[:16]
        yield request.name or f"text-{digest}", "text", request.text_content
        return
    if request.url is not None:
        yield request.name or request.url, "url", request.url
        return
    path = request.path
    assert path is not None
    if path.is_dir():
        prefix = request.name or str(path)
        for file in files_in(path, recursive=request.recursive):
            yield f"{prefix}/{file.relative_to(path).as_posix()}", "path", file
        return
    if not path.exists():
        raise ReaderError(f"insert(): {path} does not exist")
    yield request.name or str(path), "path", path


def read_source(name: str, kind: str, source: Any, metadata: dict[str, Any]) -> SourceDocument:
    """Read one planned source into a `SourceDocument`."""
    if kind == "path":
        text = read_file(source)
    elif kind == "url":
        text = fetch_url(source)
    else:
        text = source
    return SourceDocument(name=name, content=text, metadata=dict(metadata))


def fetch_url(url: str) -> str:
    """Download a page or file (bounded in size and time) and read it by its content type.

    Raises:
        ReaderError: The request failed, the answer was not 200, or it is too large.
    """
    import httpx

    try:
        with (
            httpx.Client(timeout=_URL_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ReaderError(f"GET {url} answered {response.status_code}")
            data = bytearray()
            for block in response.iter_bytes():
                data.extend(block)
                if len(data) > _MAX_URL_BYTES:
                    raise ReaderError(f"{url} is larger than {_MAX_URL_BYTES} bytes")
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
    except httpx.HTTPError as exc:
        raise ReaderError(f"GET {url} failed: {exc}") from exc
    kind = _kind_of(content_type, url)
    if kind == "html":
        return html_to_text(bytes(data).decode("utf-8", errors="replace"))[0]
    return read_bytes(bytes(data), kind, url)


def _kind_of(content_type: str, url: str) -> str:
    if content_type == "application/pdf" or url.lower().endswith(".pdf"):
        return "pdf"
    if content_type in ("text/html", "application/xhtml+xml"):
        return "html"
    return "text"
