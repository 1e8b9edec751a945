"""Models: the interface, normalised messages, and the provider adapters.

Adapters live in submodules (``pilothouse.models.openai``, ``.anthropic``, ``.llama_cpp``,
``.test``) and are imported only when used.
"""

from pilothouse.models.base import (
    Model,
    ModelDelta,
    ModelRequest,
    ModelResponse,
    ToolCallChunk,
    ToolDefinition,
)
from pilothouse.models.message import Message, ToolCall

__all__ = [
    "Message",
    "Model",
    "ModelDelta",
    "ModelRequest",
    "ModelResponse",
    "ToolCall",
    "ToolCallChunk",
    "ToolDefinition",
]
