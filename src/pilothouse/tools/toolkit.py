"""`Toolkit`: a named group of tools that travel together."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from pilothouse.tools.function import Function, check_callable, tool_name_of

__all__ = ["Toolkit"]


class Toolkit:
    """A named group of tools, with optional instructions for the model on how to use them.

    ``tools`` may hold functions, bound methods, callable objects and `Function` objects.
    Subclasses usually offer their own methods::

        class Weather(Toolkit):
            def __init__(self, api_key: str) -> None:
                self.api_key = api_key
                super().__init__(name="weather", tools=[self.forecast, self.alerts])

    ``include_tools`` keeps only the named tools, ``exclude_tools`` drops the named ones. Type
    errors, duplicate names and unknown names in either filter are reported here; the
    `Function` objects themselves are made on first access to `functions`.

    Raises:
        TypeError: An entry is not a callable (or is a class or another toolkit), or a
            filter is a string instead of a collection of names.
        ValueError: Two tools share a name, or a filter names a tool the toolkit lacks.
    """

    def __init__(
        self,
        name: str = "toolkit",
        tools: Sequence[Callable[..., Any]] | None = None,
        instructions: str | None = None,
        include_tools: Collection[str] | None = None,
        exclude_tools: Collection[str] | None = None,
    ) -> None:
        self.name = name
        self.instructions = instructions
        self.tools: list[Callable[..., Any]] = list(tools or ())
        names: list[str] = []
        for index, entry in enumerate(self.tools):
            if isinstance(entry, Toolkit):
                raise TypeError(
                    f"toolkit {name!r}: tools[{index}] is the toolkit {entry.name!r}; toolkits "
                    "cannot be nested, give both to the agent instead"
                )
            if not isinstance(entry, Function):
                check_callable(entry)
            tool_name = tool_name_of(entry)
            if tool_name in names:
                raise ValueError(f"toolkit {name!r} has two tools named {tool_name!r}")
            names.append(tool_name)
        self.include_tools = _check_filter(name, "include_tools", include_tools, names)
        self.exclude_tools = _check_filter(name, "exclude_tools", exclude_tools, names)
        self._functions: list[Function] | None = None

    @property
    def functions(self) -> list[Function]:
        """The toolkit's tools after filtering, made once per toolkit instance."""
        if self._functions is None:
            functions = [Function.from_callable(entry) for entry in self.tools]
            if self.include_tools is not None:
                functions = [f for f in functions if f.name in self.include_tools]
            if self.exclude_tools is not None:
                functions = [f for f in functions if f.name not in self.exclude_tools]
            self._functions = functions
        return list(self._functions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tools={len(self.tools)})"


def _check_filter(
    toolkit: str, option: str, value: Collection[str] | None, names: list[str]
) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"toolkit {toolkit!r}: {option} must be a list of names, not a string")
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise ValueError(
            f"toolkit {toolkit!r}: {option} names unknown tools {', '.join(map(repr, unknown))}; "
            f"its tools are: {', '.join(names) or 'none'}"
        )
    return frozenset(value)
