"""Embedders: the embedded MiniLM model (default) and OpenAI-compatible embedding APIs."""

from __future__ import annotations

from pilothouse.knowledge.embedders.base import Embedder
from pilothouse.knowledge.embedders.minilm import MiniLMEmbedder
from pilothouse.knowledge.embedders.openai import OpenAIEmbedder

__all__ = ["Embedder", "MiniLMEmbedder", "OpenAIEmbedder"]
