"""Python functions as tools a model can call.

* `tool` marks a function as a tool (``@tool`` or ``@tool(name=..., ...)``);
* `Function` is one tool: name, description, JSON schema, argument validation and calling;
* `Toolkit` groups tools under a name, with instructions;
* `resolve_tools` flattens what an agent was given into `Function` objects for a run, and
  `validate_tools` checks it cheaply when the agent is made;
* `resolve_toolset` does the same plus definitions and a name index (a `ToolSet`), cached so
  that repeated runs with the same tools cost a dictionary lookup;
* `SchemaFunction` is a tool described by a JSON schema it brings (from an MCP server, say);
* `DynamicToolkit` is a toolkit whose tools are loaded at run time, and `aresolve_toolset`
  the async resolution the run loop uses when a tool list holds one;
* `INJECTED_PARAMETERS` are parameter names the run loop fills in (``agent``,
  ``run_context``, ``session_state``...), hidden from the model.

Importing this package does not import Pydantic: that happens when a schema is first built or
arguments are first validated.
"""

from __future__ import annotations

from pilothouse.tools.decorator import tool
from pilothouse.tools.dynamic import DynamicToolkit, aresolve_toolset
from pilothouse.tools.function import Function
from pilothouse.tools.injected import INJECTED_PARAMETERS
from pilothouse.tools.resolve import (
    ToolSet,
    cached_toolset,
    resolve_tools,
    resolve_toolset,
    validate_tools,
)
from pilothouse.tools.schema_function import SchemaFunction
from pilothouse.tools.toolkit import Toolkit

__all__ = [
    "INJECTED_PARAMETERS",
    "DynamicToolkit",
    "Function",
    "SchemaFunction",
    "ToolSet",
    "Toolkit",
    "aresolve_toolset",
    "cached_toolset",
    "resolve_tools",
    "resolve_toolset",
    "tool",
    "validate_tools",
]
