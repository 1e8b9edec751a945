"""Structured output: checking an ``output_schema`` and turning the model's answer into it.

The model is asked for JSON through the provider's native means (the adapters read
`ModelRequest.output_schema`; `OpenAIChat` falls back to JSON mode or a forced answer tool on
servers that refuse a JSON-schema response format); the answer is validated here. When it
does not validate, the errors go back to the model as a new user message and it answers
again, a bounded number of times.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from pilothouse.models.message import Message

__all__ = ["OutputValidationError", "check_output_schema", "parse_answer", "retry_message"]


class OutputValidationError(Exception):
    """The model's answer did not match the output schema, after every retry."""


def check_output_schema(
    schema: Any, where: str, *, name: str = "output_schema"
) -> type[BaseModel] | None:
    """Return ``schema`` if it is a pydantic model class (or None); raise a clear TypeError."""
    if schema is None or (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return schema
    raise TypeError(
        f"{where}: {name} must be a pydantic model class (class Answer(BaseModel): ...), "
        f"not {schema!r}."
    )


def parse_answer(text: str, schema: type[BaseModel]) -> tuple[BaseModel | None, str]:
    """Validate the answer text into ``schema``: (the object, "") or (None, the errors).

    The JSON object may be wrapped in a markdown code fence or surrounded by a few words,
    as small models tend to do; only the object itself is read.
    """
    candidate = _json_object(text)
    if candidate is None:
        return None, "the answer is not a JSON object"
    try:
        return schema.model_validate_json(candidate), ""
    except ValidationError as exc:
        return None, "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
        )


def _json_object(text: str) -> str | None:
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        return stripped
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end <= start:
        return None
    return stripped[start : end + 1]


def retry_message(schema: type[BaseModel], errors: str) -> Message:
    """The message that sends validation errors back to the model."""
    return Message(
        role="user",
        content=(
            f"Your answer does not match the required {schema.__name__} JSON schema: {errors}. "
            "Answer again with only a JSON object that matches this schema:\n"
            + json.dumps(schema.model_json_schema(), ensure_ascii=False)
        ),
    )
