"""What MCPTools adds to a call of an MCP server's tool, and what such a call costs in a run.

Usage::

    .venv/bin/python benchmarks/mcp_tools.py            # 300 calls per measurement
    .venv/bin/python benchmarks/mcp_tools.py --calls 100

The server is examples/mcp_servers/calculator.py (written with the MCP SDK), over stdio. The
compared actions alternate call by call, so that both see the same machine load; each figure is
the median wall time per call or run, and the mean CPU time of this process per call or run
(what the client side costs, without the wait for the server's process):

1. ``add`` called through the SDK's own ``Client.call_tool`` and through
   ``MCPTools.call_tool``, over the same connection: the difference is what the toolkit adds
   (error mapping, timeouts, the per-call headers context).
2. A whole run with one tool call and an answer (``FunctionModel``) with the tool as a plain
   Python function, and as the MCP server's tool: the second includes the round trip and the
   per-run resolution of a tool list holding a dynamic toolkit.
3. ``aresolve_toolset`` for a list holding a loaded ``MCPTools`` (what each run of such an agent
   pays before its first model request) against ``cached_toolset`` for a static list.
4. 100 concurrent runs sharing one ``MCPTools``: wall time, and runs per second. Both processes
   are CPU-bound then (the MCP SDK spends about as much CPU per call as the run around it), so
   this is a throughput figure: compare it with the CPU time per run above.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pilothouse import Agent
from pilothouse.models.message import Message, ToolCall
from pilothouse.models.test import FunctionModel
from pilothouse.tools import aresolve_toolset, cached_toolset, resolve_toolset
from pilothouse.tools.mcp import MCPTools

SERVER = Path(__file__).parents[1] / "examples" / "mcp_servers" / "calculator.py"


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def decide(messages: list[Message], tools: list[Any]) -> Any:
    if messages[-1].role == "tool":
        return str(messages[-1].content)
    return [ToolCall(name="add", arguments={"a": 1, "b": 2})]


async def median_us(action: Callable[[], Awaitable[Any]], count: int) -> float:
    for _ in range(min(20, count)):
        await action()
    gc.collect()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def interleaved(
    actions: dict[str, Callable[[], Awaitable[Any]]], count: int
) -> dict[str, tuple[float, float]]:
    """``{name: (median wall µs, mean CPU µs)}``, the actions taking turns call by call."""
    for action in actions.values():
        for _ in range(min(20, count)):
            await action()
    gc.collect()
    walls: dict[str, list[float]] = {name: [] for name in actions}
    cpus: dict[str, float] = dict.fromkeys(actions, 0.0)
    order = list(actions.items())
    for _ in range(count):
        # Each goes first half the time: a call can find the server still busy with the last.
        order.reverse()
        for name, action in order:
            cpu, wall = time.process_time(), time.perf_counter()
            await action()
            walls[name].append(time.perf_counter() - wall)
            cpus[name] += time.process_time() - cpu
    return {
        name: (statistics.median(walls[name]) * 1e6, cpus[name] / count * 1e6) for name in actions
    }


def show(label: str, figures: tuple[float, float]) -> None:
    print(f"  {label:<40} {figures[0]:9.0f} µs wall {figures[1]:9.0f} µs CPU")


async def main(calls: int) -> None:
    print(f"1-minute load average {os.getloadavg()[0]:.2f}; {calls} calls per measurement")
    async with MCPTools(command=[sys.executable, str(SERVER)]) as tools:
        client = (await tools._connection()).client
        assert client is not None
        arguments = {"a": 1, "b": 2}
        figures = await interleaved(
            {
                "sdk": lambda: client.call_tool("add", arguments),
                "ours": lambda: tools.call_tool("add", arguments),
            },
            calls,
        )
        show("call, MCP SDK Client.call_tool", figures["sdk"])
        show("call, MCPTools.call_tool", figures["ours"])
        added = (figures["ours"][0] - figures["sdk"][0], figures["ours"][1] - figures["sdk"][1])
        show("MCPTools overhead per call", added)

        plain = Agent(model=FunctionModel(decide), tools=[add])
        remote = Agent(model=FunctionModel(decide), tools=[tools])
        runs = await interleaved(
            {"plain": lambda: plain.arun("1 + 2?"), "remote": lambda: remote.arun("1 + 2?")},
            calls,
        )
        show("run with one call, Python tool", runs["plain"])
        show("run with one call, MCP tool", runs["remote"])

        static = [add]
        resolve_toolset(static)
        dynamic = [tools]
        cached = await median_us(_async(lambda: cached_toolset(static)), calls)
        resolved = await median_us(lambda: aresolve_toolset(dynamic), calls)
        print(f"  {'tool list, static (cached_toolset)':<40} {cached:9.2f} µs")
        print(f"  {'tool list with MCPTools (aresolve_toolset)':<40} {resolved:9.2f} µs")

        walls = []
        for _ in range(3):
            started = time.perf_counter()
            outputs = await asyncio.gather(*(remote.arun("1 + 2?") for _ in range(100)))
            walls.append(time.perf_counter() - started)
            assert all(o.content == "3.0" for o in outputs), outputs[0].content
        wall = statistics.median(walls) * 1e6
        label = "100 concurrent runs, one MCPTools"
        print(f"  {label:<40} {wall:9.0f} µs wall ({100 / wall * 1e6:.0f} runs/s)")


def _async(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return fn()

    return run


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(main(parser.parse_args().calls))
