"""`SchemaFunction`: a tool described by a JSON schema it brings along, not by a signature.

Tools that come from elsewhere (an MCP server, an HTTP API description) arrive with a name, a
description and a JSON schema of their parameters. `SchemaFunction` offers such a tool to the
model as it is: the schema is passed through untouched, the model's arguments are checked only
for what the schema states plainly (a JSON object, the required names, no unknown names when
``additionalProperties`` is false) and handed to an async callable; the other side validates
the rest and answers with an error the model reads.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from pilothouse.exceptions import ToolArgumentsError
from pilothouse.tools.arguments import parse_arguments
from pilothouse.tools.function import Function
from pilothouse.tools.options import ToolOptions

if TYPE_CHECKING:
    from pilothouse.tools.spec import ToolSpec

__all__ = ["SchemaCall", "SchemaFunction", "SchemaToolOptions"]

SchemaCall = Callable[[dict[str, Any], Any], Awaitable[Any]]
"""``async call(arguments, run_context)``: runs one call; ``run_context`` is the run's
`RunContext` (None outside a run)."""

_INJECTED = frozenset({"run_context"})


class SchemaToolOptions(TypedDict, total=False):
    """The `ToolOptions` other than the name and description, which `SchemaFunction` takes."""

    requires_confirmation: bool
    requires_user_input: bool
    user_input_fields: list[str] | None
    external_execution: bool
    stop_after_tool_call: bool
    show_result: bool
    cache_results: bool
    cache_ttl: float


class SchemaFunction(Function):
    """A tool made of a name, a description, a JSON schema and an async callable.

    ``call(arguments, run_context)`` receives the model's arguments as a dict (after the light
    checks described in the module docstring) and the run's `RunContext`. Its result is
    formatted for the model like any tool's (see `Function.format_result`); what it raises
    becomes the error result the model sees.

    Every `Function` option applies (``requires_confirmation``, ``stop_after_tool_call``,
    ``cache_results``...).

    Raises:
        TypeError: ``parameters`` is not a dict, or ``call`` is not callable.
        ValueError: The name is not valid for model APIs.
    """

    def __init__(
        self,
        call: SchemaCall,
        *,
        name: str,
        description: str | None,
        parameters: Mapping[str, Any],
        **options: Unpack[SchemaToolOptions],
    ) -> None:
        if not isinstance(parameters, Mapping):
            raise TypeError(
                f"tool {name!r}: parameters must be a JSON schema dict, "
                f"got {type(parameters).__name__}"
            )
        super().__init__(call, name=name, description=description, **options)
        self._parameters = dict(parameters)

    def _with(
        self, entrypoint: Callable[..., Any], **overrides: Unpack[ToolOptions]
    ) -> SchemaFunction:
        options: dict[str, Any] = dict(self._options())
        options.update(overrides)
        name = options.pop("name", None) or self.name
        description = options.pop("description", None)
        return SchemaFunction(
            entrypoint, name=name, description=description, parameters=self._parameters, **options
        )

    @property
    def spec(self) -> ToolSpec:
        """Not available: the parameters come from a JSON schema, not from a signature."""
        raise TypeError(f"tool {self.name!r} is described by a JSON schema and has no ToolSpec")

    @property
    def description(self) -> str | None:
        """The description the tool came with."""
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = value
        self._changed()

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema the tool came with, as given (do not mutate)."""
        return self._parameters

    @property
    def injected(self) -> frozenset[str]:
        """``run_context``: the callable always receives it."""
        return _INJECTED

    def prepare(self, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
        """Decode the model's arguments and apply the schema's plain rules.

        Raises:
            ToolArgumentsError: Invalid JSON, not an object, a required name missing, or an
                unknown name where the schema forbids additional properties.
        """
        data = parse_arguments(self.name, arguments)
        problems = _problems(self._parameters, data)
        if problems:
            raise ToolArgumentsError(
                f"Invalid arguments for tool {self.name!r}:\n" + "\n".join(problems)
            )
        return data

    async def acall(
        self,
        arguments: Mapping[str, Any] | str | None,
        injected: Mapping[str, Any] | None = None,
        *,
        inline_sync: bool = False,
    ) -> Any:
        """Check the arguments, call ``call(arguments, run_context)`` and return its result.

        Raises:
            ToolArgumentsError: The arguments break the schema's plain rules.
            Exception: Whatever the callable raised, unchanged.
        """
        data = self.prepare(arguments)
        key: str | None = None
        if self.cache_results:
            key = json.dumps(data, sort_keys=True, default=str)
            hit, cached = self._result_cache().get(key)
            if hit:
                return cached
        run_context = injected.get("run_context") if injected is not None else None
        result = await self.entrypoint(data, run_context)
        if key is not None:
            self._result_cache().put(key, result)
        return result

    def __repr__(self) -> str:
        return f"SchemaFunction(name={self.name!r})"


def _problems(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties")
    known = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    problems = [
        f"- {name}: missing required parameter"
        for name in (required if isinstance(required, list) else ())
        if isinstance(name, str) and name not in data
    ]
    if schema.get("additionalProperties") is False:
        accepted = ", ".join(known) or "none"
        problems.extend(
            f"- {name}: unknown parameter (accepted parameters: {accepted})"
            for name in data
            if name not in known
        )
    return problems
