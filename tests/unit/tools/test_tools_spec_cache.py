from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

import pilothouse.tools.spec as spec_module
from pilothouse.tools import Function, resolve_tools


@pytest.fixture
def build_counter(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    built: list[Any] = []
    real = spec_module.build_spec

    def counting(target: Any, *, bound: bool = False) -> spec_module.ToolSpec:
        built.append(target)
        return real(target, bound=bound)

    monkeypatch.setattr(spec_module, "build_spec", counting)
    return built


def test_schema_built_once_per_function(build_counter: list[Any]) -> None:
    def lookup(key: str, default: int = 0) -> int:
        return default

    first = Function.from_callable(lookup)
    second = Function.from_callable(lookup, name="lookup_again")
    assert build_counter == []  # creating a Function does no schema work
    assert first.parameters is second.parameters
    assert first.spec.model is second.spec.model
    for _ in range(3):
        resolve_tools([lookup])[0].definition  # noqa: B018
    assert build_counter == [lookup]


def test_bound_methods_share_the_spec_of_their_function(build_counter: list[Any]) -> None:
    class Store:
        def get(self, key: str) -> str:
            return key

    a, b = Store(), Store()
    fa, fb = Function.from_callable(a.get), Function.from_callable(b.get)
    assert fa.spec is fb.spec
    assert build_counter == [Store.get]
    assert "self" not in fa.parameters["properties"]


def test_unbound_function_and_bound_method_get_their_own_specs() -> None:
    class Store:
        def get(self, key: str) -> str:
            return key

    unbound = Function.from_callable(Store.get)
    bound = Function.from_callable(Store().get)
    assert list(unbound.parameters["properties"]) == ["self", "key"]
    assert list(bound.parameters["properties"]) == ["key"]


def test_cache_does_not_keep_functions_alive() -> None:
    def make() -> Any:
        def temporary(x: int) -> int:
            return x

        return temporary

    fn = make()
    Function.from_callable(fn).parameters  # noqa: B018
    ref = weakref.ref(fn)
    del fn
    gc.collect()
    assert ref() is None


def test_builtins_work_without_caching() -> None:
    function = Function.from_callable(len, name="length")
    assert list(function.parameters["properties"]) == ["obj"]
