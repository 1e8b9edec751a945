"""`SchemaFunction`: tools that bring their own JSON schema (as MCP servers' tools do)."""

from __future__ import annotations

from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.exceptions import ToolArgumentsError
from pilothouse.models.message import Message, ToolCall
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.tools import Function, SchemaFunction

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city."},
        "units": {"type": "string", "enum": ["metric", "imperial"], "default": "metric"},
    },
    "required": ["city"],
    "additionalProperties": False,
}


def weather_tool(calls: list[tuple[dict[str, Any], Any]], **options: Any) -> SchemaFunction:
    async def call(arguments: dict[str, Any], run_context: Any) -> str:
        calls.append((arguments, run_context))
        return f"sunny in {arguments['city']}"

    return SchemaFunction(
        call, name="weather", description="The weather.", parameters=SCHEMA, **options
    )


def test_the_schema_and_description_are_offered_as_given() -> None:
    tool = weather_tool([])
    assert tool.parameters is not SCHEMA and tool.parameters == SCHEMA
    assert tool.definition.name == "weather"
    assert tool.definition.description == "The weather."
    assert tool.definition.parameters == SCHEMA
    assert tool.injected == frozenset({"run_context"})
    with pytest.raises(TypeError, match="JSON schema"):
        _ = tool.spec


def test_plain_schema_rules_are_checked_before_the_call() -> None:
    tool = weather_tool([])
    assert tool.prepare('{"city": "Oslo"}') == {"city": "Oslo"}
    with pytest.raises(ToolArgumentsError, match="city: missing required parameter"):
        tool.prepare({})
    with pytest.raises(ToolArgumentsError, match=r"country: unknown parameter \(accepted"):
        tool.prepare({"city": "Oslo", "country": "NO"})
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        tool.prepare("{city")
    open_schema = SchemaFunction(
        weather_tool([]).entrypoint,
        name="open",
        description=None,
        parameters={"type": "object", "properties": {}},
    )
    # Without additionalProperties: false, unknown names are for the other side to judge.
    assert open_schema.prepare({"anything": 1}) == {"anything": 1}


def test_bad_parameters_are_refused_when_made() -> None:
    with pytest.raises(TypeError, match="JSON schema dict"):
        SchemaFunction(weather_tool([]).entrypoint, name="x", description=None, parameters=[])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid tool name"):
        SchemaFunction(weather_tool([]).entrypoint, name="a b", description=None, parameters={})


async def test_acall_passes_arguments_and_the_run_context() -> None:
    calls: list[tuple[dict[str, Any], Any]] = []
    tool = weather_tool(calls)
    context = object()
    assert await tool.acall({"city": "Oslo"}, {"run_context": context}) == "sunny in Oslo"
    assert calls == [({"city": "Oslo"}, context)]


async def test_results_are_cached_per_arguments_when_asked() -> None:
    calls: list[tuple[dict[str, Any], Any]] = []
    tool = weather_tool(calls, cache_results=True)
    for _ in range(3):
        assert await tool.acall({"city": "Oslo"}) == "sunny in Oslo"
    await tool.acall({"city": "Rome"})
    assert [c[0]["city"] for c in calls] == ["Oslo", "Rome"]


def test_options_can_be_changed_like_any_tools() -> None:
    tool = weather_tool([])
    confirmed = Function.from_callable(tool, requires_confirmation=True)
    assert isinstance(confirmed, SchemaFunction)
    assert confirmed.requires_confirmation and not tool.requires_confirmation
    assert confirmed.parameters == SCHEMA and confirmed.description == "The weather."


def test_a_run_calls_it_and_reports_bad_arguments_to_the_model() -> None:
    calls: list[tuple[dict[str, Any], Any]] = []

    def decide(messages: list[Message], tools: list[Any]) -> Any:
        tool_messages = [m for m in messages if m.role == "tool"]
        if len(tool_messages) == 2:
            return f"{tool_messages[0].content} / {tool_messages[1].content}"
        if tool_messages:
            return [ToolCall(name="weather", arguments={"city": "Oslo"})]
        return [ToolCall(name="weather", arguments={"town": "Oslo"})]

    agent = Agent(model=FunctionModel(decide), tools=[weather_tool(calls)])
    output = agent.run("Weather?", user_id="ada")
    assert output.status is RunStatus.completed
    first, second = output.tools
    assert first.tool_call_error and "town: unknown parameter" in first.result
    assert "city: missing required parameter" in first.result
    assert second.result == "sunny in Oslo" and not second.tool_call_error
    [(_, context)] = calls
    assert context.user_id == "ada" and context.run_id == output.run_id


def test_test_model_fills_in_arguments_from_the_given_schema() -> None:
    calls: list[tuple[dict[str, Any], Any]] = []
    output = Agent(model=TestModel(), tools=[weather_tool(calls)]).run("Weather?")
    assert output.status is RunStatus.completed
    assert calls[0][0] == {"city": "a"}
