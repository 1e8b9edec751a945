"""Agents as MCP servers, so that other assistants and MCP clients can call them.

* `create_mcp_app(agents)` is an ASGI app speaking MCP's streamable HTTP transport, to mount in
  a web app (``app.mount("/mcp", create_mcp_app(agents))``) or to serve on its own;
* `serve_stdio(agents)` serves the same tools over stdin/stdout (``pilothouse mcp module:agent``).

Both offer a ``run_agent`` tool (the agent's id or name, a message, optionally a session id to
continue a conversation) and one tool per agent, named after it (a message and an optional
session id). A tool answers with the run's content as text, and as structured content the
run's ``run_id``, ``session_id``, ``status`` and ``content``; a run that fails, is cancelled or
pauses for a person answers with an error result saying so.

Needs the ``mcp`` extra. The SDK is imported when an app or server is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.requests import Request

    from pilothouse.agent import Agent

__all__ = [
    "Authorize",
    "MCPApp",
    "agent_tool_name",
    "build_mcp_server",
    "create_mcp_app",
    "load_agent",
    "serve_stdio",
]

logger = logging.getLogger("pilothouse")

Authorize = Callable[["Request"], "str | bool | Awaitable[str | bool | None] | None"]
"""``authorize(request)`` decides whether an HTTP request may use the endpoint (sync or async):
a user id (runs are made for that user), True (allowed, no user), or False/None (refused with
401)."""

RUN_AGENT = "run_agent"
# Where the ASGI app leaves the authorised user id for the tool handlers (in the HTTP scope).
_USER_KEY = "pilothouse.user_id"
_TOOL_NAME_CHARS = re.compile(r"[^a-z0-9_-]+")
_MESSAGE = {"type": "string", "description": "What to ask or tell the agent."}
_SESSION = {
    "type": "string",
    "description": "A session id returned by an earlier call, to continue that conversation.",
}
# Bound on waiting for the MCP session manager to stop when the app shuts down.
_STOP_TIMEOUT = 10.0


def build_mcp_server(agents: Sequence[Agent], *, name: str = "pilothouse") -> Server[Any]:
    """Return the MCP SDK's low-level `Server` offering ``run_agent`` and one tool per agent.

    Raises:
        ValueError: No agents, or two agents (or an agent and ``run_agent``) that would give
            tools the same name; name them apart with ``Agent(name=...)``.
        TypeError: An entry is not an `Agent`.
    """
    import mcp.types as types
    from mcp.server.lowlevel import Server

    from pilothouse.agent import Agent

    agents = list(agents)
    if not agents:
        raise ValueError("create an MCP server with at least one agent")
    for agent in agents:
        if not isinstance(agent, Agent):
            raise TypeError(f"expected Agent objects, got {type(agent).__name__}")
    by_tool = _tools_by_name(agents)
    tools = [_run_agent_tool(types, agents)] + [
        types.Tool(
            name=tool_name,
            description=agent.description or f"Ask the agent {agent.name or agent.id}.",
            input_schema={
                "type": "object",
                "properties": {"message": _MESSAGE, "session_id": _SESSION},
                "required": ["message"],
            },
        )
        for tool_name, agent in by_tool.items()
    ]

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: Any) -> Any:
        arguments = params.arguments or {}
        if params.name == RUN_AGENT:
            agent = _find(agents, arguments.get("agent"))
            if agent is None:
                known = ", ".join(_label(a) for a in agents)
                return _error(types, f"Unknown agent {arguments.get('agent')!r}; agents: {known}.")
        elif params.name in by_tool:
            agent = by_tool[params.name]
        else:
            return _error(types, f"Unknown tool {params.name!r}.")
        message = arguments.get("message")
        session_id = arguments.get("session_id")
        if not isinstance(message, str) or not message:
            return _error(types, "The argument 'message' must be a non-empty string.")
        if session_id is not None and not isinstance(session_id, str):
            return _error(types, "The argument 'session_id' must be a string.")
        return await _run(types, agent, message, session_id, _user_of(ctx))

    return Server(
        name,
        instructions="Each tool runs a Pilothouse agent and returns its answer.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def create_mcp_app(
    agents: Sequence[Agent],
    *,
    name: str = "pilothouse",
    authorize: Authorize | None = None,
    stateless: bool = True,
    json_response: bool = True,
    allowed_hosts: Sequence[str] | None = None,
) -> MCPApp:
    """Build the streamable-HTTP MCP endpoint for ``agents``, as an ASGI app.

    Mount it where the endpoint should be (``app.mount("/mcp", create_mcp_app(agents))`` in
    FastAPI or Starlette: clients then use ``http://host/mcp/``), or serve it alone with
    uvicorn. It answers at any path under its mount point. It starts the MCP session manager
    itself on its first request, so it needs no lifespan wiring; `MCPApp.lifespan` is there to
    start it with the host app and stop it cleanly at shutdown.

    Args:
        agents: The agents to offer (see the module docstring for the tools).
        name: The server name MCP clients see.
        authorize: Decides per HTTP request, see `Authorize`. None allows every request.
        stateless: Serve each request on its own (no MCP session kept between requests): the
            endpoint scales across processes and keeps no state; conversations continue
            through ``session_id``.
        json_response: Answer with plain JSON rather than an event stream.
        allowed_hosts: If given, requests must carry one of these ``Host`` headers
            (``"127.0.0.1:*"`` style patterns), and browser origins must match them: the
            MCP SDK's DNS-rebinding protection.

    Raises:
        ValueError, TypeError: As `build_mcp_server`.
    """
    from mcp.server.transport_security import TransportSecuritySettings

    security = None
    if allowed_hosts is not None:
        hosts = list(allowed_hosts)
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=hosts,
            allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")],
        )
    server = build_mcp_server(agents, name=name)
    return MCPApp(
        server,
        authorize=authorize,
        session_manager_options={
            "stateless": stateless,
            "json_response": json_response,
            "security_settings": security,
        },
    )


class MCPApp:
    """The ASGI app `create_mcp_app` returns.

    Attributes:
        server: The MCP SDK's low-level `Server` behind the endpoint.
    """

    def __init__(
        self,
        server: Server[Any],
        *,
        authorize: Authorize | None,
        session_manager_options: Mapping[str, Any],
    ) -> None:
        self.server = server
        self._authorize = authorize
        self._options = dict(session_manager_options)
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._starting: asyncio.Lock | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one ASGI connection: MCP over HTTP, and the lifespan protocol."""
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
            return
        manager = await self._ensure_running()
        if self._authorize is not None:
            from starlette.requests import Request
            from starlette.responses import JSONResponse

            verdict = self._authorize(Request(scope, receive))
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict is None or verdict is False:
                refused = JSONResponse({"detail": "not authorised to use this MCP endpoint"}, 401)
                await refused(scope, receive, send)
                return
            if isinstance(verdict, str):
                scope = {**scope, _USER_KEY: verdict}
        await manager.handle_request(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the MCP session manager for the duration of the block (the host app's lifespan)."""
        await self._ensure_running()
        try:
            yield
        finally:
            await self._shutdown()

    async def _ensure_running(self) -> StreamableHTTPSessionManager:
        manager = self._manager
        if manager is not None and self._task is not None and not self._task.done():
            return manager
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._manager is not None and self._task is not None and not self._task.done():
                return self._manager
            from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

            # A session manager runs once: each start gets a new one.
            manager = StreamableHTTPSessionManager(app=self.server, **self._options)
            ready = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            # Its own context: the manager outlives the request that happens to start it.
            self._task = asyncio.get_running_loop().create_task(
                self._run_manager(manager, ready, self._stop), context=contextvars.Context()
            )
            await ready
            self._manager = manager
            return manager

    @staticmethod
    async def _run_manager(
        manager: StreamableHTTPSessionManager, ready: asyncio.Future[None], stop: asyncio.Event
    ) -> None:
        try:
            async with manager.run():
                ready.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def _shutdown(self) -> None:
        task, stop = self._task, self._stop
        self._manager = self._task = self._stop = None
        if task is None or stop is None:
            return
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=_STOP_TIMEOUT)
        if not done:
            task.cancel()

    async def _serve_lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._ensure_running()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def serve_stdio(agents: Sequence[Agent], *, name: str = "pilothouse") -> None:
    """Serve ``agents`` as an MCP server over this process's stdin and stdout, until EOF.

    Nothing else may write to stdout meanwhile (logs go to stderr).
    """
    from mcp.server.stdio import stdio_server

    server = build_mcp_server(agents, name=name)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def load_agent(target: str) -> Agent:
    """Import the agent named by ``module:attribute`` or ``path/to/file.py:attribute``.

    A module is imported with the current directory on ``sys.path`` (as ``python -m`` does).

    Raises:
        ValueError: ``target`` has no ``:attribute`` part, or the file does not exist.
        ImportError: The module cannot be imported.
        AttributeError: The module has no such attribute.
        TypeError: The attribute is not an `Agent`.
    """
    import importlib
    import importlib.util
    import os
    import sys

    from pilothouse.agent import Agent

    where, _, attribute = target.rpartition(":")
    if not where or not attribute:
        raise ValueError(f"name the agent as module:attribute or file.py:attribute, not {target!r}")
    if where.endswith(".py"):
        if not os.path.isfile(where):
            raise ValueError(f"no such file: {where}")
        spec = importlib.util.spec_from_file_location("__pilothouse_agent__", where)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {where}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(where)
    try:
        agent = getattr(module, attribute)
    except AttributeError:
        raise AttributeError(f"{where} has no attribute {attribute!r}") from None
    if not isinstance(agent, Agent):
        raise TypeError(f"{target} is a {type(agent).__name__}, not an Agent")
    return agent


def agent_tool_name(agent: Agent) -> str:
    """The MCP tool name of an agent: its name (else id) in lower case, ``_`` for the rest."""
    base = agent.name or agent.id
    return _TOOL_NAME_CHARS.sub("_", base.lower()).strip("_")[:64] or "agent"


def _tools_by_name(agents: Sequence[Agent]) -> dict[str, Agent]:
    by_tool: dict[str, Agent] = {}
    for agent in agents:
        tool_name = agent_tool_name(agent)
        clash = RUN_AGENT if tool_name == RUN_AGENT else None
        if tool_name in by_tool:
            clash = _label(by_tool[tool_name])
        if clash is not None:
            raise ValueError(
                f"agent {_label(agent)} and {clash} would both be the MCP tool {tool_name!r}; "
                "give them distinct names with Agent(name=...)"
            )
        by_tool[tool_name] = agent
    return by_tool


def _run_agent_tool(types: Any, agents: Sequence[Agent]) -> Any:
    choices = [a.name or a.id for a in agents]
    return types.Tool(
        name=RUN_AGENT,
        description="Run one of these agents on a message and return its answer: "
        + "; ".join(f"{_label(a)}: {a.description}" if a.description else _label(a) for a in agents)
        + ".",
        input_schema={
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": choices, "description": "The agent to run."},
                "message": _MESSAGE,
                "session_id": _SESSION,
            },
            "required": ["agent", "message"],
        },
    )


def _find(agents: Sequence[Agent], key: object) -> Agent | None:
    if not isinstance(key, str):
        return None
    for agent in agents:
        if key in (agent.id, agent.name) or key == agent_tool_name(agent):
            return agent
    return None


def _label(agent: Agent) -> str:
    return repr(agent.name) if agent.name else repr(agent.id)


def _user_of(ctx: Any) -> str | None:
    request = getattr(ctx, "request", None)
    scope = getattr(request, "scope", None)
    user = scope.get(_USER_KEY) if isinstance(scope, Mapping) else None
    return user if isinstance(user, str) else None


def _error(types: Any, text: str, structured: dict[str, Any] | None = None) -> Any:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=True,
    )


async def _run(
    types: Any, agent: Agent, message: str, session_id: str | None, user_id: str | None
) -> Any:
    from pilothouse.agent import RunStatus

    try:
        output = await agent.arun(message, session_id=session_id, user_id=user_id)
    except Exception as exc:
        # The run could not start (an input the agent's input_schema refuses, say); runs
        # that start never raise, they end with a status.
        return _error(types, f"The agent could not run: {type(exc).__name__}: {exc}")
    text = output.get_content_as_string()
    structured = {
        "run_id": output.run_id,
        "session_id": output.session_id,
        "status": output.status.value,
        "content": text,
    }
    if output.status is RunStatus.completed:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=structured
        )
    if output.status is RunStatus.paused:
        text = (
            f"The run paused: it waits for {text}. It can be continued in Pilothouse "
            f"(run_id {output.run_id})."
        )
    else:
        text = f"The run ended with status {output.status.value}: {text}"
    return _error(types, text, structured)
