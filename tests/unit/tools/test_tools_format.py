from __future__ import annotations

import datetime
import enum

from pydantic import BaseModel

from pilothouse.tools import tool


class Weather(BaseModel):
    city: str
    degrees: float


class Mood(enum.Enum):
    HAPPY = "happy"


@tool
def f() -> None: ...


def test_strings_and_none() -> None:
    assert f.format_result("plain text") == "plain text"
    assert f.format_result("") == ""
    assert f.format_result(None) == ""


def test_pydantic_model_as_json() -> None:
    assert f.format_result(Weather(city="Oslo", degrees=3.5)) == '{"city":"Oslo","degrees":3.5}'


def test_json_values() -> None:
    assert f.format_result({"a": 1, "b": [True, None]}) == '{"a": 1, "b": [true, null]}'
    assert f.format_result([1, "två"]) == '[1, "två"]'
    assert f.format_result((1, 2)) == "[1, 2]"
    assert f.format_result(42) == "42"
    assert f.format_result(2.5) == "2.5"
    assert f.format_result(True) == "true"


def test_unknown_values_inside_json_use_str_and_models_their_json() -> None:
    day = datetime.date(2024, 5, 1)
    result = f.format_result({"day": day, "w": Weather(city="Rome", degrees=20)})
    assert result == '{"day": "2024-05-01", "w": {"city": "Rome", "degrees": 20.0}}'


def test_bytes_are_a_short_note() -> None:
    assert f.format_result(b"\x00" * 2048) == "<2048 bytes of binary data>"
    assert f.format_result(bytearray(3)) == "<3 bytes of binary data>"


def test_other_objects_use_str() -> None:
    assert f.format_result(Mood.HAPPY) == "Mood.HAPPY"
    assert f.format_result({1, 2}) == "{1, 2}"


def test_json_failures_fall_back_to_str() -> None:
    circular: list[object] = []
    circular.append(circular)
    assert f.format_result(circular) == "[[...]]"
    assert f.format_result({(1, 2): "tuple key"}) == "{(1, 2): 'tuple key'}"
