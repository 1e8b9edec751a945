"""A small MCP server, written with the official MCP SDK, that the MCP example starts over stdio.

Run it yourself with ``python examples/mcp_servers/calculator.py``: it speaks MCP on
stdin/stdout.
"""

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("calculator", log_level="WARNING")


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.tool()
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    if b == 0:
        raise ToolError("cannot divide by zero")
    return a / b


if __name__ == "__main__":
    server.run("stdio")
