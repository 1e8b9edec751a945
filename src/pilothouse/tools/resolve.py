"""Turning the ``tools`` an agent was given into the flat list of `Function` objects a run uses.

This runs on every run, so it must stay cheap: a plain function gets one `Function`, made on
first use and kept on the function, so later runs reuse it (and its cached schema and
definition) after a dictionary lookup. That `Function` is shared by every agent listing the
plain function; use ``@tool(...)`` or `Function.from_callable` for per-agent options.

`resolve_toolset` goes further for the run loop: the whole result (functions, definitions and
the name index) is remembered per list of entries, so a repeated run costs a dictionary lookup.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.models.base import ToolDefinition
from pilothouse.tools.function import Function
from pilothouse.tools.toolkit import Toolkit

__all__ = ["ToolSet", "cached_toolset", "resolve_tools", "resolve_toolset", "validate_tools"]

_CACHE_ATTRIBUTE = "__pilothouse_function__"
_ACCEPTED = "a function, a bound method, a callable object, a Function (from @tool) or a Toolkit"


@dataclass(frozen=True, slots=True, eq=False)
class ToolSet:
    """The tools of a run, resolved: see `resolve_toolset`.

    A `ToolSet` may be shared by many runs: treat it as read-only.

    Attributes:
        functions: The tools, flattened in order (toolkits expanded in place).
        definitions: What the model is told about each tool, in the same order.
        by_name: The tools by name (read-only).
    """

    functions: tuple[Function, ...]
    definitions: tuple[ToolDefinition, ...]
    by_name: Mapping[str, Function]


_EMPTY_TOOLSET = ToolSet((), (), types.MappingProxyType({}))
# A process rarely has more than a few distinct tool lists; the bound limits how many discarded
# tools (and the objects their methods are bound to, and what closures capture: a handler's
# request, say) the cache keeps alive.
_TOOLSET_CACHE_SIZE = 64
# Keyed by the ids of the entries, not the entries: ids compare by identity whatever __eq__ an
# entry defines, and unhashable callables work too. The value keeps the entries alive, so an id
# in the cache cannot be reused by another object. Its last item is the
# `Function._definitions_generation` the tool set was built under.
_toolsets: dict[tuple[int, ...], tuple[ToolSet, tuple[object, ...], int]] = {}
# Lookups are single dict reads (atomic under the GIL); only stores and evictions take the lock.
_toolsets_lock = threading.Lock()


def validate_tools(tools: Sequence[object] | None) -> None:
    """Check the types of an agent's tools without building any schema.

    Raises:
        TypeError: ``tools`` is not a list (or tuple), or an entry is not a tool; the message
            says what is accepted.
    """
    if tools is None:
        return
    if type(tools) is list or type(tools) is tuple:
        # The common case, checked without ABC isinstance calls: Agent() runs this every time.
        for index, entry in enumerate(tools):
            if type(entry) is not types.FunctionType:
                _check_entry(index, entry)
        return
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
        raise TypeError(f"tools must be a list of tools ({_ACCEPTED}), got {_describe(tools)}")
    for index, entry in enumerate(tools):
        _check_entry(index, entry)


def cached_toolset(tools: Sequence[object] | None) -> ToolSet | None:
    """Return the `ToolSet` of ``tools`` if it is already built and current, else None.

    Never builds anything, so it is safe on an event loop; building a schema the first time
    imports and inspects code, which belongs in a worker thread.
    """
    if not tools:
        return _EMPTY_TOOLSET
    if type(tools) is not list and type(tools) is not tuple:
        return None
    cached = _toolsets.get(tuple(map(id, tools)))
    if cached is not None and cached[2] == Function._definitions_generation:
        return cached[0]
    return None


def resolve_toolset(tools: Sequence[object] | None) -> ToolSet:
    """Resolve an agent's tools like `resolve_tools`, with definitions and a name index.

    The result is cached per list of entries (by identity, up to a bound): later calls with
    the same entries, in the same order, return the same `ToolSet` without redoing any work,
    whether or not the list object is the same. It is rebuilt when the name or description
    of any `Function` has been changed since it was built. Entries are compared by identity,
    so a new bound method object (``obj.method`` evaluated again) is a new entry. Lists with a
    toolkit whose class overrides `Toolkit.functions` are resolved anew on every call.

    The cache keeps the entries of the lists it remembers alive until they are evicted.

    Unlike `resolve_tools`, this builds each tool's schema (for its definition), so a tool
    whose parameters Pydantic cannot handle fails here.

    Raises:
        TypeError: An entry is not a tool (see `validate_tools`), or a tool's parameter types
            cannot be turned into a JSON schema.
        ValueError: Two tools share a name; the message names it.
    """
    if tools is None:
        return _EMPTY_TOOLSET
    if type(tools) is not list and type(tools) is not tuple:
        # tuple() below would take any iterable, and drain a generator: refuse those first.
        validate_tools(tools)
    key = tuple(map(id, tools))
    if not key:
        return _EMPTY_TOOLSET
    cached = _toolsets.get(key)
    if cached is not None and cached[2] == Function._definitions_generation:
        return cached[0]
    # Read before building: a rename during the build then makes this entry stale, not wrong.
    generation = Function._definitions_generation
    entries = tuple(tools)
    functions = tuple(_flatten(entries))
    toolset = ToolSet(
        functions=functions,
        definitions=tuple(f.definition for f in functions),
        by_name=types.MappingProxyType({f.name: f for f in functions}),
    )
    if not all(_fixed_tools(entry) for entry in entries):
        return toolset
    with _toolsets_lock:
        if key not in _toolsets:
            while len(_toolsets) >= _TOOLSET_CACHE_SIZE:
                # Oldest first (dicts keep insertion order); an evicted set is simply rebuilt.
                del _toolsets[next(iter(_toolsets))]
        _toolsets[key] = (toolset, entries, generation)
    return toolset


def resolve_tools(tools: Sequence[object] | None) -> list[Function]:
    """Flatten functions, `Function` objects and toolkits into one list of `Function`.

    Raises:
        TypeError: An entry is not a tool (see `validate_tools`).
        ValueError: Two tools share a name; the message names it.
    """
    return _flatten(tools)


def _flatten(tools: Sequence[object] | None) -> list[Function]:
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


def _fixed_tools(entry: object) -> bool:
    # A Toolkit's functions are made once; a subclass that overrides `functions` may change
    # them from run to run (tools listed by a server, say), so its tool sets are not cached.
    return not isinstance(entry, Toolkit) or type(entry).functions is Toolkit.functions


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
