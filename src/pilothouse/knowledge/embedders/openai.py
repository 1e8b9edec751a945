"""`OpenAIEmbedder`: embeddings from OpenAI or any server that speaks its embeddings API."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pilothouse.knowledge.embedders.base import Embedder

__all__ = ["OpenAIEmbedder"]

_KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbedder(Embedder):
    """Embeddings through the official ``openai`` SDK (``/v1/embeddings``).

    Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` like the SDK; with ``base_url`` set and no
    key anywhere, a placeholder key is sent, as local servers need none.

    Args:
        id: The embedding model.
        dimensions: Ask the model for vectors of this length (text-embedding-3 models).
        api_key, base_url: Override the SDK's environment variables.
        batch_size: Texts per request.
        timeout: Seconds one request may take.
        max_retries: The SDK's retries of failed requests.
    """

    def __init__(
        self,
        id: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        batch_size: int = 100,
        timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
        self.id = id
        self.requested_dimensions = dimensions
        self.dimensions = dimensions or _KNOWN_DIMENSIONS.get(id)
        self.api_key = api_key
        self.base_url = base_url
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async: Any = None

    def _kwargs(self) -> dict[str, Any]:
        import os

        kwargs: dict[str, Any] = {"timeout": self.timeout, "max_retries": self.max_retries}
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL")
        if base_url:
            kwargs["base_url"] = base_url
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if api_key is None and base_url:
            api_key = "not-needed"
        if api_key is not None:
            kwargs["api_key"] = api_key
        return kwargs

    def _clients(self) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise ImportError(
                "OpenAIEmbedder needs the openai package: pip install 'pilothouse[openai]'"
            ) from exc
        return openai

    def _request(self, texts: Sequence[str]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.id, "input": list(texts)}
        if self.requested_dimensions is not None:
            request["dimensions"] = self.requested_dimensions
        return request

    def _vectors(self, response: Any) -> list[list[float]]:
        data = sorted(response.data, key=lambda item: item.index)
        vectors = [_pooled(item.embedding) for item in data]
        if vectors and self.dimensions is None:
            self.dimensions = len(vectors[0])
        return vectors

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Return one vector per text, requesting ``batch_size`` texts at a time."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of texts; use embed_query() for one")
        with self._lock:
            if self._sync is None:
                self._sync = self._clients().OpenAI(**self._kwargs())
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            vectors.extend(self._vectors(self._sync.embeddings.create(**self._request(batch))))
        return vectors

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        """Async `embed`, on the SDK's async client."""
        if isinstance(texts, str):
            raise TypeError("aembed() takes a list of texts; use aembed_query() for one")
        if self._async is None:
            self._async = self._clients().AsyncOpenAI(**self._kwargs())
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            response = await self._async.embeddings.create(**self._request(batch))
            vectors.extend(self._vectors(response))
        return vectors


def _pooled(embedding: Any) -> list[float]:
    """The embedding as one vector.

    A server that runs a model without a pooling layer (llama-cpp-python's, with a chat model)
    answers with one vector per token: their mean is the text's vector, as mean-pooling
    sentence embedders compute it.
    """
    if embedding and isinstance(embedding[0], list):
        count = len(embedding)
        return [sum(column) / count for column in zip(*embedding, strict=True)]
    return [float(x) for x in embedding]
