"""Tools from MCP servers: `MCPTools` connects to a server (stdio or streamable HTTP), lists its
tools and calls them for an agent's runs.

Needs the ``mcp`` extra (``pip install 'pilothouse[mcp]'``). Importing this package does not
import the MCP SDK: that happens, in a worker thread, when a toolkit first connects.
"""

from __future__ import annotations

from pilothouse.tools.mcp.errors import (
    MCPConnectionError,
    MCPTimeoutError,
    MCPToolError,
    MCPToolsError,
)
from pilothouse.tools.mcp.toolkit import HeaderProvider, MCPTools

__all__ = [
    "HeaderProvider",
    "MCPConnectionError",
    "MCPTimeoutError",
    "MCPToolError",
    "MCPTools",
    "MCPToolsError",
]
