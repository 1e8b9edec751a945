"""Checking the arguments a model sent for a tool call, and explaining what is wrong with them.

Error messages go back to the model so that it can fix its call: they name each failing
parameter and say why in a line, without Pydantic's documentation links.

Pydantic is imported only when a validation fails: by then it is loaded (the tool's spec holds a
Pydantic model), and `pilothouse.tools` imports this module without importing Pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pilothouse.exceptions import ToolArgumentsError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pilothouse.tools.spec import ToolSpec

__all__ = ["parse_arguments", "validate_arguments"]

_MAX_INPUT_CHARS = 60


def parse_arguments(tool_name: str, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Return the arguments as a dict: a mapping as is, a JSON object string decoded.

    An empty or blank string, JSON ``null`` and None all mean "no arguments".

    Raises:
        ToolArgumentsError: The string is not JSON, or not a JSON object.
    """
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            decoded = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ToolArgumentsError(
                f"Invalid arguments for tool {tool_name!r}: not valid JSON ({exc})"
            ) from None
        if decoded is None:
            return {}
        if type(decoded) is dict:
            return decoded  # made just now: no copy needed
        arguments = decoded
    if not isinstance(arguments, Mapping):
        raise ToolArgumentsError(
            f"Invalid arguments for tool {tool_name!r}: expected a JSON object with the "
            f"parameters as keys, got {_json_type(arguments)}"
        )
    return dict(arguments)


def validate_arguments(tool_name: str, spec: ToolSpec, arguments: dict[str, Any]) -> BaseModel:
    """Validate decoded arguments against a tool's parameters and return the model instance.

    Raises:
        ToolArgumentsError: Parameters are missing, unknown or of the wrong type; the message
            has one line per problem.
    """
    try:
        return spec.model.model_validate(arguments)
    except Exception as exc:
        from pydantic import ValidationError

        if not isinstance(exc, ValidationError):
            raise
        accepted = [param for _, param in spec.fields]
        problems = [_describe(error, accepted) for error in exc.errors(include_url=False)]
        raise ToolArgumentsError(
            f"Invalid arguments for tool {tool_name!r}:\n" + "\n".join(problems)
        ) from None


def _describe(error: Any, accepted: list[str]) -> str:
    where = _location(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"- {where}: missing required parameter"
    if kind == "extra_forbidden" and len(error["loc"]) == 1:
        allowed = ", ".join(accepted) if accepted else "none"
        return f"- {where}: unknown parameter (accepted parameters: {allowed})"
    return f"- {where}: {error['msg']} (got {_short(error.get('input'))})"


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "arguments"


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _MAX_INPUT_CHARS:
        text = text[: _MAX_INPUT_CHARS - 3] + "..."
    return text


def _json_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
