"""Toolkits whose tools are found at run time, and resolving a run's tools when some are.

Most tools are known when the agent is made; their `ToolSet` is built once and cached (see
`pilothouse.tools.resolve`). A `DynamicToolkit` learns its tools asynchronously, from a
server for instance (`pilothouse.tools.mcp.MCPTools` lists an MCP server's tools): the run loop
awaits `aresolve_toolset` before the first model request of a run, which lets each dynamic
toolkit load (or refresh) its tools, then resolves the list as usual. Lists without a dynamic
toolkit never reach this module: `cached_toolset` answers for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pilothouse.tools.function import Function
from pilothouse.tools.resolve import ToolSet, cached_toolset, resolve_toolset
from pilothouse.tools.toolkit import Toolkit

__all__ = ["DynamicToolkit", "aresolve_toolset"]


class DynamicToolkit(Toolkit):
    """A toolkit whose tools are loaded asynchronously, before each run that uses it.

    Subclasses implement `aload` (make the tools available; cheap when they already are) and
    `loaded_functions` (the tools as last loaded, without I/O). Tool sets built from a list
    holding a dynamic toolkit are not cached, so a change of its tools shows in the next run.
    """

    def __init__(self, name: str = "toolkit", instructions: str | None = None) -> None:
        super().__init__(name=name, tools=None, instructions=instructions)

    async def aload(self, run_context: Any) -> None:
        """Load or refresh the tools for a run about to start (``run_context``: its `RunContext`).

        Raise to end the run with an error when the tools cannot be had; the message is the
        run's error message.
        """
        raise NotImplementedError

    def loaded_functions(self) -> list[Function]:
        """The tools as last loaded by `aload`; no I/O. Empty before the first load."""
        raise NotImplementedError

    @property
    def functions(self) -> list[Function]:
        """The tools as last loaded (see `loaded_functions`)."""
        return self.loaded_functions()


async def aresolve_toolset(tools: Sequence[object] | None, run_context: Any = None) -> ToolSet:
    """Resolve a run's tools, first letting each `DynamicToolkit` among them load its tools.

    Toolkits load concurrently; the list is then resolved like `resolve_toolset` does. The
    first time, that happens in a worker thread, since building the schemas of plain functions
    imports and inspects code; once the other tools' schemas are built (their own tool set is
    cached), it happens on the event loop: a few dictionary lookups per tool.

    Raises:
        Exception: What a toolkit's `aload` raised (the first one, when several fail), or what
            `resolve_toolset` raises.
    """
    import asyncio  # imported here: `import pilothouse.tools` must stay cheap

    entries = list(tools or ())
    dynamic = [entry for entry in entries if isinstance(entry, DynamicToolkit)]
    if len(dynamic) == 1:
        await dynamic[0].aload(run_context)
    elif dynamic:
        await asyncio.gather(*(toolkit.aload(run_context) for toolkit in dynamic))
    if not dynamic:
        return await asyncio.to_thread(resolve_toolset, entries)
    static = [entry for entry in entries if not isinstance(entry, DynamicToolkit)]
    if cached_toolset(static) is not None:
        return resolve_toolset(entries)
    return await asyncio.to_thread(_resolve_with_static_part, static, entries)


def _resolve_with_static_part(static: list[object], entries: list[object]) -> ToolSet:
    # The static part's own tool set is cached, so that later runs can tell that its schemas
    # are built and resolve the whole list on the event loop.
    resolve_toolset(static)
    return resolve_toolset(entries)
