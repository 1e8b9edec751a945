"""An MCP server written with the official MCP SDK, for the MCPTools tests.

python mcp_test_server.py stdio          serve over stdin/stdout
python mcp_test_server.py http PORT      serve streamable HTTP on 127.0.0.1:PORT at /mcp
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

server = MCPServer("pilothouse-test-server", log_level="WARNING")


@server.tool()
async def add(a: int, b: int) -> int:
    """Add two integers."""
    # A short pause, so that concurrent calls overlap on the server.
    await asyncio.sleep(0.005)
    return a + b


@server.tool()
def search(query: str, limit: int = 5, kind: Literal["web", "news"] = "web") -> str:
    """Search for something (a tool with an enum and a default in its schema)."""
    return f"{limit} {kind} results for {query}"


@server.tool()
def fail(message: str) -> str:
    """Always fails with the given message."""
    raise ToolError(message)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Kill the server in the middle of the call."""
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def whoami(ctx: Context) -> str:
    """The X-User header of the HTTP request carrying this call."""
    headers = ctx.headers or {}
    return headers.get("x-user", "nobody") + "/" + headers.get("x-team", "none")


@server.custom_route("/health", methods=["GET"])
async def health(request: Request) -> Response:
    """Readiness probe for the tests."""
    return PlainTextResponse("ok")


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
