"""Agents served over MCP: `create_mcp_app` mounted in a FastAPI app under a real uvicorn on
loopback (mcp_agents_app.py), called with the official MCP SDK's client and with MCPTools; and
``pilothouse mcp file.py:agent`` over stdio.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serverkit import free_port, running_server, unavailable

from pilothouse import Agent, RunStatus
from pilothouse.models.message import Message, ToolCall
from pilothouse.models.test import FunctionModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

HERE = Path(__file__).parent
AGENTS_APP = HERE / "mcp_agents_app.py"
SRC = HERE.parents[1] / "src"


def _env() -> dict[str, str]:
    # The servers import this checkout's pilothouse and the test app module.
    path = os.pathsep.join(p for p in (str(SRC), str(HERE), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for module in ("mcp", "fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (pip install 'pilothouse[mcp,serve]')")
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "mcp_agents_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("mcp_serve") / "uvicorn.log"
    with running_server(
        command, ready_url=f"http://127.0.0.1:{port}/health", log_path=log, env=_env(), timeout=60
    ):
        yield f"http://127.0.0.1:{port}"


def client(url: str, token: str | None = None, mode: str = "auto") -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    transport = streamable_http_client(url, http_client=http)
    return Client(transport, read_timeout_seconds=30, mode=mode)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


async def test_an_mcp_client_lists_the_agents_tools(base_url: str) -> None:
    async with client(f"{base_url}/mcp/", "ada-token") as mcp:
        tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
    assert set(tools) == {"run_agent", "echo", "counter", "broken", "whoami"}
    assert tools["echo"].description == "Repeats the message."
    assert tools["echo"].input_schema["required"] == ["message"]
    agent_choice = tools["run_agent"].input_schema["properties"]["agent"]
    assert agent_choice["enum"] == ["Echo", "counter", "broken", "whoami"]


# "legacy": the initialize handshake of MCP clients from before the 2026 protocol revision.
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_mcp_client_runs_agents(base_url: str, mode: str) -> None:
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    async with client(f"{base_url}/mcp/", "ada-token", mode) as mcp:
        direct = await mcp.call_tool("echo", {"message": "hello"})
        via_run_agent = await mcp.call_tool("run_agent", {"agent": "Echo", "message": "hi"})
        unknown = await mcp.call_tool("run_agent", {"agent": "nobody", "message": "hi"})
        modern = mcp.protocol_version in MODERN_PROTOCOL_VERSIONS
    assert modern == (mode == "auto")
    assert not direct.is_error and text_of(direct) == "echo: hello"
    assert direct.structured_content["status"] == "COMPLETED"
    assert direct.structured_content["session_id"]
    assert text_of(via_run_agent) == "echo: hi"
    assert unknown.is_error and "nobody" in text_of(unknown) and "'Echo'" in text_of(unknown)


async def test_a_session_id_continues_the_conversation(base_url: str) -> None:
    async with client(f"{base_url}/mcp/", "ada-token") as mcp:
        first = await mcp.call_tool("counter", {"message": "one"})
        session = first.structured_content["session_id"]
        second = await mcp.call_tool("counter", {"message": "two", "session_id": session})
        elsewhere = await mcp.call_tool("counter", {"message": "three"})
    assert text_of(first) == "turn 1"
    assert text_of(second) == "turn 2"
    assert second.structured_content["session_id"] == session
    assert text_of(elsewhere) == "turn 1"


async def test_a_failing_run_is_an_error_result(base_url: str) -> None:
    async with client(f"{base_url}/mcp/", "ada-token") as mcp:
        result = await mcp.call_tool("broken", {"message": "hi"})
        missing = await mcp.call_tool("echo", {})
    assert result.is_error
    assert "ERROR" in text_of(result) and "the model is down" in text_of(result)
    assert result.structured_content["status"] == "ERROR"
    assert missing.is_error and "message" in text_of(missing)


async def test_the_authorised_user_is_the_runs_user(base_url: str) -> None:
    async with client(f"{base_url}/mcp/", "ada-token") as mcp:
        ada = await mcp.call_tool("whoami", {"message": "who?"})
    async with client(f"{base_url}/mcp/", "bob-token") as mcp:
        bob = await mcp.call_tool("whoami", {"message": "who?"})
    async with client(f"{base_url}/open/") as mcp:
        nobody = await mcp.call_tool("whoami", {"message": "who?"})
    assert text_of(ada) == "you are ada"
    assert text_of(bob) == "you are bob"
    assert text_of(nobody) == "you are None"


async def test_requests_without_credentials_are_refused(base_url: str) -> None:
    import httpx2

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=10) as http:
        refused = await http.post(f"{base_url}/mcp/", json=body, headers=headers)
        wrong = await http.post(
            f"{base_url}/mcp/", json=body, headers={**headers, "Authorization": "Bearer x"}
        )
    assert refused.status_code == 401
    assert wrong.status_code == 401


async def test_an_agent_uses_another_agent_through_mcp_tools(base_url: str) -> None:
    from pilothouse.tools.mcp import MCPTools

    def decide(messages: list[Message], tools: list[Any]) -> Any:
        if messages[-1].role == "tool":
            return f"the echo agent said: {messages[-1].content}"
        return [ToolCall(name="team_echo", arguments={"message": "ping"})]

    async with MCPTools(
        url=f"{base_url}/mcp/",
        headers={"Authorization": "Bearer ada-token"},
        tool_name_prefix="team",
    ) as tools:
        output = await Agent(model=FunctionModel(decide), tools=[tools]).arun("Ask echo")
    assert output.status is RunStatus.completed
    assert output.content == "the echo agent said: echo: ping"


async def test_pilothouse_mcp_serves_one_agent_over_stdio() -> None:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "pilothouse.cli", "mcp", f"{AGENTS_APP}:echo"],
        env=_env(),
    )
    async with Client(params, read_timeout_seconds=30) as mcp:
        names = {tool.name for tool in (await mcp.list_tools()).tools}
        result = await mcp.call_tool("echo", {"message": "over stdio"})
    assert names == {"run_agent", "echo"}
    assert text_of(result) == "echo: over stdio"


def test_pilothouse_mcp_rejects_a_target_that_is_not_an_agent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pilothouse.cli import main

    assert main(["mcp", f"{AGENTS_APP}:authorize"]) == 2
    assert "not an Agent" in capsys.readouterr().err
    assert main(["mcp", "no_such_module_anywhere:agent"]) == 2
    assert main(["mcp", "missing-colon"]) == 2
