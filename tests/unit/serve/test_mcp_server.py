"""`pilothouse.serve.mcp.build_mcp_server`: agents as MCP tools, called in process with the MCP
SDK's own client (no transport, no network)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse import Agent, tool
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel, TestModel

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mcp") is None, reason="the mcp extra is not installed"
)


def _echo(messages: list[Message], tools: list[Any]) -> str:
    return f"echo: {messages[-1].content}"


@tool(requires_confirmation=True)
def deploy() -> str:
    """Deploy to production."""
    return "deployed"


class Order(BaseModel):
    item: str


async def call(agents: list[Agent], name: str, arguments: dict[str, Any]) -> Any:
    from mcp import Client

    from pilothouse.serve.mcp import build_mcp_server

    async with Client(build_mcp_server(agents)) as client:
        return await client.call_tool(name, arguments)


def test_tool_names_follow_the_agents_names() -> None:
    from pilothouse.serve.mcp import agent_tool_name

    assert agent_tool_name(Agent(name="Weather Bot!", model=TestModel())) == "weather_bot"
    nameless = Agent(id="agent-7", model=TestModel())
    assert agent_tool_name(nameless) == "agent-7"


def test_agents_that_would_share_a_tool_name_are_refused() -> None:
    from pilothouse.serve.mcp import build_mcp_server

    with pytest.raises(ValueError, match="distinct names"):
        build_mcp_server([Agent(name="Support"), Agent(name="support")])
    with pytest.raises(ValueError, match="run_agent"):
        build_mcp_server([Agent(name="run_agent")])
    with pytest.raises(ValueError, match="at least one agent"):
        build_mcp_server([])
    with pytest.raises(TypeError, match="expected Agent"):
        build_mcp_server(["support"])  # type: ignore[list-item]


async def test_a_run_answers_with_text_and_structured_content() -> None:
    agent = Agent(name="echo", model=FunctionModel(_echo))
    result = await call([agent], "run_agent", {"agent": "echo", "message": "hi"})
    assert not result.is_error
    assert result.content[0].text == "echo: hi"
    assert result.structured_content["status"] == "COMPLETED"
    assert result.structured_content["content"] == "echo: hi"


async def test_a_paused_run_is_an_error_result_naming_the_run() -> None:
    agent = Agent(name="ops", model=TestModel(), tools=[deploy])
    result = await call([agent], "ops", {"message": "ship it"})
    assert result.is_error
    text = result.content[0].text
    assert "paused" in text and "deploy" in text
    assert result.structured_content["run_id"] in text
    assert result.structured_content["status"] == "PAUSED"


async def test_input_the_agent_refuses_is_an_error_result() -> None:
    agent = Agent(name="shop", model=TestModel(), input_schema=Order)
    result = await call([agent], "shop", {"message": "not an order"})
    assert result.is_error
    assert "could not run" in result.content[0].text


async def test_bad_arguments_are_error_results() -> None:
    agent = Agent(name="echo", model=FunctionModel(_echo))
    empty = await call([agent], "echo", {"message": ""})
    wrong = await call([agent], "echo", {"message": "hi", "session_id": 7})
    assert empty.is_error and "message" in empty.content[0].text
    assert wrong.is_error and "session_id" in wrong.content[0].text
