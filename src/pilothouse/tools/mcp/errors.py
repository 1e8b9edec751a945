"""What an MCP tool call can fail with. The run loop shows these to the model as the result."""

from __future__ import annotations

from pilothouse.exceptions import PilothouseError

__all__ = ["MCPConnectionError", "MCPTimeoutError", "MCPToolError", "MCPToolsError"]


class MCPToolsError(PilothouseError):
    """Base class of the errors of `MCPTools`; also raised for a bad configuration."""


class MCPConnectionError(MCPToolsError):
    """The MCP server could not be reached, or the connection ended during the call."""


class MCPTimeoutError(MCPToolsError):
    """The MCP server did not answer within the toolkit's ``timeout``."""


class MCPToolError(MCPToolsError):
    """The MCP server answered the call with an error (the tool failed or refused the call)."""
