"""Turning the ``tools`` an agent was given into the flat list of `Function` objects a run uses.

This runs on every run, so it must stay cheap: a plain function gets one `Function`, made on
first use and kept on the function, so later runs reuse it (and its cached schema and
definition) after a dictionary lookup. That `Function` is shared by every agent listing the
plain function; use ``@tool(...)`` or `Function.from_callable` for per-agent options.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

from pilothouse.tools.function import Function
from pilothouse.tools.toolkit import Toolkit

__all__ = ["resolve_tools", "validate_tools"]

_CACHE_ATTRIBUTE = "__pilothouse_function__"
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
            found, origin = [_function_for(entry)], "the tools list"  # type: ignore[arg-type]
        for function in found:
            if function.name in seen:
                raise ValueError(
                    f"two tools are named {function.name!r} (from {seen[function.name]} and "
                    f"{origin}); tool names must be unique, rename one with @tool(name=...)"
                )
            seen[function.name] = origin
            functions.append(function)
    return functions


def _function_for(entry: Callable[..., Any]) -> Function:
    if isinstance(entry, Function):
        return entry
    if isinstance(entry, types.FunctionType):
        # The Function of a plain function is kept on the function itself: a dict lookup on
        # later runs, and collected with the function (a global cache would keep it alive).
        # The identity check skips copies that functools.wraps made into a wrapper's __dict__.
        cached = entry.__dict__.get(_CACHE_ATTRIBUTE)
        if isinstance(cached, Function) and cached.entrypoint is entry:
            return cached
        function = Function(entry)
        entry.__dict__[_CACHE_ATTRIBUTE] = function
        return function
    return Function.from_callable(entry)


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
