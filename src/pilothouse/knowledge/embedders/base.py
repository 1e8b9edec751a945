"""`Embedder`: turns texts into vectors, for documents and for queries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

__all__ = ["Embedder"]


class Embedder:
    """Base class of embedders. Subclasses implement `embed` and/or `aembed`.

    Attributes:
        id: Names the model; stored with each document's content hash, so that switching
            embedders re-embeds documents on their next insert.
        dimensions: The length of the vectors, when known before the first call.
    """

    id: str = "embedder"
    dimensions: int | None = None

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one vector per text, in order."""
        raise NotImplementedError

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """Async `embed`: by default `embed` in a worker thread, off the event loop."""
        return await asyncio.to_thread(self.embed, texts)

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query."""
        return self.embed([text])[0]

    async def aembed_query(self, text: str) -> list[float]:
        """Async `embed_query`."""
        return (await self.aembed([text]))[0]
