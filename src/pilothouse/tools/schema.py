"""Tidying the JSON schemas Pydantic generates before a model sees them."""

from __future__ import annotations

from typing import Any

__all__ = ["strip_titles"]

# Keywords whose values are data, not schemas: a "title" key inside them is real content.
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
# Keywords whose values map names to schemas: a key called "title" there is a name.
_NAMED_SCHEMA_KEYWORDS = frozenset({"$defs", "definitions", "patternProperties", "properties"})


def strip_titles(schema: Any) -> Any:
    """Return a copy of a JSON schema without the ``title`` annotations Pydantic adds.

    Titles repeat the parameter or class name in title case; for a language model they only
    cost tokens. Properties, definitions or default values that happen to be named ``title``
    are kept.
    """
    if isinstance(schema, list):
        return [strip_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _DATA_KEYWORDS:
            cleaned[key] = value
        elif key in _NAMED_SCHEMA_KEYWORDS and isinstance(value, dict):
            cleaned[key] = {name: strip_titles(sub) for name, sub in value.items()}
        else:
            cleaned[key] = strip_titles(value)
    return cleaned
