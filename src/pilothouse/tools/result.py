"""Turning what a tool returned into the text a model reads."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

__all__ = ["collect_async", "collect_sync", "format_result"]


def format_result(result: Any) -> str:
    """Return the text a model sees for a tool result.

    * ``str`` as is, ``None`` as ``""``;
    * a Pydantic model as its JSON (``model_dump_json()``);
    * dicts, lists, tuples, numbers and bools as JSON (non-ASCII kept, unknown values via
      ``str()``, Pydantic models inside as their JSON form);
    * bytes as a short note, since raw binary means nothing to a language model;
    * anything else via ``str()``.
    """
    if isinstance(result, str):
        return result
    if result is None:
        return ""
    base_model = _pydantic_base_model()
    if base_model is not None and isinstance(result, base_model):
        text: str = result.model_dump_json()
        return text
    if isinstance(result, bytes | bytearray | memoryview):
        return f"<{len(result)} bytes of binary data>"
    if isinstance(result, dict | list | tuple | int | float | bool):
        try:
            return json.dumps(result, default=_json_default, ensure_ascii=False)
        except (TypeError, ValueError):
            # Circular structures or keys json cannot write: fall back to the Python repr.
            return str(result)
    return str(result)


def _json_default(value: Any) -> Any:
    base_model = _pydantic_base_model()
    if base_model is not None and isinstance(value, base_model):
        return value.model_dump(mode="json")
    return str(value)


def _pydantic_base_model() -> type[Any] | None:
    # Pydantic's BaseModel when Pydantic is loaded, else None. Looked up instead of imported so
    # that formatting results never loads Pydantic: a model instance cannot exist without it.
    main = sys.modules.get("pydantic.main")
    base_model: type[Any] | None = getattr(main, "BaseModel", None)
    return base_model


def collect_sync(items: Iterator[Any], fmt: Callable[[Any], str] = format_result) -> str:
    """Drain a generator a tool returned and join its items, each formatted, into one text."""
    return "".join(fmt(item) for item in items)


async def collect_async(
    items: AsyncIterator[Any], fmt: Callable[[Any], str] = format_result
) -> str:
    """Drain an async generator a tool returned and join its formatted items into one text."""
    return "".join([fmt(item) async for item in items])
