"""MCPTools against real MCP servers written with the official MCP SDK (mcp_test_server.py):
one started as a stdio subprocess, one serving streamable HTTP on loopback.

Model decisions come from FunctionModel; everything else is real: the SDK's client and server,
the subprocess, the HTTP transport, and the run loop. The tests share one event loop, so that
those that need no fresh server share one (starting a server costs seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from serverkit import free_port, running_server, unavailable

from pilothouse import Agent, RunStatus
from pilothouse.models.message import Message, ToolCall
from pilothouse.models.test import FunctionModel
from pilothouse.run import events as ev
from pilothouse.run.bridge import run_sync

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(90),
    pytest.mark.asyncio(loop_scope="module"),
]

SERVER = Path(__file__).with_name("mcp_test_server.py")


@pytest.fixture(autouse=True)
def _needs_mcp() -> None:
    if importlib.util.find_spec("mcp") is None:
        unavailable("the mcp extra is not installed (pip install 'pilothouse[mcp]')")


def stdio_tools(**options: Any) -> Any:
    from pilothouse.tools.mcp import MCPTools

    return MCPTools(command=[sys.executable, str(SERVER), "stdio"], **options)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> Any:
    """One stdio server for the tests that do not stop it or need options."""
    if importlib.util.find_spec("mcp") is None:
        unavailable("the mcp extra is not installed (pip install 'pilothouse[mcp]')")
    async with stdio_tools() as tools:
        yield tools


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shaped() -> Any:
    """Filters, a prefix and a confirmation flag (named with the prefix)."""
    if importlib.util.find_spec("mcp") is None:
        unavailable("the mcp extra is not installed (pip install 'pilothouse[mcp]')")
    async with stdio_tools(
        include_tools=["add", "pid", "sleep"],
        exclude_tools=["sleep"],
        tool_name_prefix="calc",
        requires_confirmation_tools=["calc_pid"],
    ) as tools:
        yield tools


@contextlib.contextmanager
def http_server(port: int, log: Path) -> Iterator[str]:
    """The test server on streamable HTTP; yields its MCP endpoint URL."""
    with running_server(
        [sys.executable, str(SERVER), "http", str(port)],
        ready_url=f"http://127.0.0.1:{port}/health",
        log_path=log,
        timeout=60,
    ):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if importlib.util.find_spec("mcp") is None:
        unavailable("the mcp extra is not installed (pip install 'pilothouse[mcp]')")
    with http_server(free_port(), tmp_path_factory.mktemp("mcp_http") / "server.log") as url:
        yield url


def calling(*calls: ToolCall) -> Callable[[list[Message], list[Any]], Any]:
    """A model that makes ``calls`` in its first turn, then answers with the tool results."""

    def decide(messages: list[Message], tools: list[Any]) -> Any:
        if messages[-1].role == "tool":
            results = [m.content for m in messages if m.role == "tool"]
            return " | ".join(str(r) for r in results)
        return list(calls)

    return decide


async def run_events(agent: Agent, message: str, **options: Any) -> list[ev.BaseRunEvent]:
    return [e async for e in agent.arun(message, stream=True, stream_events=True, **options)]


def completed_tools(events: list[ev.BaseRunEvent]) -> list[Any]:
    return [e.tool for e in events if isinstance(e, ev.ToolCallCompletedEvent)]


# ---- stdio ---------------------------------------------------------------------------------


async def test_lists_the_servers_tools_with_their_schemas_as_given(shared: Any) -> None:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=[str(SERVER), "stdio"])
    async with Client(params) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    functions = {f.name: f for f in shared.functions}
    assert set(functions) == set(listed) == {
        "add", "search", "fail", "pid", "crash", "sleep", "whoami"
    }  # fmt: skip
    for name, function in functions.items():
        assert function.parameters == listed[name].input_schema
        assert function.definition.parameters == listed[name].input_schema
        assert function.description == listed[name].description
    assert "enum" in str(functions["search"].parameters["properties"]["kind"])


async def test_a_run_calls_mcp_tools_and_streams_their_completion(shared: Any) -> None:
    agent = Agent(
        model=FunctionModel(calling(ToolCall(name="add", arguments={"a": 2, "b": 3}))),
        tools=[shared],
    )
    events = await run_events(agent, "What is 2 + 3?")
    done = events[-1]
    assert isinstance(done, ev.RunCompletedEvent)
    assert done.content == "5"
    [execution] = completed_tools(events)
    assert execution.tool_name == "add"
    assert execution.result == "5"
    assert not execution.tool_call_error


async def test_a_failing_tool_gives_the_model_an_error_result(shared: Any) -> None:
    seen: list[Message] = []

    def decide(messages: list[Message], tools: list[Any]) -> Any:
        if messages[-1].role == "tool":
            seen.append(messages[-1])
            return "I could not do it."
        return [ToolCall(name="fail", arguments={"message": "the disk is full"})]

    events = await run_events(Agent(model=FunctionModel(decide), tools=[shared]), "Go")
    [execution] = completed_tools(events)
    assert execution.tool_call_error is True
    assert "the disk is full" in execution.result
    assert "MCPToolError" in execution.result
    assert seen and seen[0].tool_call_error and "the disk is full" in str(seen[0].content)
    assert isinstance(events[-1], ev.RunCompletedEvent)


async def test_arguments_the_schema_rejects_are_reported_to_the_model(shared: Any) -> None:
    call = ToolCall(name="add", arguments={"a": 1})  # b is required
    events = await run_events(Agent(model=FunctionModel(calling(call)), tools=[shared]), "Go")
    [execution] = completed_tools(events)
    assert execution.tool_call_error is True
    assert "b: missing required parameter" in execution.result


async def test_filters_and_prefix_shape_what_the_model_sees(shaped: Any) -> None:
    assert sorted(f.name for f in shaped.functions) == ["calc_add", "calc_pid"]
    call = ToolCall(name="calc_add", arguments={"a": 20, "b": 22})
    output = await Agent(model=FunctionModel(calling(call)), tools=[shaped]).arun("Go")
    assert output.status is RunStatus.completed
    assert output.content == "42"


async def test_a_filter_naming_an_unknown_tool_ends_the_run_with_a_clear_error() -> None:
    tools = stdio_tools(include_tools=["add", "multiply"])
    try:
        events = await run_events(
            Agent(model=FunctionModel(lambda m, t: "hi"), tools=[tools]), "Go"
        )
    finally:
        await tools.aclose()
    failed = events[-1]
    assert isinstance(failed, ev.RunErrorEvent)
    assert "multiply" in failed.content and "include_tools" in failed.content


async def test_confirmation_flags_pause_the_run_until_confirmed(shaped: Any) -> None:
    agent = Agent(model=FunctionModel(calling(ToolCall(name="calc_pid"))), tools=[shaped])
    paused = await agent.arun("Which process?")
    assert paused.status is RunStatus.paused
    [waiting] = paused.tools_requiring_confirmation
    assert waiting.tool_name == "calc_pid" and waiting.result is None
    waiting.confirmed = True
    finished = await agent.acontinue_run(paused)
    assert finished.status is RunStatus.completed
    assert finished.content.isdigit()
    assert [f.requires_confirmation for f in shaped.functions] == [False, True]


async def test_a_server_killed_mid_call_gives_an_error_and_is_restarted_on_the_next_call() -> None:
    async with stdio_tools() as tools:
        first = await tools.call_tool("pid")
        agent = Agent(model=FunctionModel(calling(ToolCall(name="crash"))), tools=[tools])
        events = await run_events(agent, "Crash it")
        [execution] = completed_tools(events)
        assert execution.tool_call_error is True
        assert "MCPConnectionError" in execution.result
        assert "started again on the next call" in execution.result
        assert isinstance(events[-1], ev.RunCompletedEvent)

        agent = Agent(model=FunctionModel(calling(ToolCall(name="pid"))), tools=[tools])
        output = await agent.arun("Which process?")
    assert output.status is RunStatus.completed
    assert not output.tools[0].tool_call_error
    assert output.content.isdigit() and output.content != first


async def test_a_server_killed_while_idle_is_restarted_by_the_next_call() -> None:
    async with stdio_tools() as tools:
        first = int(await tools.call_tool("pid"))
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while tools.is_connected():
            assert time.monotonic() < deadline, "the end of the connection was not noticed"
            await asyncio.sleep(0.01)
        second = int(await tools.call_tool("pid"))
    assert second != first


async def test_a_hanging_tool_is_cut_off_by_the_timeout_and_the_server_stays_usable() -> None:
    async with stdio_tools(timeout=1) as tools:
        agent = Agent(
            model=FunctionModel(calling(ToolCall(name="sleep", arguments={"seconds": 60}))),
            tools=[tools],
        )
        started = time.monotonic()
        events = await run_events(agent, "Wait")
        elapsed = time.monotonic() - started
        [execution] = completed_tools(events)
        assert execution.tool_call_error is True
        assert "MCPTimeoutError" in execution.result and "within 1s" in execution.result
        assert elapsed < 10
        assert isinstance(events[-1], ev.RunCompletedEvent)
        assert await tools.call_tool("add", {"a": 1, "b": 1}) == "2"


async def test_a_server_that_cannot_start_ends_the_run_with_an_error_event() -> None:
    from pilothouse.tools.mcp import MCPTools

    tools = MCPTools(command=[sys.executable, "-c", "import sys; sys.exit(1)"], timeout=10)
    agent = Agent(model=FunctionModel(lambda m, t: "unreachable"), tools=[tools])
    events = await run_events(agent, "Go")
    failed = events[-1]
    assert isinstance(failed, ev.RunErrorEvent)
    assert "could not connect" in failed.content or "handshake" in failed.content
    assert "sys.exit(1)" in failed.content
    output = await agent.arun("Again")
    assert output.status is RunStatus.error


async def test_runs_waiting_for_a_server_that_never_answers_fail_together() -> None:
    from pilothouse.tools.mcp import MCPTools

    silent = [sys.executable, "-c", "import time; time.sleep(60)"]
    tools = MCPTools(command=silent, connect_timeout=2)
    agent = Agent(model=FunctionModel(lambda m, t: "unreachable"), tools=[tools])
    started = time.monotonic()
    try:
        outputs = await asyncio.gather(*(agent.arun("Go") for _ in range(20)))
    finally:
        await tools.aclose()
    elapsed = time.monotonic() - started
    assert all(o.status is RunStatus.error for o in outputs)
    assert all("within 2s" in o.content for o in outputs), outputs[0].content
    # One connection attempt for all of them, not one after the other.
    assert elapsed < 10


async def test_one_toolkit_serves_100_concurrent_runs() -> None:
    def decide(messages: list[Message], tools: list[Any]) -> Any:
        if messages[-1].role == "tool":
            results = [str(m.content) for m in messages if m.role == "tool"]
            return ",".join(results)
        n = int(str(messages[-1].content))
        return [ToolCall(name="add", arguments={"a": n, "b": n}), ToolCall(name="pid")]

    # Not entered: the first of the concurrent runs connects, the others wait for it.
    tools = stdio_tools()
    try:
        agent = Agent(model=FunctionModel(decide), tools=[tools])
        outputs = await asyncio.gather(*(agent.arun(str(n)) for n in range(100)))
    finally:
        await tools.aclose()
    pids = set()
    for n, output in enumerate(outputs):
        assert output.status is RunStatus.completed, output.content
        total, pid = output.content.split(",")
        assert total == str(2 * n)
        pids.add(pid)
    assert len(pids) == 1, "the runs should share one server process"


async def test_sync_runs_in_another_thread_get_their_own_connection(shared: Any) -> None:
    agent = Agent(
        model=FunctionModel(calling(ToolCall(name="pid"))),
        tools=[shared],
    )

    def in_a_thread() -> list[str]:
        # run() from a thread without a running loop drives the thread's own event loop.
        try:
            return [agent.run("Which process?").content for _ in range(2)]
        finally:
            run_sync(shared.aclose())

    here = await shared.call_tool("pid")
    there = await asyncio.to_thread(in_a_thread)
    assert there[0] == there[1] != here
    # aclose() stopped the thread's server (and asked this loop's connection to close too).
    assert _is_gone(int(there[0]))
    assert (await shared.call_tool("pid")).isdigit()


def _is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # exited, not reaped
    except FileNotFoundError:
        return True


# ---- streamable HTTP ------------------------------------------------------------------------


async def test_http_server_tools_with_static_and_per_run_headers(http_url: str) -> None:
    from pilothouse.tools.mcp import MCPTools

    async def user_header(run_context: Any) -> dict[str, str]:
        return {"X-User": run_context.user_id}

    tools = MCPTools(url=http_url, headers={"X-Team": "blue"}, header_provider=user_header)
    agent = Agent(model=FunctionModel(calling(ToolCall(name="whoami"))), tools=[tools])
    try:
        outputs = await asyncio.gather(
            *(agent.arun("Who am I?", user_id=f"user{n}") for n in range(30))
        )
    finally:
        await tools.aclose()
    assert [o.content for o in outputs] == [f"user{n}/blue" for n in range(30)]


async def test_http_calls_and_errors(http_url: str) -> None:
    from pilothouse.tools.mcp import MCPToolError, MCPTools

    async with MCPTools(url=http_url) as tools:
        assert "add" in {f.name for f in tools.functions}
        assert await tools.call_tool("add", {"a": 2, "b": 40}) == "42"
        with pytest.raises(MCPToolError, match="no such luck"):
            await tools.call_tool("fail", {"message": "no such luck"})


async def test_an_unreachable_http_server_ends_the_run_with_an_error() -> None:
    from pilothouse.tools.mcp import MCPTools

    tools = MCPTools(url=f"http://127.0.0.1:{free_port()}/mcp", timeout=10)
    events = await run_events(Agent(model=FunctionModel(lambda m, t: "x"), tools=[tools]), "Go")
    failed = events[-1]
    assert isinstance(failed, ev.RunErrorEvent)
    assert "could not connect" in failed.content


async def test_an_http_server_that_restarts_is_reconnected(tmp_path: Path) -> None:
    from pilothouse.tools.mcp import MCPTools

    port = free_port()
    with http_server(port, tmp_path / "first.log") as url:
        tools = MCPTools(url=url, timeout=10)
        await tools.aload()
        first = await tools.call_tool("pid")
    try:
        agent = Agent(model=FunctionModel(calling(ToolCall(name="pid"))), tools=[tools])
        output = await agent.arun("Which process?")
        assert output.status is RunStatus.completed
        assert output.tools[0].tool_call_error is True
        with http_server(port, tmp_path / "second.log"):
            output = await agent.arun("Which process now?")
            assert not output.tools[0].tool_call_error, output.tools[0].result
            assert output.content.isdigit() and output.content != first
    finally:
        await tools.aclose()
