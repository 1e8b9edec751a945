"""Serving agents to other programs: over HTTP, and as MCP servers (`pilothouse.serve.mcp`)."""
