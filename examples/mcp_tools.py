"""Tools from an MCP server: `MCPTools` starts a stdio MCP server and offers its tools to an agent.

The server is examples/mcp_servers/calculator.py, written with the official MCP SDK. Runs
offline on `FunctionModel`, which decides each turn here (a real model would choose the tools
itself); the MCP server, its subprocess and the tool calls are real.

- the server's tools, with their JSON schemas as the server gives them;
- a run calling one, with the tool call events;
- a tool failing on the server: the error becomes the tool's result, which the model reads;
- ``async with`` connects up front and stops the server at the end.

The other direction, agents as MCP servers, is in docs/mcp.md (`pilothouse mcp module:agent`,
`pilothouse.serve.mcp.create_mcp_app`).
"""

import asyncio
import sys
from pathlib import Path

from pilothouse import Agent
from pilothouse.models import ToolCall
from pilothouse.models.test import FunctionModel
from pilothouse.run.events import ToolCallCompletedEvent
from pilothouse.tools.mcp import MCPTools

SERVER = Path(__file__).parent / "mcp_servers" / "calculator.py"


def decide(messages, tools):
    """Divide 10 by the number in the question, then report the tool's result."""
    if messages[-1].role == "tool":
        return f"The calculator says: {messages[-1].content}"
    number = float(messages[-1].content.split()[-1].rstrip("?"))
    return [ToolCall(name="calc_divide", arguments={"a": 10, "b": number})]


async def main() -> None:
    # tool_name_prefix keeps apart the tools of several servers; requires_confirmation_tools,
    # include_tools, exclude_tools, timeout, and for HTTP servers url=, headers= and
    # header_provider= are the other options.
    async with MCPTools(command=[sys.executable, str(SERVER)], tool_name_prefix="calc") as tools:
        for function in tools.functions:
            print(f"{function.name}: {function.description} {function.parameters['properties']}")

        agent = Agent(model=FunctionModel(decide), tools=[tools])
        for question in ("What is 10 divided by 4?", "What is 10 divided by 0?"):
            print(f"\n> {question}")
            async for event in agent.arun(question, stream=True, stream_events=True):
                if isinstance(event, ToolCallCompletedEvent):
                    call = event.tool
                    failed = " (error)" if call.tool_call_error else ""
                    print(f"  {call.tool_name}({call.tool_args}) -> {event.content}{failed}")
            print(agent.get_last_run_output().content)


if __name__ == "__main__":
    asyncio.run(main())
