"""`Knowledge`: documents an agent can search.

Documents go in through `insert` (a file, a directory, a URL or text): they are read, cut into
chunks along their headings and paragraphs, embedded, and stored with their metadata in a vector
store. `search` finds the chunks nearest to a question, by meaning (vector), by words
(keyword) or both (hybrid), among those that pass a metadata filter.

A document is known by its name. Its content hash covers its text, metadata, the chunking and
the embedder: inserting it again with the same hash changes nothing (and embeds nothing);
inserting a changed version replaces its old chunks in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.knowledge.chunking import Chunker
from pilothouse.knowledge.document import Chunk, SourceDocument, content_hash
from pilothouse.knowledge.embedders.base import Embedder
from pilothouse.knowledge.filters import FilterInput, to_filter
from pilothouse.knowledge.ingest import InsertRequest, plan_sources, read_source
from pilothouse.knowledge.vectordb.base import SearchType, VectorDb

__all__ = ["InsertResult", "Knowledge"]

logger = logging.getLogger("pilothouse")
_MAX_RESULTS_LIMIT = 1000


@dataclass(slots=True)
class InsertResult:
    """What an insert did: documents stored (new or changed), unchanged, and chunks written."""

    inserted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks: int = 0

    def merge(self, other: InsertResult) -> None:
        """Add another result's counts to this one."""
        self.inserted.extend(other.inserted)
        self.unchanged.extend(other.unchanged)
        self.chunks += other.chunks


class Knowledge:
    """A searchable collection of documents: a vector store, an embedder and a chunker.

    Args:
        vector_db: Where chunks are stored (`SqliteVecDb`, `PgVectorDb`). Default: a
            `SqliteVecDb` in memory.
        embedder: Turns text into vectors. Default: the embedded `MiniLMEmbedder`, offline.
        chunker: How documents are cut (default: `Chunker()`, 1,000 characters along headings
            and paragraphs).
        max_results: How many chunks a search returns by default (and an agent's search tool).
        search_type: ``"vector"`` (default), ``"keyword"`` or ``"hybrid"``.
        name: A name for the knowledge base, shown to the model in the agent's search tool.
    """

    def __init__(
        self,
        vector_db: VectorDb | None = None,
        embedder: Embedder | None = None,
        *,
        chunker: Chunker | None = None,
        max_results: int = 5,
        search_type: SearchType | str = SearchType.vector,
        name: str | None = None,
    ) -> None:
        if vector_db is not None and not isinstance(vector_db, VectorDb):
            raise TypeError(
                "Knowledge(): vector_db must be a vector store such as SqliteVecDb('kb.db') or "
                f"PgVectorDb('postgresql://...'), not {type(vector_db).__name__}"
            )
        if embedder is not None and not isinstance(embedder, Embedder):
            raise TypeError(
                "Knowledge(): embedder must be an Embedder such as MiniLMEmbedder() or "
                f"OpenAIEmbedder(), not {type(embedder).__name__}"
            )
        self._vector_db = vector_db
        self._embedder = embedder
        self.chunker = chunker or Chunker()
        self.max_results = _check_max_results(max_results, "Knowledge()")
        self.search_type = _search_type(search_type, "Knowledge()")
        self.name = name
        self._lock = threading.Lock()
        self._keys: list[str] | None = None

    # ------------------------------------------------------------------ parts

    @property
    def vector_db(self) -> VectorDb:
        """The vector store (an in-memory `SqliteVecDb` unless one was given)."""
        if self._vector_db is None:
            with self._lock:
                if self._vector_db is None:
                    from pilothouse.knowledge.vectordb.sqlite_vec import SqliteVecDb

                    self._vector_db = SqliteVecDb()
        return self._vector_db

    @property
    def embedder(self) -> Embedder:
        """The embedder (the embedded `MiniLMEmbedder` unless one was given)."""
        if self._embedder is None:
            from pilothouse.knowledge.embedders.minilm import MiniLMEmbedder

            self._embedder = MiniLMEmbedder()
        return self._embedder

    def _settings(self) -> str:
        return f"{self.chunker.settings}|embedder:{self.embedder.id}"

    # ------------------------------------------------------------------ inserting

    def insert(
        self,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        text_content: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        recursive: bool = True,
        show_progress: bool | None = None,
    ) -> InsertResult:
        """Add a file, a directory (every readable file in it), a URL, or text.

        ``name`` identifies the document (default: the path as given, the URL, or a hash of
        the text); for a directory it replaces the directory's path as the prefix of each
        file's name. ``metadata`` goes with every chunk and can be filtered on. A directory shows
        a progress bar when ``show_progress`` is True (default: when stderr is a terminal).

        Raises:
            TypeError, ValueError: Bad arguments (the message says which).
            ReaderError: A file or URL could not be read; the documents before it are stored.
        """
        request = InsertRequest(
            path=path,
            url=url,
            text_content=text_content,
            name=name,
            metadata=metadata,
            recursive=recursive,
        )
        return self._insert_requests([request], show_progress, request.is_directory)

    def insert_many(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        metadata: Mapping[str, Any] | None = None,
        show_progress: bool | None = None,
    ) -> InsertResult:
        """Insert several things at once: each item holds `insert`'s arguments.

        ``metadata`` is added to every item's own (which wins on conflicts).
        """
        requests = [self._request(item, metadata) for item in items]
        return self._insert_requests(requests, show_progress, len(requests) > 1)

    async def ainsert(self, **arguments: Any) -> InsertResult:
        """Async `insert`: reading and the store run in a worker thread; async embedders
        (`OpenAIEmbedder`) are awaited on the loop."""
        return await self._ainsert_requests([self._request(arguments, None)])

    async def ainsert_many(
        self, items: Iterable[Mapping[str, Any]], *, metadata: Mapping[str, Any] | None = None
    ) -> InsertResult:
        """Async `insert_many`."""
        return await self._ainsert_requests([self._request(item, metadata) for item in items])

    def _request(
        self, item: Mapping[str, Any], metadata: Mapping[str, Any] | None
    ) -> InsertRequest:
        if not isinstance(item, Mapping):
            raise TypeError(
                "insert_many(): each item is a dict of insert() arguments, e.g. "
                f"{{'path': 'docs/guide.md', 'metadata': {{'tag': 'docs'}}}}, not {item!r}"
            )
        known = {"path", "url", "text_content", "name", "metadata", "recursive"}
        unknown = set(item) - known
        if unknown:
            raise TypeError(
                f"insert(): unknown argument(s) {sorted(unknown)}; accepted: {sorted(known)}"
            )
        arguments = dict(item)
        if metadata:
            arguments["metadata"] = {**metadata, **(item.get("metadata") or {})}
        return InsertRequest(**arguments)

    def _insert_requests(
        self, requests: Sequence[InsertRequest], show_progress: bool | None, many: bool
    ) -> InsertResult:
        planned = [(n, k, s, r) for r in requests for n, k, s in plan_sources(r)]
        result = InsertResult()
        progress = _progress(show_progress, many, len(planned))
        try:
            for name, kind, source, request in planned:
                document = read_source(name, kind, source, request.metadata)
                result.merge(self._store(document, None))
                if progress is not None:
                    progress.advance()
        finally:
            if progress is not None:
                progress.stop()
            self._keys = None
        return result

    async def _ainsert_requests(self, requests: Sequence[InsertRequest]) -> InsertResult:
        planned = await asyncio.to_thread(
            lambda: [(n, k, s, r) for r in requests for n, k, s in plan_sources(r)]
        )
        result = InsertResult()
        try:
            for name, kind, source, request in planned:
                document = await asyncio.to_thread(
                    read_source, name, kind, source, request.metadata
                )
                result.merge(await self._astore(document))
        finally:
            self._keys = None
        return result

    def _prepare(self, document: SourceDocument) -> tuple[str, list[Chunk]] | None:
        """The document's hash and chunks, or None when it is stored already."""
        digest = content_hash(document.name, document.content, document.metadata, self._settings())
        if self.vector_db.has_document(document.name, digest):
            return None
        texts = self.chunker.split(document.content)
        chunks = [
            Chunk(
                id=f"{digest[:24]}-{index}",
                name=document.name,
                content=text,
                metadata=dict(document.metadata),
                index=index,
                content_hash=digest,
            )
            for index, text in enumerate(texts)
        ]
        return digest, chunks

    def _store(self, document: SourceDocument, vectors: list[list[float]] | None) -> InsertResult:
        result = InsertResult()
        prepared = self._prepare(document)
        if prepared is None:
            result.unchanged.append(document.name)
            return result
        digest, chunks = prepared
        if vectors is None:
            vectors = self.embedder.embed([c.content for c in chunks]) if chunks else []
        return self._write(document, digest, chunks, vectors)

    async def _astore(self, document: SourceDocument) -> InsertResult:
        prepared = await asyncio.to_thread(self._prepare, document)
        if prepared is None:
            return InsertResult(unchanged=[document.name])
        digest, chunks = prepared
        vectors = await self.embedder.aembed([c.content for c in chunks]) if chunks else []
        return await asyncio.to_thread(self._write, document, digest, chunks, vectors)

    def _write(
        self,
        document: SourceDocument,
        digest: str,
        chunks: list[Chunk],
        vectors: list[list[float]],
    ) -> InsertResult:
        result = InsertResult()
        if self.vector_db.replace_document(document.name, digest, chunks, vectors):
            result.inserted.append(document.name)
            result.chunks = len(chunks)
            logger.debug("knowledge: stored %s (%d chunks)", document.name, len(chunks))
        else:
            result.unchanged.append(document.name)
        return result

    # ------------------------------------------------------------------ searching

    def search(
        self,
        query: str,
        *,
        max_results: int | None = None,
        filters: FilterInput | None = None,
        search_type: SearchType | str | None = None,
    ) -> list[Chunk]:
        """The chunks that best answer ``query`` among those passing ``filters``, best first.

        ``filters`` is a dict (every key equals its value; a list value means any of) or an
        expression (`EQ`, `IN`, `GT`, ... combined with ``& | ~``). Each chunk has its ``score``
        (cosine similarity for vector search, BM25 for keyword search, RRF for hybrid).
        """
        limit, kind, condition = self._search_args(query, max_results, filters, search_type)
        vector = None if kind is SearchType.keyword else self.embedder.embed_query(query)
        return self.vector_db.search(query, vector, limit=limit, filter=condition, search_type=kind)

    async def asearch(
        self,
        query: str,
        *,
        max_results: int | None = None,
        filters: FilterInput | None = None,
        search_type: SearchType | str | None = None,
    ) -> list[Chunk]:
        """Async `search`: embedding and the store query never block the event loop."""
        limit, kind, condition = self._search_args(query, max_results, filters, search_type)
        vector = None if kind is SearchType.keyword else await self.embedder.aembed_query(query)
        return await self.vector_db.asearch(
            query, vector, limit=limit, filter=condition, search_type=kind
        )

    def _search_args(
        self,
        query: str,
        max_results: int | None,
        filters: FilterInput | None,
        search_type: SearchType | str | None,
    ) -> tuple[int, SearchType, Any]:
        if not isinstance(query, str):
            raise TypeError(f"search(): query must be a str, not {type(query).__name__}")
        limit = self.max_results if max_results is None else max_results
        _check_max_results(limit, "search()")
        kind = self.search_type if search_type is None else _search_type(search_type, "search()")
        return limit, kind, to_filter(filters)

    # ------------------------------------------------------------------ deleting, keys

    def delete(self, *, name: str | None = None, filters: FilterInput | None = None) -> int:
        """Delete document ``name``, or every chunk passing ``filters`` (or both at once).

        Returns the number of chunks deleted.
        """
        condition = to_filter(filters)
        if name is None and condition is None:
            raise TypeError("delete(): give name= or filters= (delete(name='guide.md'))")
        try:
            return self.vector_db.delete(name=name, filter=condition)
        finally:
            self._keys = None

    async def adelete(self, *, name: str | None = None, filters: FilterInput | None = None) -> int:
        """Async `delete`."""
        return await asyncio.to_thread(lambda: self.delete(name=name, filters=filters))

    def metadata_keys(self) -> list[str]:
        """The metadata keys of the stored chunks (cached until this object changes them)."""
        keys = self._keys
        if keys is None:
            keys = self._keys = self.vector_db.metadata_keys()
        return list(keys)

    async def ametadata_keys(self) -> list[str]:
        """Async `metadata_keys`."""
        if self._keys is not None:
            return list(self._keys)
        return await asyncio.to_thread(self.metadata_keys)

    def __repr__(self) -> str:
        return f"Knowledge(vector_db={self._vector_db!r}, embedder={self._embedder!r})"


def _check_max_results(value: Any, where: str) -> int:
    if type(value) is not int or not 1 <= value <= _MAX_RESULTS_LIMIT:
        raise ValueError(
            f"{where}: max_results must be a whole number from 1 to {_MAX_RESULTS_LIMIT}, "
            f"not {value!r}"
        )
    return value


def _search_type(value: Any, where: str) -> SearchType:
    try:
        return SearchType(value)
    except ValueError:
        raise ValueError(
            f"{where}: search_type must be 'vector', 'keyword' or 'hybrid', not {value!r}"
        ) from None


class _Progress:
    """A rich progress bar over the documents of an insert, on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]Inserting documents"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("insert", total=total)
        self._progress.start()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


def _progress(show: bool | None, many: bool, total: int) -> _Progress | None:
    if show is None:
        show = many and sys.stderr.isatty()
    return _Progress(total) if show and total else None
