"""Turning an MCP `CallToolResult` into the text a model reads."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

__all__ = ["result_text"]


def result_text(result: Any) -> str:
    """Return the text of a tool result: its content blocks, one per line.

    Text blocks and embedded text resources are given as is; images, audio and binary
    resources as a short note (a model reading a tool result as text cannot use their bytes);
    resource links as their URI. A result with structured content only is given as its JSON.
    """
    parts = [_block_text(block) for block in result.content or ()]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts)


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind}: {block.mime_type}, {_decoded_size(block.data)} bytes]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if isinstance(text, str):
            return text
        mime = getattr(resource, "mime_type", None) or "binary"
        return f"[resource {resource.uri}: {mime}, {_decoded_size(resource.blob)} bytes]"
    if kind == "resource_link":
        return f"[resource link: {block.uri}]"
    return f"[{kind or type(block).__name__} content]"


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)
