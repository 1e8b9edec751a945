from __future__ import annotations

import datetime
import enum
import uuid
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

from pilothouse.exceptions import ToolArgumentsError
from pilothouse.tools import Function, tool


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


class Item(BaseModel):
    name: str
    quantity: int = 1


@tool
def order(
    item: Item,
    when: datetime.date,
    size: Size = Size.SMALL,
    at: datetime.datetime | None = None,
    ref: uuid.UUID | None = None,
    folder: Path | None = None,
    extras: list[Item] | None = None,
    count: int = 1,
    mode: Literal["fast", "slow"] = "fast",
) -> str:
    """Place an order."""
    return "ok"


def test_values_are_converted_to_annotated_types() -> None:
    kwargs = order.prepare(
        {
            "item": {"name": "tea"},
            "when": "2024-05-01",
            "size": "l",
            "at": "2024-05-01T10:30:00Z",
            "ref": "12345678-1234-5678-1234-567812345678",
            "folder": "/tmp/x",
            "extras": [{"name": "milk", "quantity": "2"}],
            "count": "3",
        }
    )
    assert kwargs["item"] == Item(name="tea")
    assert kwargs["when"] == datetime.date(2024, 5, 1)
    assert kwargs["size"] is Size.LARGE
    assert kwargs["at"] == datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.UTC)
    assert kwargs["ref"] == uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert kwargs["folder"] == Path("/tmp/x")
    assert kwargs["extras"] == [Item(name="milk", quantity=2)]
    assert kwargs["count"] == 3


def test_json_string_and_omitted_defaults() -> None:
    kwargs = order.prepare('{"item": {"name": "tea"}, "when": "2024-01-02"}')
    # Defaults are left to Python: only what the model sent is passed.
    assert kwargs == {"item": Item(name="tea"), "when": datetime.date(2024, 1, 2)}


@pytest.mark.parametrize("empty", ["", "   ", None, "null", {}])
def test_empty_arguments(empty: object) -> None:
    def ping(x: int = 1) -> int:
        return x

    assert Function.from_callable(ping).prepare(empty) == {}  # type: ignore[arg-type]


def test_invalid_json() -> None:
    with pytest.raises(ToolArgumentsError, match=r"tool 'order': not valid JSON \(Expecting"):
        order.prepare('{"item": ')


def test_json_that_is_not_an_object() -> None:
    with pytest.raises(ToolArgumentsError, match=r"expected a JSON object .* got an array"):
        order.prepare("[1, 2]")
    with pytest.raises(ToolArgumentsError, match="got a string"):
        order.prepare('"hello"')


def test_missing_required_parameters_each_named() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        order.prepare({})
    message = str(info.value)
    assert message.startswith("Invalid arguments for tool 'order':")
    assert "- item: missing required parameter" in message
    assert "- when: missing required parameter" in message


def test_unknown_parameter_lists_accepted() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        order.prepare({"item": {"name": "x"}, "when": "2024-01-01", "colour": "red"})
    message = str(info.value)
    assert "- colour: unknown parameter (accepted parameters: item, when, size," in message


def test_wrong_types_name_parameter_reason_and_input() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        order.prepare(
            {
                "item": {"name": "x", "quantity": "lots"},
                "when": "not a date",
                "count": "three",
                "mode": "medium",
                "size": "xl",
            }
        )
    lines = str(info.value).splitlines()[1:]
    assert len(lines) == 5
    assert lines[0].startswith("- item.quantity: Input should be a valid integer")
    assert lines[0].endswith('(got "lots")')
    assert lines[1].startswith("- when: Input should be a valid date")
    assert lines[2].startswith("- size: Input should be 's' or 'l'")
    assert lines[3].startswith("- count: Input should be a valid integer")
    assert lines[4].startswith("- mode: Input should be 'fast' or 'slow'")


def test_error_location_in_lists_and_long_inputs_shortened() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        order.prepare(
            {"item": {"name": "x" * 10}, "when": "x" * 500, "extras": [{"name": "a"}, {"nam": 1}]}
        )
    message = str(info.value)
    assert "- extras[1].name: missing required parameter" in message
    # The 500-character input is cut down to a short excerpt.
    assert '(got "' + "x" * 56 + "...)" in message
    assert "x" * 100 not in message


def test_injected_parameters_are_not_accepted_from_the_model() -> None:
    def f(city: str, agent: object = None, run_context: object = None) -> str:
        return city

    function = Function.from_callable(f)
    with pytest.raises(ToolArgumentsError, match="- agent: unknown parameter"):
        function.prepare({"city": "Paris", "agent": "evil"})


def test_arguments_not_mutated() -> None:
    arguments = {"item": {"name": "tea"}, "when": "2024-05-01"}
    order.prepare(arguments)
    assert arguments == {"item": {"name": "tea"}, "when": "2024-05-01"}


def test_positional_only_parameters() -> None:
    def f(a: int, b: int = 2, /, c: int = 3) -> tuple[int, int, int]:
        return a, b, c

    function = Function.from_callable(f)
    assert function.prepare({"a": "1"}) == {"a": 1}
    assert set(function.parameters["properties"]) == {"a", "b", "c"}
