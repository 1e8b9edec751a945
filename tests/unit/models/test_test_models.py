"""TestModel and FunctionModel: the public test doubles."""

from __future__ import annotations

import datetime
import json
import uuid
from enum import Enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from pilothouse import Agent, RunStatus
from pilothouse.models import Message, ModelRequest, ModelResponse, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel, TestModel, example_arguments


class Color(Enum):
    red = "red"
    blue = "blue"


class Point(BaseModel):
    x: int
    y: float


def kitchen_sink(
    name: str,
    count: int,
    ratio: float,
    flag: bool,
    mode: Literal["fast", "slow"],
    color: Color,
    when: datetime.datetime,
    day: datetime.date,
    ident: uuid.UUID,
    point: Point,
    tags: list[str],
    maybe: int | None = None,
) -> str:
    """Take every kind of argument."""
    assert isinstance(when, datetime.datetime) and isinstance(point, Point)
    return f"{name}:{mode}:{color.value}:{point.x}"


def test_test_model_calls_every_tool_with_valid_made_up_arguments() -> None:
    out = Agent(model=TestModel(), tools=[kitchen_sink]).run("go")
    assert out.status is RunStatus.completed
    [execution] = out.tools
    assert execution.tool_call_error is False, execution.result
    assert execution.result == "a:fast:red:0"
    assert json.loads(out.content) == {"kitchen_sink": "a:fast:red:0"}


def test_test_model_call_tools_picks_tools_and_text_is_the_answer() -> None:
    def one() -> str:
        """One."""
        return "1"

    def two() -> str:
        """Two."""
        return "2"

    out = Agent(model=TestModel(text="fine", call_tools=["two"]), tools=[one, two]).run("go")
    assert [t.tool_name for t in out.tools] == ["two"]
    assert out.content == "fine"
    assert Agent(model=TestModel()).run("go").content == "success (no tool calls)"
    with pytest.raises(TypeError, match="call_tools"):
        TestModel(call_tools="one")


def test_example_arguments_cover_refs_and_optional() -> None:
    schema = {
        "type": "object",
        "properties": {
            "p": {"$ref": "#/$defs/P"},
            "opt": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "skip": {"type": "string"},
        },
        "required": ["p", "opt"],
        "$defs": {
            "P": {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 3}},
                "required": ["n"],
            }
        },
    }
    assert example_arguments(schema) == {"p": {"n": 3}, "opt": 0}


async def test_function_model_may_be_async_and_sees_tool_definitions() -> None:
    seen: list[list[str]] = []

    async def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        seen.append([t.name for t in tools])
        return "async answer"

    out = await Agent(model=FunctionModel(decide), tools=[kitchen_sink]).arun("go")
    assert out.content == "async answer"
    assert seen == [["kitchen_sink"]]
    assert out.metrics.input_tokens > 0 and out.metrics.output_tokens > 0


async def test_function_model_accepts_model_response_and_single_tool_call() -> None:
    model = FunctionModel(lambda m, t: ModelResponse(content="c", tool_calls=[ToolCall(name="x")]))
    response = await model.response([Message(role="user", content="hi")], ModelRequest())
    assert response.content == "c" and [c.name for c in response.tool_calls] == ["x"]
    single = FunctionModel(lambda m, t: ToolCall(name="y", arguments={"a": 1}))
    response = await single.response([Message(role="user", content="hi")])
    assert response.tool_calls[0].parsed_arguments() == {"a": 1}


async def test_function_model_rejects_bad_returns_clearly() -> None:
    out = await Agent(model=FunctionModel(lambda m, t: 42)).arun("go")
    assert out.status is RunStatus.error
    assert "must return a str, a ToolCall" in out.content


def test_function_model_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="needs a function"):
        FunctionModel()
    with pytest.raises(TypeError, match="must be callable"):
        FunctionModel("not callable")  # type: ignore[arg-type]


async def test_stream_function_yields_text_and_tool_calls() -> None:
    def weather(city: str) -> str:
        """Weather."""
        return f"rain in {city}"

    def streamer(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            yield "It is "
            yield messages[-1].text()
        else:
            yield ToolCall(name="weather", arguments={"city": "Bergen"})

    out = await Agent(model=FunctionModel(stream_function=streamer), tools=[weather]).arun("go")
    assert out.content == "It is rain in Bergen"
    assert out.metrics.model_calls == 2 and out.metrics.output_tokens > 0
