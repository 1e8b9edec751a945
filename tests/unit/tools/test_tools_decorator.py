from __future__ import annotations

import pytest

from pilothouse.tools import Function, tool


def test_bare_decorator() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Function)
    assert add.name == "add"
    assert add.description == "Add two numbers."
    assert add.requires_confirmation is False
    assert add.cache_ttl == 3600


def test_decorator_with_options() -> None:
    @tool(
        name="remove_file",
        description="Delete a file.",
        requires_confirmation=True,
        stop_after_tool_call=True,
        show_result=True,
        external_execution=True,
        cache_results=True,
        cache_ttl=5,
    )
    def delete(path: str) -> None:
        """Not used."""

    assert delete.name == "remove_file"
    assert delete.description == "Delete a file."
    assert delete.requires_confirmation is True
    assert delete.stop_after_tool_call is True
    assert delete.show_result is True
    assert delete.external_execution is True
    assert delete.cache_results is True
    assert delete.cache_ttl == 5
    assert delete.definition.name == "remove_file"


def test_user_input_fields_imply_requires_user_input() -> None:
    @tool(user_input_fields=["to"])
    def send(to: str, body: str) -> None: ...

    @tool(requires_user_input=True)
    def ask(question: str) -> None: ...

    assert send.requires_user_input is True
    assert send.user_input_fields == ["to"]
    assert ask.requires_user_input is True
    assert ask.user_input_fields is None


def test_decorator_on_async_function() -> None:
    @tool()
    async def fetch(url: str) -> str:
        """Fetch a page."""
        return url

    assert fetch.name == "fetch"
    assert fetch.parameters["required"] == ["url"]


async def test_decorated_function_still_callable_directly() -> None:
    @tool
    def double(x: int) -> int:
        return x * 2

    @tool
    async def triple(x: int) -> int:
        return x * 3

    assert double(4) == 8
    assert double(x=5) == 10
    assert await triple(2) == 6


def test_unknown_option_lists_accepted_ones() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument confirm; accepted: name, "):

        @tool(confirm=True)  # type: ignore[call-overload, untyped-decorator]
        def f() -> None: ...

    with pytest.raises(TypeError, match="cache_ttl"):
        Function.from_callable(lambda: None, nme="x")  # type: ignore[call-arg]


def test_non_callable_is_rejected() -> None:
    with pytest.raises(
        TypeError, match=r"@tool decorates a function, got str 'search'.*name=\.\.\."
    ):
        tool("search")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="must be a callable"):
        tool()(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="class"):
        tool(int)


def test_invalid_tool_name() -> None:
    with pytest.raises(ValueError, match="invalid tool name '<lambda>'"):
        tool(lambda: None)
    assert tool(lambda: None, name="noop").name == "noop"
    with pytest.raises(ValueError, match="invalid tool name"):
        tool(name="has space")(lambda: None)


def test_tool_on_methods_in_class_body() -> None:
    class Calculator:
        def __init__(self, offset: int) -> None:
            self.offset = offset

        @tool(requires_confirmation=True)
        def shift(self, x: int) -> int:
            """Shift a number."""
            return x + self.offset

    one, two = Calculator(1), Calculator(2)
    assert isinstance(Calculator.shift, Function)
    assert isinstance(one.shift, Function)
    assert one.shift.requires_confirmation is True
    assert one.shift(10) == 11
    assert two.shift(10) == 12
    # self is not a parameter, and both instances share one schema.
    assert one.shift.parameters == {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "required": ["x"],
        "additionalProperties": False,
    }
    assert one.shift.parameters is two.shift.parameters


async def test_classmethod_and_staticmethod_over_tool() -> None:
    class Registry:
        prefix = "id-"

        @classmethod
        @tool
        def make(cls, n: int) -> str:
            return f"{cls.prefix}{n}"

        @staticmethod
        @tool
        def plain(n: int) -> int:
            return n + 1

    made = Function.from_callable(Registry.make)
    assert made.name == "make"
    assert list(made.parameters["properties"]) == ["n"]
    assert await made.acall({"n": 3}) == "id-3"
    assert isinstance(Registry().plain, Function)
    assert await Registry().plain.acall({"n": 1}) == 2


def test_tool_below_staticmethod_gives_a_clear_error() -> None:
    with pytest.raises(TypeError, match="put @staticmethod above @tool"):
        tool(staticmethod(lambda: None))
    with pytest.raises(TypeError, match="put @classmethod above @tool"):
        tool(classmethod(lambda cls: None))  # type: ignore[call-overload]


def test_from_callable_on_function_copies_with_new_options() -> None:
    @tool(requires_confirmation=True)
    def f() -> None: ...

    assert Function.from_callable(f) is f
    renamed = Function.from_callable(f, name="g")
    assert renamed is not f
    assert (renamed.name, renamed.requires_confirmation) == ("g", True)
    assert f.name == "f"
    assert renamed.parameters is f.parameters


def test_cache_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cache_ttl"):
        tool(cache_ttl=0, name="x")(lambda: None)


def test_repr_is_short() -> None:
    @tool
    def f() -> None: ...

    assert repr(f) == "Function(name='f')"


async def test_function_of_a_function_uses_the_inner_callable() -> None:
    @tool(name="inner")
    def f(x: int) -> int:
        return x + 1

    outer = Function(f, name="outer")
    assert outer.entrypoint is f.entrypoint
    assert list(outer.parameters["properties"]) == ["x"]
    assert await outer.acall({"x": 1}) == 2
