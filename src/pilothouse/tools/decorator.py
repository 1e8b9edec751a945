"""The ``@tool`` decorator: mark a function as a tool and set its options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack, overload

from pilothouse.tools.function import Function
from pilothouse.tools.options import TOOL_OPTION_NAMES, ToolOptions, check_option_names

__all__ = ["tool"]


@overload
def tool(fn: Callable[..., Any], /, **options: Unpack[ToolOptions]) -> Function: ...


@overload
def tool(
    fn: None = None, /, **options: Unpack[ToolOptions]
) -> Callable[[Callable[..., Any]], Function]: ...


def tool(
    fn: Callable[..., Any] | None = None, /, **options: Unpack[ToolOptions]
) -> Function | Callable[[Callable[..., Any]], Function]:
    """Turn a sync or async function into a `Function`, bare or with options.

    ``@tool`` and ``@tool(name=..., description=..., requires_confirmation=...,
    requires_user_input=..., user_input_fields=..., external_execution=...,
    stop_after_tool_call=..., show_result=..., cache_results=..., cache_ttl=...)`` both work.
    The result can still be called like the original function. On a method in a class body,
    put ``@tool`` innermost; ``instance.method`` then gives a tool bound to that instance.

    Raises:
        TypeError: An unknown option (the message lists the accepted ones), or something
            other than a function was decorated.
    """
    check_option_names(dict(options), "tool")
    if fn is None:

        def decorate(target: Callable[..., Any]) -> Function:
            return Function.from_callable(target, **options)

        return decorate
    if not _decoratable(fn):
        raise TypeError(
            f"@tool decorates a function, got {type(fn).__name__} {fn!r}; options are keywords, "
            f"e.g. @tool(name=...). Accepted options: {', '.join(TOOL_OPTION_NAMES)}"
        )
    return Function.from_callable(fn, **options)


def _decoratable(value: object) -> bool:
    # classmethod objects are not callable but get a better message from Function.
    return callable(value) or isinstance(value, classmethod)
