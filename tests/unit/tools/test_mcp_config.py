"""`MCPTools` configuration checks and result formatting (no server needed)."""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import sys

import pytest

from pilothouse.tools.mcp import MCPTools
from pilothouse.tools.mcp.results import result_text


def test_the_transport_follows_from_command_or_url() -> None:
    assert MCPTools("python server.py").transport == "stdio"
    assert MCPTools(["python", "server.py"], transport="stdio").transport == "stdio"
    assert MCPTools(url="http://127.0.0.1:8000/mcp").transport == "streamable-http"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either command"),
        ({"command": "x", "url": "http://h/mcp"}, "either command"),
        ({"command": "x", "transport": "streamable-http"}, "needs url"),
        ({"url": "http://h/mcp", "transport": "stdio"}, "needs command"),
        ({"url": "http://h/mcp", "transport": "sse"}, "'stdio' or 'streamable-http'"),
        ({"command": "x", "headers": {"a": "b"}}, "env=..."),
        ({"url": "http://h/mcp", "env": {"A": "b"}}, "stdio servers"),
        ({"url": "ftp://h/mcp"}, "http:// or https://"),
        ({"command": ""}, "empty"),
        ({"command": "x", "timeout": 0}, "positive"),
        ({"command": "x", "timeout": float("inf")}, "positive"),
        ({"command": "x", "tool_name_prefix": "has space"}, "tool_name_prefix"),
    ],
)
def test_bad_configurations_are_refused_with_what_to_do(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MCPTools(**kwargs)


def test_filters_must_be_collections_of_names() -> None:
    with pytest.raises(TypeError, match="include_tools must be a list"):
        MCPTools("x", include_tools="add")
    with pytest.raises(TypeError, match="command must be"):
        MCPTools(42)  # type: ignore[arg-type]


def test_creating_the_toolkit_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from pilothouse.tools.mcp import MCPTools\n"
        "MCPTools('python server.py', include_tools=['a'])\n"
        "print(sorted(m for m in ('mcp', 'httpx2', 'anyio') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_before_the_first_listing_there_are_no_tools() -> None:
    tools = MCPTools("python server.py")
    assert tools.functions == []
    assert "python server.py" in repr(tools)


@pytest.mark.skipif(importlib.util.find_spec("mcp") is None, reason="the mcp extra is missing")
def test_results_become_text_for_the_model() -> None:
    from mcp import types

    png = base64.b64encode(b"\x89PNG" + b"0" * 96).decode()
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="first"),
            types.ImageContent(type="image", data=png, mime_type="image/png"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="file:///a.txt", text="inside"),
            ),
            types.ResourceLink(type="resource_link", name="b", uri="file:///b.bin"),
        ]
    )
    assert result_text(result).splitlines() == [
        "first",
        "[image: image/png, 100 bytes]",
        "inside",
        "[resource link: file:///b.bin]",
    ]
    structured = types.CallToolResult(content=[], structured_content={"temperature": 21})
    assert result_text(structured) == '{"temperature": 21}'
