"""Python functions as tools a model can call.

* `tool` marks a function as a tool (``@tool`` or ``@tool(name=..., ...)``);
* `Function` is one tool: name, description, JSON schema, argument validation and calling;
* `Toolkit` groups tools under a name, with instructions;
* `resolve_tools` flattens what an agent was given into `Function` objects for a run, and
  `validate_tools` checks it cheaply when the agent is made;
* `INJECTED_PARAMETERS` are parameter names the run loop fills in (``agent``,
  ``run_context``, ``session_state``...), hidden from the model.
"""

from __future__ import annotations

from pilothouse.tools.decorator import tool
from pilothouse.tools.function import Function
from pilothouse.tools.resolve import resolve_tools, validate_tools
from pilothouse.tools.spec import INJECTED_PARAMETERS
from pilothouse.tools.toolkit import Toolkit

__all__ = [
    "INJECTED_PARAMETERS",
    "Function",
    "Toolkit",
    "resolve_tools",
    "tool",
    "validate_tools",
]
