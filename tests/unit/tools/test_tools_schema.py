from __future__ import annotations

import datetime
import enum
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from pilothouse.tools import Function, tool


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str


class Person(BaseModel):
    name: str
    address: Address


class Point(TypedDict):
    x: int
    y: int


def props(fn: Any) -> dict[str, Any]:
    schema: dict[str, Any] = Function.from_callable(fn).parameters["properties"]
    return schema


def test_primitives_and_required() -> None:
    def f(s: str, i: int, x: float, b: bool = False) -> None:
        """Primitives."""

    schema = Function.from_callable(f).parameters
    assert schema["type"] == "object"
    assert schema["properties"] == {
        "s": {"type": "string"},
        "i": {"type": "integer"},
        "x": {"type": "number"},
        "b": {"type": "boolean", "default": False},
    }
    assert schema["required"] == ["s", "i", "x"]
    assert schema["additionalProperties"] is False


def test_no_titles_anywhere_but_property_named_title_kept() -> None:
    def f(title: str, person: Person) -> None:
        """Titles."""

    schema = Function.from_callable(f).parameters
    assert "title" not in schema
    assert schema["properties"]["title"] == {"type": "string"}
    assert "title" not in schema["$defs"]["Person"]
    assert "title" not in schema["$defs"]["Person"]["properties"]["name"]


def test_literal_gives_enum() -> None:
    def f(unit: Literal["celsius", "fahrenheit"] = "celsius") -> None: ...

    assert props(f)["unit"] == {
        "type": "string",
        "enum": ["celsius", "fahrenheit"],
        "default": "celsius",
    }


def test_enum_values_in_defs() -> None:
    def f(color: Color, priority: Priority = Priority.LOW) -> None: ...

    schema = Function.from_callable(f).parameters
    assert schema["properties"]["color"] == {"$ref": "#/$defs/Color"}
    assert schema["$defs"]["Color"] == {"type": "string", "enum": ["red", "blue"]}
    assert schema["$defs"]["Priority"]["enum"] == [1, 2]
    assert schema["properties"]["priority"]["default"] == 1
    assert schema["required"] == ["color"]


def test_optional_and_union() -> None:
    def f(
        e: int | None,
        a: int | None = None,
        b: Optional[str] = None,  # noqa: UP045 - the old spelling must work too
        c: Union[int, str] = 0,  # noqa: UP007
        d: int | None = 5,
    ) -> None: ...

    p = props(f)
    assert p["a"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert p["b"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert p["c"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert p["d"]["default"] == 5
    assert Function.from_callable(f).parameters["required"] == ["e"]


def test_none_default_without_optional_accepts_null() -> None:
    def f(limit: int = None) -> None: ...  # type: ignore[assignment]  # noqa: RUF013

    function = Function.from_callable(f)
    assert props(f)["limit"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert function.prepare({"limit": None}) == {"limit": None}


def test_none_default_keeps_annotated_metadata() -> None:
    def f(
        limit: Annotated[int, Field(description="At most.", ge=1)] = None,  # type: ignore[assignment]  # noqa: RUF013
    ) -> None: ...

    limit = props(f)["limit"]
    assert limit["description"] == "At most."
    assert limit["anyOf"] == [{"type": "integer", "minimum": 1}, {"type": "null"}]


def test_containers() -> None:
    def f(
        tags: list[str],
        scores: dict[str, float],
        pair: tuple[int, str],
        many: tuple[int, ...] = (),
        nested: list[dict[str, int]] | None = None,
    ) -> None: ...

    p = props(f)
    assert p["tags"] == {"type": "array", "items": {"type": "string"}}
    assert p["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert p["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert p["pair"]["type"] == "array"
    assert p["many"]["items"] == {"type": "integer"}
    assert p["nested"]["anyOf"][0] == {
        "type": "array",
        "items": {"type": "object", "additionalProperties": {"type": "integer"}},
    }


def test_datetime_date_uuid_path() -> None:
    def f(when: datetime.datetime, day: datetime.date, ident: uuid.UUID, where: Path) -> None: ...

    p = props(f)
    assert p["when"] == {"type": "string", "format": "date-time"}
    assert p["day"] == {"type": "string", "format": "date"}
    assert p["ident"] == {"type": "string", "format": "uuid"}
    assert p["where"]["type"] == "string"


def test_nested_models_use_defs_and_refs() -> None:
    def f(person: Person) -> None: ...

    schema = Function.from_callable(f).parameters
    assert schema["properties"]["person"] == {"$ref": "#/$defs/Person"}
    assert schema["$defs"]["Person"]["properties"]["address"] == {"$ref": "#/$defs/Address"}
    assert schema["$defs"]["Address"]["required"] == ["street", "city"]
    assert schema["$defs"]["Address"]["description"] == "A postal address."


def test_typed_dict() -> None:
    def f(point: Point) -> None: ...

    schema = Function.from_callable(f).parameters
    ref = schema["properties"]["point"]["$ref"].split("/")[-1]
    assert schema["$defs"][ref]["properties"] == {
        "x": {"type": "integer"},
        "y": {"type": "integer"},
    }


def test_annotated_field_description_and_constraints() -> None:
    def f(
        count: Annotated[int, Field(description="How many.", ge=1, le=10)] = 1,
        name: Annotated[str, Field(min_length=2)] = "ab",
    ) -> None:
        """Count.

        Args:
            count: Docstring text loses to Field(description=...).
            name: The name.
        """

    p = props(f)
    assert p["count"] == {
        "type": "integer",
        "description": "How many.",
        "minimum": 1,
        "maximum": 10,
        "default": 1,
    }
    assert p["name"]["description"] == "The name."
    assert p["name"]["minLength"] == 2


def test_field_as_default_value() -> None:
    def f(limit: int = Field(5, description="Max results.", ge=1)) -> int:
        return limit

    function = Function.from_callable(f)
    assert props(f)["limit"] == {
        "type": "integer",
        "description": "Max results.",
        "minimum": 1,
        "default": 5,
    }
    # The Python default is a FieldInfo, so the real default must be passed.
    assert function.prepare({}) == {"limit": 5}


def test_docstring_descriptions_in_schema_and_tool_description() -> None:
    @tool
    def get_weather(city: str, days: int = 1) -> str:
        """Get the weather forecast.

        Args:
            city: Name of the city.
            days: Days ahead.
        """
        return city

    assert get_weather.description == "Get the weather forecast."
    assert get_weather.parameters["properties"]["city"]["description"] == "Name of the city."
    assert get_weather.parameters["properties"]["days"]["description"] == "Days ahead."


def test_untyped_params_accept_anything_typed_never_empty() -> None:
    def f(x, y: int, z=3) -> None:  # type: ignore[no-untyped-def]
        ...

    p = props(f)
    assert p["x"] == {}
    assert p["z"] == {"default": 3}
    assert p["y"] == {"type": "integer"}


def test_string_annotations_from_future_import_resolve() -> None:
    # This module uses `from __future__ import annotations`: every hint is a string.
    def f(a: int, b: list[Address], c: datetime.date) -> None: ...

    p = props(f)
    assert all(p[name] for name in ("a", "b", "c"))
    assert p["b"]["items"] == {"$ref": "#/$defs/Address"}


def test_no_parameters() -> None:
    def ping() -> str:
        return "pong"

    schema = Function.from_callable(ping).parameters
    assert schema["properties"] == {}
    assert "required" not in schema


def test_parameter_names_that_clash_with_pydantic() -> None:
    def f(json: str, model_config: int = 0, schema: bool = False) -> tuple[str, int, bool]:
        return json, model_config, schema

    function = Function.from_callable(f)
    assert set(function.parameters["properties"]) == {"json", "model_config", "schema"}
    assert function.prepare({"json": "x", "model_config": "2"}) == {"json": "x", "model_config": 2}


def test_variadic_parameters_left_out() -> None:
    def f(a: int, *args: int, **kwargs: str) -> None: ...

    assert list(props(f)) == ["a"]


def test_definition() -> None:
    @tool(name="weather", description="Custom description.")
    def get_weather(city: str) -> str:
        """Docstring description."""
        return city

    definition = get_weather.definition
    assert definition.name == "weather"
    assert definition.description == "Custom description."
    assert definition.parameters is get_weather.parameters
    assert get_weather.definition is definition


def test_unsupported_type_names_the_parameter() -> None:
    class Opaque:
        pass

    def f(ok: int, thing: Opaque) -> None: ...

    function = Function.from_callable(f)
    with pytest.raises(TypeError, match="parameter 'thing'"):
        _ = function.parameters


def test_unresolvable_hint_names_the_parameter() -> None:
    def f(x: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    function = Function.from_callable(f)
    with pytest.raises(TypeError, match=r"NotDefinedAnywhere.*parameter 'x'"):
        _ = function.parameters


def test_unresolvable_hints_on_injected_params_and_return_are_ignored() -> None:
    def f(city: str, agent: MissingAgentType = None) -> MissingReturnType:  # type: ignore[name-defined]  # noqa: F821
        return city

    function = Function.from_callable(f)
    assert function.parameters["properties"] == {"city": {"type": "string"}}
    assert function.injected == frozenset({"agent"})
