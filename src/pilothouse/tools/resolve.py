"""Turning the ``tools`` an agent was given into the flat list of `Function` objects a run uses.

This runs on every run, so it must stay cheap: plain functions are wrapped in a `Function`
whose schema comes from the per-function cache, with no schema work after the first time.
"""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.tools.function import Function
from pilothouse.tools.toolkit import Toolkit

__all__ = ["resolve_tools", "validate_tools"]

_ACCEPTED = "a function, a bound method, a callable object, a Function (from @tool) or a Toolkit"


def validate_tools(tools: Sequence[object] | None) -> None:
    """Check the types of an agent's tools without building any schema.

    Raises:
        TypeError: ``tools`` is not a list (or tuple), or an entry is not a tool; the message
            says what is accepted.
    """
    if tools is None:
        return
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
        raise TypeError(f"tools must be a list of tools ({_ACCEPTED}), got {_describe(tools)}")
    for index, entry in enumerate(tools):
        _check_entry(index, entry)


def resolve_tools(tools: Sequence[object] | None) -> list[Function]:
    """Flatten functions, `Function` objects and toolkits into one list of `Function`.

    Raises:
        TypeError: An entry is not a tool (see `validate_tools`).
        ValueError: Two tools share a name; the message names it.
    """
    validate_tools(tools)
    functions: list[Function] = []
    seen: dict[str, str] = {}
    for entry in tools or ():
        if isinstance(entry, Toolkit):
            found, origin = entry.functions, f"toolkit {entry.name!r}"
        else:
            # validate_tools has checked that the entry is callable.
            found, origin = [Function.from_callable(entry)], "the tools list"  # type: ignore[arg-type]
        for function in found:
            if function.name in seen:
                raise ValueError(
                    f"two tools are named {function.name!r} (from {seen[function.name]} and "
                    f"{origin}); tool names must be unique, rename one with @tool(name=...)"
                )
            seen[function.name] = origin
            functions.append(function)
    return functions


def _check_entry(index: int, entry: object) -> None:
    if isinstance(entry, Function | Toolkit):
        return
    if isinstance(entry, type):
        hint = f"; create an instance: {entry.__name__}(...)" if issubclass(entry, Toolkit) else ""
        raise TypeError(
            f"tools[{index}] is the class {entry.__name__}{hint}. Accepted: {_ACCEPTED}"
        )
    if not callable(entry):
        raise TypeError(f"tools[{index}] is {_describe(entry)}, not a tool. Accepted: {_ACCEPTED}")


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"a {type(value).__name__} ({text})"
