"""`Function`: one Python callable offered to a model as a tool.

Pydantic is not imported here: `pilothouse.tools.spec`, which needs it, is imported when a
tool's schema or validator is first used, so that ``import pilothouse`` stays fast. asyncio,
as costly to import, is imported when a sync tool is first sent to a worker thread.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import re
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Unpack

from pilothouse.models.base import ToolDefinition
from pilothouse.tools.arguments import parse_arguments, validate_arguments
from pilothouse.tools.cache import ResultCache
from pilothouse.tools.options import ToolOptions, check_option_names
from pilothouse.tools.result import collect_async, collect_sync, format_result

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pilothouse.tools.spec import ToolSpec

__all__ = ["Function", "callable_name", "check_callable", "tool_name_of"]

# What OpenAI and Anthropic both accept as a tool name.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RESULT_CACHE_SIZE = 256
# Results of these exact types are neither awaitables nor generators: acall returns them without
# the inspect checks. Exact types only, since a subclass could define __await__.
_PLAIN_RESULT_TYPES = frozenset({str, int, float, bool, bytes, dict, list, tuple, type(None)})
# next() on a count is atomic under the GIL: concurrent renames still get distinct generations.
_GENERATIONS = itertools.count(1)


def callable_name(fn: Callable[..., Any]) -> str:
    """Return the tool name a callable gets by default: its ``__name__``.

    Partials use the wrapped function's name, callable instances their class name.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def tool_name_of(entry: Callable[..., Any]) -> str:
    """Return the name the tool made of ``entry`` will have, without building anything."""
    if isinstance(entry, Function):
        return entry.name
    if isinstance(entry, types.MethodType) and isinstance(entry.__func__, Function):
        return entry.__func__.name
    return callable_name(entry)


class Function:
    """One tool: a Python callable plus what a model needs to know to call it.

    The name defaults to the callable's ``__name__`` and the description to its docstring
    (the part before ``Args:`` and other sections). The parameter schema and its validator
    are built from the signature on first use and cached per underlying function (see
    `pilothouse.tools.spec`), so creating a `Function` is cheap.

    Parameters named in `pilothouse.tools.INJECTED_PARAMETERS` (``agent``, ``run_context``...)
    are not shown to the model; the run loop passes them to `acall`.

    Attributes:
        name: The tool name the model calls.
        entrypoint: The callable run for a call.
        requires_confirmation: The run pauses for a human to approve each call.
        requires_user_input: The run pauses for a human to fill in arguments.
        user_input_fields: The arguments the human fills in (None: all of them).
        external_execution: The caller, not Pilothouse, runs the tool and sends the result.
        stop_after_tool_call: The run ends after this tool has run.
        show_result: The result is shown to the user as is.
        cache_results: Results are cached in-process per arguments for ``cache_ttl`` seconds.
        cache_ttl: Lifetime of cached results, in seconds.
    """

    # Changes whenever the name or description of any Function is set after creation: caches
    # of definitions built from several tools (resolve_toolset) compare it with the value they
    # were built under instead of re-checking each tool.
    _definitions_generation: ClassVar[int] = 0

    def __init__(
        self,
        entrypoint: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_confirmation: bool = False,
        requires_user_input: bool = False,
        user_input_fields: list[str] | None = None,
        external_execution: bool = False,
        stop_after_tool_call: bool = False,
        show_result: bool = False,
        cache_results: bool = False,
        cache_ttl: float = 3600,
    ) -> None:
        check_callable(entrypoint)
        if isinstance(entrypoint, Function):
            # Wrapping a tool again: run its callable, not its generic __call__.
            entrypoint = entrypoint.entrypoint
        elif isinstance(entrypoint, types.MethodType) and isinstance(entrypoint.__func__, Function):
            entrypoint = types.MethodType(entrypoint.__func__.entrypoint, entrypoint.__self__)
        self.entrypoint: Callable[..., Any] = entrypoint
        # Set directly, not through the setters: a new tool is in no cached tool set yet, so
        # there is nothing to invalidate (see `_definitions_generation`).
        self._name: str = name if name is not None else callable_name(entrypoint)
        if not _NAME_RE.match(self._name):
            raise ValueError(
                f"invalid tool name {self._name!r}: use 1 to 64 letters, digits, '_' or '-' "
                "(pass name=... to choose one)"
            )
        self._description = description
        self.requires_confirmation = requires_confirmation
        # Naming the fields a human fills in implies that the tool asks for them.
        self.requires_user_input = requires_user_input or bool(user_input_fields)
        self.user_input_fields = list(user_input_fields) if user_input_fields else None
        self.external_execution = external_execution
        self.stop_after_tool_call = stop_after_tool_call
        self.show_result = show_result
        if cache_ttl <= 0:
            raise ValueError(f"cache_ttl must be positive, got {cache_ttl!r}")
        self.cache_results = cache_results
        self.cache_ttl = float(cache_ttl)
        self._is_async = _is_async_callable(entrypoint)
        self._spec: ToolSpec | None = None
        self._definition: ToolDefinition | None = None
        self._results: ResultCache | None = None

    @classmethod
    def from_callable(cls, fn: Callable[..., Any], **options: Unpack[ToolOptions]) -> Function:
        """Make a tool of a function, bound method, callable object or existing `Function`.

        Given a `Function`, returns it unchanged without options, or a copy with the options
        changed. No schema work happens here; it happens once per underlying function, on
        first use.

        Raises:
            TypeError: ``fn`` is not callable, or an option is unknown.
            ValueError: The tool name is not valid for model APIs (e.g. a lambda's).
        """
        check_option_names(dict(options), "Function.from_callable")
        if isinstance(fn, types.MethodType) and isinstance(fn.__func__, Function):
            # `@classmethod` over `@tool`: bind the tool's function, keep its options.
            fn = fn.__func__.__get__(fn.__self__)
        if isinstance(fn, Function):
            return fn._with(fn.entrypoint, **options) if options else fn
        return cls(fn, **options)

    def _options(self) -> ToolOptions:
        return ToolOptions(
            name=self.name,
            description=self._description,
            requires_confirmation=self.requires_confirmation,
            requires_user_input=self.requires_user_input,
            user_input_fields=self.user_input_fields,
            external_execution=self.external_execution,
            stop_after_tool_call=self.stop_after_tool_call,
            show_result=self.show_result,
            cache_results=self.cache_results,
            cache_ttl=self.cache_ttl,
        )

    def _with(self, entrypoint: Callable[..., Any], **overrides: Unpack[ToolOptions]) -> Function:
        options = self._options()
        options.update(overrides)
        return type(self)(entrypoint, **options)

    @property
    def spec(self) -> ToolSpec:
        """The cached parameter spec of the entrypoint (built on first access)."""
        spec = self._spec
        if spec is None:
            # Imported on first use: the spec module loads Pydantic.
            from pilothouse.tools.spec import get_spec

            spec = self._spec = get_spec(self.entrypoint)
        return spec

    @property
    def name(self) -> str:
        """The tool name the model calls."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value
        self._changed()

    @property
    def description(self) -> str | None:
        """The description given, else the docstring's description part, else None."""
        if self._description is not None:
            return self._description
        return self.spec.description

    @description.setter
    def description(self, value: str | None) -> None:
        self._description = value
        self._changed()

    def _changed(self) -> None:
        self._definition = None
        # Assigned on the base class so that subclasses share one counter.
        Function._definitions_generation = next(_GENERATIONS)

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the parameters the model fills in.

        The dict is shared by every `Function` of the same underlying function: do not mutate.
        """
        return self.spec.schema

    @property
    def injected(self) -> frozenset[str]:
        """The injected parameters (`INJECTED_PARAMETERS`) this tool declares."""
        return self.spec.injected

    @property
    def definition(self) -> ToolDefinition:
        """What the model is told about this tool."""
        if self._definition is None:
            self._definition = ToolDefinition(self._name, self.description, self.parameters)
        return self._definition

    def prepare(self, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
        """Validate a model's arguments and return keyword arguments for the call.

        ``arguments`` is a dict or a JSON object string (empty or None: no arguments). Values
        are converted to the annotated types: ``"2024-05-01"`` becomes a `date`, a dict a
        Pydantic model, ``"3"`` an int. Injected parameters are not included.

        Raises:
            ToolArgumentsError: Invalid JSON, unknown or missing parameters, wrong types; the
                message names each failing parameter and is meant for the model.
        """
        return self.spec.kwargs_from(self._validate(arguments))

    def _validate(self, arguments: Mapping[str, Any] | str | None) -> BaseModel:
        # An exact dict is validated as is (acall does the same): validation does not mutate
        # it, so the copy that parse_arguments makes of other mappings is not needed.
        data = arguments if type(arguments) is dict else parse_arguments(self._name, arguments)
        return validate_arguments(self._name, self.spec, data)

    async def acall(
        self,
        arguments: Mapping[str, Any] | str | None,
        injected: Mapping[str, Any] | None = None,
        *,
        inline_sync: bool = False,
    ) -> Any:
        """Validate the arguments, call the entrypoint and return its result.

        The injected values this tool declares are taken from ``injected`` (None when missing).
        Async functions are awaited; sync ones run in a worker thread so that they cannot
        block the event loop, or directly on the loop with ``inline_sync=True`` (for tools
        known to be quick). Generator and async generator tools are drained, and their items
        formatted with `format_result` and joined into one string.

        With ``cache_results`` the result is reused for calls with equal arguments (compared
        as sorted JSON; injected values are not part of the key) within ``cache_ttl`` seconds.

        Raises:
            ToolArgumentsError: The arguments are invalid.
            Exception: Whatever the tool raised, unchanged.
        """
        # This runs for every tool call, so it is written out flat: no helper coroutine, and
        # the inspect checks only for results that may be awaitables or generators.
        spec = self._spec if self._spec is not None else self.spec
        data = arguments if type(arguments) is dict else parse_arguments(self._name, arguments)
        validated = validate_arguments(self._name, spec, data)
        kwargs = spec.kwargs_from(validated)
        key: str | None = None
        if self.cache_results:
            key = _cache_key(validated)
            hit, cached = self._result_cache().get(key)
            if hit:
                return cached
        if spec.injected:
            for name in spec.injected:
                kwargs[name] = injected.get(name) if injected is not None else None
        args: Sequence[Any] = ()
        if spec.positional_only:
            args, kwargs = spec.call_args(kwargs)
        if self._is_async or inline_sync:
            result = self.entrypoint(*args, **kwargs)
            if type(result) is types.GeneratorType:  # as _call_and_drain does
                result = collect_sync(result, self.format_result)
        else:
            import asyncio  # a dict lookup once loaded; the thread hop costs far more

            result = await asyncio.to_thread(
                _call_and_drain, self.entrypoint, args, kwargs, self.format_result
            )
        kind = type(result)
        if kind is types.CoroutineType or (
            kind not in _PLAIN_RESULT_TYPES and inspect.isawaitable(result)
        ):
            result = await result
        if type(result) not in _PLAIN_RESULT_TYPES:
            if inspect.isasyncgen(result):
                result = await collect_async(result, self.format_result)
            elif inspect.isgenerator(result):
                result = collect_sync(result, self.format_result)
        if key is not None:
            self._result_cache().put(key, result)
        return result

    def _result_cache(self) -> ResultCache:
        if self._results is None or self._results.ttl != self.cache_ttl:
            self._results = ResultCache(self.cache_ttl, _RESULT_CACHE_SIZE)
        return self._results

    def clear_cache(self) -> None:
        """Forget the cached results of this tool."""
        if self._results is not None:
            self._results.clear()

    def format_result(self, result: Any) -> str:
        """Return the text the model sees for a result (see `pilothouse.tools.result`)."""
        return format_result(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the entrypoint directly, so a decorated function stays a normal function."""
        return self.entrypoint(*args, **kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Function:
        """Bind like a function does, so ``@tool`` works on methods in a class body.

        ``instance.method`` is a new `Function` with the same options whose entrypoint is the
        bound method; its schema is shared with every other instance's.
        """
        if instance is None:
            return self
        return self._with(types.MethodType(self.entrypoint, instance))

    def __repr__(self) -> str:
        return f"Function(name={self.name!r})"


def check_callable(fn: object) -> None:
    """Raise TypeError, saying what is accepted, unless ``fn`` can be made a tool."""
    if isinstance(fn, staticmethod | classmethod):
        raise TypeError(
            f"cannot make a tool of a {type(fn).__name__} object: put @{type(fn).__name__} "
            "above @tool, not below it"
        )
    if isinstance(fn, type):
        raise TypeError(
            f"cannot make a tool of the class {fn.__name__}: pass a function, a method of "
            "an instance, or a callable instance"
        )
    if not callable(fn):
        raise TypeError(
            f"a tool must be a callable (function or method), got {type(fn).__name__} {fn!r}"
        )


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return True
    if isinstance(fn, types.FunctionType | types.MethodType):
        return False
    call = inspect.getattr_static(type(fn), "__call__", None)
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def _cache_key(validated: BaseModel) -> str:
    try:
        data = validated.model_dump(mode="json", by_alias=True)
    except Exception as exc:
        # Imported only here, where Pydantic is loaded already (``validated`` is a model).
        from pydantic_core import PydanticSerializationError

        if not isinstance(exc, PydanticSerializationError):
            raise
        # Values JSON cannot hold (possible for untyped parameters): their str() will do.
        data = validated.model_dump(by_alias=True)
    return json.dumps(data, sort_keys=True, default=str)


def _call_and_drain(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    fmt: Callable[[Any], str],
) -> Any:
    # A sync generator's body runs while it is iterated, so it is drained here: in the
    # worker thread when the call runs in one.
    result = fn(*args, **kwargs)
    if type(result) is types.GeneratorType:  # a final type: same as inspect.isgenerator
        return collect_sync(result, fmt)
    return result
