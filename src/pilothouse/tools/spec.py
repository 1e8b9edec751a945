"""Reading a Python callable into a `ToolSpec`: its JSON schema and its argument validator.

Building a spec resolves type hints, creates a Pydantic model from the signature and generates
its JSON schema: milliseconds of work. It is done once per underlying function and cached, so
resolving the same tools on every run costs a dictionary lookup. Bound methods share the spec
of their ``__func__`` (with ``self`` left out): methods of different instances are validated by
one model while each call still goes to its own instance.

This is the module that imports Pydantic. `pilothouse.tools.function` imports it on first use
of a tool's schema or validator, so that ``import pilothouse.tools`` stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
import types
import typing
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pilothouse.tools.docstring import parse_docstring
from pilothouse.tools.injected import INJECTED_PARAMETERS
from pilothouse.tools.schema import strip_titles

__all__ = ["INJECTED_PARAMETERS", "ToolSpec", "build_spec", "get_spec"]

_EMPTY: Any = inspect.Parameter.empty
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

# Extra keys are refused so that a misspelt argument is reported to the model instead of being
# silently dropped. Parameters named "model_..." are ordinary tool parameters, not Pydantic API.
_ARGUMENTS_CONFIG = ConfigDict(extra="forbid", protected_namespaces=())


@dataclass(frozen=True, slots=True, eq=False)
class ToolSpec:
    """What Pilothouse knows about one callable's parameters; built once and shared.

    Attributes:
        description: The docstring's description part, None without a docstring.
        schema: JSON schema of the parameters the model fills in. Shared: do not mutate.
        model: Pydantic model that validates those parameters. Its fields have internal names
            and the parameter names as aliases, so that parameters may be called ``json`` or
            ``model_config`` without clashing with `BaseModel` attributes.
        fields: ``(field name, parameter name)`` pairs in signature order.
        injected: Names from `INJECTED_PARAMETERS` the callable declares.
        positional_only: ``(name, default)`` of positional-only parameters, in order.
        always_pass: Parameters whose default in the signature is a Pydantic ``Field(...)``:
            the resolved default must be passed, since the Python default is a `FieldInfo`.
    """

    description: str | None
    schema: dict[str, Any]
    model: type[BaseModel]
    fields: tuple[tuple[str, str], ...]
    injected: frozenset[str]
    positional_only: tuple[tuple[str, Any], ...] = ()
    always_pass: frozenset[str] = frozenset()

    def kwargs_from(self, validated: BaseModel) -> dict[str, Any]:
        """Return the keyword arguments for a call from a validated arguments model.

        Only the parameters the model actually sent are included (plus `always_pass`), so
        Python defaults apply to the others exactly as in a direct call.
        """
        given = validated.model_fields_set
        return {
            param: getattr(validated, field)
            for field, param in self.fields
            if field in given or param in self.always_pass
        }

    def call_args(self, kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Split keyword arguments into positional and keyword ones for the call.

        Positional-only parameters cannot be passed by keyword, so they move into the
        positional list (with their defaults filling gaps before a later given one).
        """
        if not self.positional_only:
            return [], kwargs
        remaining = dict(kwargs)
        given = [name for name, _ in self.positional_only if name in remaining]
        args: list[Any] = []
        for name, default in self.positional_only:
            if not given:
                break
            if name in remaining:
                args.append(remaining.pop(name))
                given.remove(name)
            else:
                args.append(default)
        return args, remaining


_FUNCTION_SPECS: weakref.WeakKeyDictionary[Any, ToolSpec] = weakref.WeakKeyDictionary()
_METHOD_SPECS: weakref.WeakKeyDictionary[Any, ToolSpec] = weakref.WeakKeyDictionary()
# Building happens under a lock so that concurrent first uses still build each spec only once.
_BUILD_LOCK = threading.RLock()


def get_spec(fn: Callable[..., Any]) -> ToolSpec:
    """Return the cached spec of a callable, building it on first use.

    The cache is keyed weakly by the underlying function (``__func__`` for bound methods,
    ``type(obj).__call__`` for callable instances), so specs of discarded functions go away.
    Callables that cannot be weakly referenced (most builtins) are not cached.
    """
    target, bound = _spec_target(fn)
    cache = _METHOD_SPECS if bound else _FUNCTION_SPECS
    try:
        spec = cache.get(target)
    except TypeError:
        return build_spec(target, bound=bound)
    if spec is None:
        with _BUILD_LOCK:
            spec = cache.get(target)
            if spec is None:
                spec = build_spec(target, bound=bound)
                cache[target] = spec
    return spec


def _spec_target(fn: Callable[..., Any]) -> tuple[Any, bool]:
    if isinstance(fn, types.MethodType):
        return fn.__func__, True
    if isinstance(fn, types.FunctionType):
        return fn, False
    call = inspect.getattr_static(type(fn), "__call__", None)
    if isinstance(call, types.FunctionType):
        # A callable instance: its class's __call__, with self left out like a bound method.
        return call, True
    return fn, False


def build_spec(target: Callable[..., Any], *, bound: bool = False) -> ToolSpec:
    """Build the spec of a callable without consulting the cache.

    Args:
        target: The function to read.
        bound: Leave out the first parameter (``self``/``cls``), as for a bound method.

    Raises:
        TypeError: The signature cannot be read, a type hint cannot be resolved, or a
            parameter's type cannot be validated or described as JSON schema by Pydantic.
    """
    label = getattr(target, "__qualname__", None) or repr(target)
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the signature of {label}: {exc}") from exc
    params = list(signature.parameters.values())
    if bound and params and params[0].kind not in _VARIADIC:
        params = params[1:]

    doc = parse_docstring(inspect.getdoc(_unwrap_partial(target)))
    wanted = [p for p in params if p.kind not in _VARIADIC and p.name not in INJECTED_PARAMETERS]
    hints = _resolve_hints(target, wanted, label)

    fields: dict[str, Any] = {}
    names: list[tuple[str, str]] = []
    always_pass: set[str] = set()
    for param in wanted:
        annotation = hints.get(param.name, Any)
        default = param.default
        if isinstance(default, FieldInfo):
            annotation = Annotated[annotation, default]
            always_pass.add(param.name)
            default = PydanticUndefined
        elif default is _EMPTY:
            default = PydanticUndefined
        elif default is None and not _allows_none(annotation):
            # `x: int = None` means "optional" to its author; let the model send null too.
            annotation = _optional(annotation)
        extra: dict[str, Any] = {}
        if param.name in doc.params and not _has_description(annotation):
            extra["description"] = doc.params[param.name]
        field_name = f"p{len(names)}"
        fields[field_name] = (annotation, Field(default, alias=param.name, **extra))
        names.append((field_name, param.name))

    model = _create_model(label, fields, names)
    schema = _json_schema(label, model, fields, names)
    return ToolSpec(
        description=doc.description,
        schema=schema,
        model=model,
        fields=tuple(names),
        injected=frozenset(p.name for p in params if p.name in INJECTED_PARAMETERS),
        positional_only=tuple(
            (p.name, p.default)
            for p in params
            if p.kind is inspect.Parameter.POSITIONAL_ONLY and p.name not in INJECTED_PARAMETERS
        ),
        always_pass=frozenset(always_pass),
    )


def _unwrap_partial(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def _resolve_hints(
    target: Callable[..., Any], params: list[inspect.Parameter], label: str
) -> dict[str, Any]:
    source = _unwrap_partial(target)
    try:
        return typing.get_type_hints(source, include_extras=True)
    except NameError:
        pass  # Resolve parameter by parameter below, to name the culprit.
    except (TypeError, AttributeError):
        return {}  # Builtins and some C callables carry no annotations.
    # Hints that only matter elsewhere (the return type, injected parameters such as an
    # `agent: Agent` imported under TYPE_CHECKING) must not make the tool unusable.
    globalns = getattr(inspect.unwrap(source), "__globals__", {})
    hints: dict[str, Any] = {}
    for param in params:
        if param.annotation is _EMPTY:
            continue
        holder = types.SimpleNamespace(__annotations__={param.name: param.annotation})
        try:
            hints.update(typing.get_type_hints(holder, globalns=globalns, include_extras=True))
        except NameError as exc:
            raise TypeError(
                f"cannot resolve the type hint {param.annotation!r} of parameter "
                f"{param.name!r} of {label}: {exc}. Tool parameter types must be importable "
                "from the function's module, not defined inside a function."
            ) from exc
    return hints


def _allows_none(annotation: Any) -> bool:
    if annotation in (Any, None, type(None), object):
        return True
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _allows_none(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_allows_none(arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return None in typing.get_args(annotation)
    return False


def _optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        return Annotated.__class_getitem__((_optional(inner), *metadata))
    return Union[annotation, None]  # noqa: UP007 - built at runtime from a value


def _has_description(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(item, FieldInfo) and item.description for item in annotation.__metadata__)


def _model_name(label: str) -> str:
    return re.sub(r"\W", "_", label) + "_arguments"


def _create_model(
    label: str, fields: dict[str, Any], names: list[tuple[str, str]]
) -> type[BaseModel]:
    try:
        model: type[BaseModel] = create_model(
            _model_name(label), __config__=_ARGUMENTS_CONFIG, **fields
        )
    except Exception as exc:
        raise TypeError(_describe_failure(label, fields, names, exc, "validate")) from exc
    return model


def _json_schema(
    label: str, model: type[BaseModel], fields: dict[str, Any], names: list[tuple[str, str]]
) -> dict[str, Any]:
    try:
        raw = model.model_json_schema()
    except Exception as exc:
        raise TypeError(_describe_failure(label, fields, names, exc, "describe")) from exc
    cleaned: dict[str, Any] = strip_titles(raw)
    # Conventional key order, and "properties" even when empty: some providers insist on it.
    schema: dict[str, Any] = {
        "type": cleaned.pop("type", "object"),
        "properties": cleaned.pop("properties", {}),
    }
    schema.update(cleaned)
    return schema


def _describe_failure(
    label: str,
    fields: dict[str, Any],
    names: list[tuple[str, str]],
    exc: Exception,
    action: str,
) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for field_name, param in names:
        annotation = fields[field_name][0]
        try:
            TypeAdapter(annotation).json_schema()
        except Exception as param_exc:
            detail = str(param_exc).splitlines()[0] if str(param_exc) else reason
            return (
                f"cannot make a tool of {label}: Pydantic cannot {action} parameter {param!r} "
                f"of type {annotation!r} ({detail}). Use a JSON-friendly type such as str, "
                "int, a list, a dict or a Pydantic model."
            )
    return f"cannot make a tool of {label}: {reason}"
