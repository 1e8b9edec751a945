"""`MCPTools`: the tools of an MCP server (stdio or streamable HTTP) as a toolkit."""

from __future__ import annotations

import inspect
import logging
import math
import re
import shlex
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike, fspath
from typing import TYPE_CHECKING, Any, Literal

from pilothouse.tools.dynamic import DynamicToolkit
from pilothouse.tools.function import Function
from pilothouse.tools.mcp.errors import (
    MCPConnectionError,
    MCPTimeoutError,
    MCPToolError,
    MCPToolsError,
)
from pilothouse.tools.mcp.results import result_text
from pilothouse.tools.schema_function import SchemaFunction

if TYPE_CHECKING:
    import asyncio

    from pilothouse.tools.mcp.connection import Connection, ServerParams

__all__ = ["HeaderProvider", "MCPTools"]

logger = logging.getLogger("pilothouse")

HeaderProvider = Callable[[Any], Mapping[str, str] | Awaitable[Mapping[str, str]]]
"""``header_provider(run_context)``: extra HTTP headers for one run's requests (sync or async)."""

Transport = Literal["stdio", "streamable-http"]
_TRANSPORTS = ("stdio", "streamable-http")
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64
# MCP error codes (JSON-RPC) the SDK raises for a closed connection and a request timeout.
_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001
# Extra time past `timeout` before a call is abandoned from our side; the SDK's own timeout
# normally fires first, this only bounds a wedged transport.
_TIMEOUT_GRACE = 5.0
_MIN_CONNECT_TIMEOUT = 30.0


@dataclass(eq=False)
class _LoopState:
    """The connection of one event loop, and what keeps concurrent runs from racing on it."""

    lock: asyncio.Lock
    connection: Connection | None = None
    # Counts connection attempts, so that runs queued behind a failed one fail with it
    # instead of each trying (and waiting) again.
    attempts: int = 0
    failure: str | None = None
    # The same for listings of the tools.
    listing: asyncio.Lock | None = field(default=None)
    listings: int = 0
    listing_failure: MCPToolsError | None = None


class MCPTools(DynamicToolkit):
    """The tools of one MCP server, offered to an agent like any toolkit.

    Give either ``command`` (a stdio server: a command line, as a string or a list, started as
    a subprocess) or ``url`` (a streamable-HTTP server)::

        async with MCPTools(command="python my_server.py") as tools:
            agent = Agent(model=..., tools=[tools])
            await agent.arun("...")

    Without ``async with`` the toolkit connects on first use (the first run that has it), and
    `aclose` disconnects it. One instance can serve any number of concurrent runs: they share
    one connection per event loop (the MCP client multiplexes their requests). The tools are
    listed once, with their JSON schemas passed through as the server gives them, and listed
    again when the server announces a change or the connection is made anew.

    A failing call never ends a run: a call the server fails, does not answer within
    ``timeout``, or loses the connection during, comes back to the model as that call's error
    result. A connection that ended (a stdio server that exited or was killed, an HTTP server
    that went away) is made anew on the next call; a stdio server is started again. Only a
    server that cannot be reached for the first listing of its tools ends the run, with an
    error naming it.

    Args:
        command: The stdio server's command line. A string is split like a shell would
            (without running one); the executable is looked up on ``PATH``.
        url: The streamable-HTTP endpoint (``http://`` or ``https://``).
        transport: ``"stdio"`` or ``"streamable-http"``; follows from ``command`` / ``url``.
        env: Environment variables for the stdio server, on top of the MCP SDK's safe
            defaults (``PATH``, ``HOME``...): the server does not inherit the whole
            environment.
        cwd: Working directory of the stdio server.
        include_tools: Offer only these tools (server names).
        exclude_tools: Do not offer these tools (server names).
        tool_name_prefix: Prefix the model-facing tool names with ``"{prefix}_"``, e.g. to
            tell apart two servers that both have a ``search`` tool.
        headers: HTTP headers sent with every request (streamable HTTP only).
        header_provider: ``header_provider(run_context)`` returns extra headers for the
            requests of one run (its tool calls and a listing it causes), e.g. the user's
            token; may be async. The connection's own handshake uses ``headers`` only.
        timeout: Seconds allowed for each tool call and for listing the tools.
        connect_timeout: Seconds allowed to connect (starting a stdio server) and complete
            the MCP handshake; defaults to ``timeout``, and to at least 30 s, since a server
            may take seconds to start.
        requires_confirmation_tools: Tools (server names or prefixed names) whose calls
            pause the run until a person confirms them (see `RunOutput.is_paused`).
        name: The toolkit's name; defaults to ``"mcp"``.
        instructions: Instructions for the model on how to use these tools.

    Raises:
        ValueError: Neither or both of ``command`` and ``url``, a transport that does not fit,
            options of the other transport, a bad prefix, timeout or URL.
        TypeError: A filter given as a string instead of a collection of names.
    """

    def __init__(
        self,
        command: str | Sequence[str] | None = None,
        *,
        url: str | None = None,
        transport: Transport | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | PathLike[str] | None = None,
        include_tools: Collection[str] | None = None,
        exclude_tools: Collection[str] | None = None,
        tool_name_prefix: str | None = None,
        headers: Mapping[str, str] | None = None,
        header_provider: HeaderProvider | None = None,
        timeout: float = 30.0,
        connect_timeout: float | None = None,
        requires_confirmation_tools: Collection[str] | None = None,
        name: str = "mcp",
        instructions: str | None = None,
    ) -> None:
        super().__init__(name=name, instructions=instructions)
        chosen = _transport_of(command, url, transport)
        _check_seconds("timeout", timeout)
        if connect_timeout is None:
            connect_timeout = max(float(timeout), _MIN_CONNECT_TIMEOUT)
        _check_seconds("connect_timeout", connect_timeout)
        if chosen == "stdio":
            if headers is not None or header_provider is not None:
                raise ValueError(
                    "headers and header_provider apply to streamable HTTP servers (url=...); "
                    "a stdio server takes env=... instead"
                )
            argv = _argv(command)
            params_url = None
        else:
            if env is not None or cwd is not None:
                raise ValueError("env and cwd apply to stdio servers (command=...), not to url=")
            assert url is not None
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"url must start with http:// or https://, got {url!r}")
            argv = []
            params_url = url
        if header_provider is not None and not callable(header_provider):
            raise TypeError("header_provider must be a callable taking the run context")
        if tool_name_prefix is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,32}", tool_name_prefix
        ):
            raise ValueError(
                f"tool_name_prefix must be 1 to 32 letters, digits, '_' or '-', "
                f"got {tool_name_prefix!r}"
            )
        self._server_params: dict[str, Any] = {
            "transport": chosen,
            "command": argv[0] if argv else None,
            "args": tuple(argv[1:]),
            "env": dict(env) if env is not None else None,
            "cwd": fspath(cwd) if cwd is not None else None,
            "url": params_url,
            "headers": dict(headers) if headers is not None else None,
            "timeout": float(timeout),
            "connect_timeout": float(connect_timeout),
        }
        self.transport: Transport = chosen
        self.timeout = float(timeout)
        self.tool_name_prefix = tool_name_prefix
        self.header_provider = header_provider
        self.include_tools = _names("include_tools", include_tools)
        self.exclude_tools = _names("exclude_tools", exclude_tools)
        self.requires_confirmation_tools = _names(
            "requires_confirmation_tools", requires_confirmation_tools
        )
        self._params: ServerParams | None = None
        self._loaded: list[Function] | None = None
        self._stale = False
        self._connections_made = 0
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._loops_lock = threading.Lock()

    # ---- the toolkit protocol -------------------------------------------------------------

    def loaded_functions(self) -> list[Function]:
        """The server's tools as last listed (after filtering); empty before the first listing."""
        return list(self._loaded or ())

    async def aload(self, run_context: Any = None) -> None:
        """List the server's tools if they are not listed yet or have changed (connecting first).

        Raises:
            MCPConnectionError: The first listing failed: the server cannot be reached.
            MCPTimeoutError: The first listing was not answered within ``timeout``.
            MCPToolsError: A filter names tools the server does not have.
        """
        if self._loaded is not None and not self._stale:
            return
        state = self._state()
        if state.listing is None:
            import asyncio

            state.listing = asyncio.Lock()
        listings_seen = state.listings
        async with state.listing:
            if self._loaded is not None and not self._stale:
                return
            failure = state.listing_failure
            if state.listings != listings_seen and failure is not None and self._loaded is None:
                # The listing this run waited for has just failed: fail alike, at once, rather
                # than each waiting run trying (and maybe waiting out a timeout) again.
                raise type(failure)(str(failure))
            state.listings += 1
            try:
                await self._list(run_context)
            except Exception as exc:
                state.listing_failure = exc if isinstance(exc, MCPToolsError) else None
                if self._loaded is None:
                    raise
                # A refresh failed: keep offering the tools listed before; calls will tell.
                logger.warning("could not list the tools of %s again: %s", self._describe(), exc)
                self._stale = False
            else:
                state.listing_failure = None

    async def _list(self, run_context: Any) -> None:
        from pilothouse.tools.mcp.connection import CALL_HEADERS

        headers = await self._headers_for(run_context)
        connection = await self._connection()
        self._stale = False
        token = CALL_HEADERS.set(headers)
        try:
            tools = await self._bounded(connection, connection.list_tools(), "listing its tools")
        finally:
            CALL_HEADERS.reset(token)
        self._loaded = self._functions_of(tools, strict=self._loaded is None)

    def _functions_of(self, tools: Sequence[Any], *, strict: bool) -> list[Function]:
        server_names = [tool.name for tool in tools]
        self._check_names_exist(server_names, strict=strict)
        functions: list[Function] = []
        seen: dict[str, str] = {}
        for tool in tools:
            if self.include_tools is not None and tool.name not in self.include_tools:
                continue
            if self.exclude_tools is not None and tool.name in self.exclude_tools:
                continue
            model_name = self._model_name(tool.name)
            if model_name in seen:
                raise MCPToolsError(
                    f"{self._describe()}: tools {seen[model_name]!r} and {tool.name!r} would both "
                    f"be named {model_name!r} for the model; exclude one with exclude_tools=[...]"
                )
            seen[model_name] = tool.name
            confirm = self.requires_confirmation_tools is not None and (
                tool.name in self.requires_confirmation_tools
                or model_name in self.requires_confirmation_tools
            )
            functions.append(
                SchemaFunction(
                    self._caller(tool.name),
                    name=model_name,
                    description=tool.description or tool.title,
                    parameters=tool.input_schema,
                    requires_confirmation=confirm,
                )
            )
        return functions

    def _check_names_exist(self, server_names: list[str], *, strict: bool) -> None:
        known = set(server_names)
        model_names = {self._model_name(n) for n in server_names}
        for option, names, also in (
            ("include_tools", self.include_tools, set()),
            ("exclude_tools", self.exclude_tools, set()),
            ("requires_confirmation_tools", self.requires_confirmation_tools, model_names),
        ):
            unknown = sorted(set(names or ()) - known - also)
            if not unknown:
                continue
            message = (
                f"{option} names tools that {self._describe()} does not have: "
                f"{', '.join(unknown)}; its tools are: {', '.join(server_names) or 'none'}"
            )
            if strict:
                raise MCPToolsError(message)
            logger.warning(message)

    def _model_name(self, server_name: str) -> str:
        name = f"{self.tool_name_prefix}_{server_name}" if self.tool_name_prefix else server_name
        return _INVALID_NAME_CHARS.sub("_", name)[:_MAX_NAME] or "_"

    def _caller(self, server_name: str) -> Callable[[dict[str, Any], Any], Awaitable[str]]:
        async def call(arguments: dict[str, Any], run_context: Any) -> str:
            return await self._call(server_name, arguments, run_context)

        return call

    # ---- calls ----------------------------------------------------------------------------

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None = None, run_context: Any = None
    ) -> str:
        """Call a tool of the server by its server name and return the text of its result.

        Raises:
            MCPToolError: The tool failed (the server's message), or the server refused.
            MCPTimeoutError: No answer within ``timeout``.
            MCPConnectionError: The server cannot be reached or went away during the call.
        """
        return await self._call(name, dict(arguments or {}), run_context)

    async def _call(self, name: str, arguments: dict[str, Any], run_context: Any) -> str:
        from pilothouse.tools.mcp.connection import CALL_HEADERS

        headers = await self._headers_for(run_context)
        token = CALL_HEADERS.set(headers)
        try:
            for attempt in range(2):
                connection = await self._connection()
                sent = time.monotonic()
                try:
                    result = await self._bounded(
                        connection, connection.call_tool(name, arguments), f"calling {name!r}"
                    )
                except MCPConnectionError:
                    ended = connection.ended_at
                    if attempt == 0 and ended is not None and ended <= sent:
                        # The server was gone before the call was sent, so it cannot have run
                        # it: send it once more, on a new connection.
                        continue
                    raise
                break
        finally:
            CALL_HEADERS.reset(token)
        text = result_text(result)
        if result.is_error:
            raise MCPToolError(text or f"the tool {name!r} failed without a message")
        return text

    async def _bounded(self, connection: Connection, request: Awaitable[Any], what: str) -> Any:
        """Await one request, turning the SDK's errors into ours (and dropping dead connections)."""
        import asyncio

        import anyio
        from mcp.shared.exceptions import MCPError

        try:
            async with asyncio.timeout(self.timeout + _TIMEOUT_GRACE):
                return await request
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._drop(connection)
            raise MCPConnectionError(self._lost(what)) from None
        except MCPError as exc:
            if exc.code == _REQUEST_TIMEOUT:
                raise MCPTimeoutError(
                    f"{self._describe()} did not answer within {self.timeout:g}s ({what})"
                ) from None
            if exc.code == _CONNECTION_CLOSED or not connection.usable:
                self._drop(connection)
                raise MCPConnectionError(self._lost(what)) from None
            raise MCPToolError(
                f"{self._describe()} refused {what}: {exc.message} (MCP error {exc.code})"
            ) from None
        except TimeoutError:
            raise MCPTimeoutError(
                f"{self._describe()} did not answer within {self.timeout:g}s ({what})"
            ) from None
        except MCPConnectionError:
            self._drop(connection)
            raise

    def _lost(self, what: str) -> str:
        again = "started again" if self.transport == "stdio" else "reconnected"
        return (
            f"the connection to {self._describe()} ended while {what}; the server will be "
            f"{again} on the next call"
        )

    async def _headers_for(self, run_context: Any) -> Mapping[str, str] | None:
        if self.header_provider is None or run_context is None:
            return None
        headers = self.header_provider(run_context)
        if inspect.isawaitable(headers):
            headers = await headers
        if not isinstance(headers, Mapping):
            raise TypeError(
                f"header_provider must return a mapping of headers, got {type(headers).__name__}"
            )
        return {str(k): str(v) for k, v in headers.items()}

    # ---- connections ----------------------------------------------------------------------

    def _state(self) -> _LoopState:
        import asyncio

        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            with self._loops_lock:
                state = self._loops.get(loop)
                if state is None:
                    state = self._loops[loop] = _LoopState(asyncio.Lock())
        return state

    async def _connection(self) -> Connection:
        state = self._state()
        connection = state.connection
        if connection is not None and connection.usable:
            return connection
        attempts_seen = state.attempts
        async with state.lock:
            connection = state.connection
            if connection is not None and connection.usable:
                return connection
            if state.attempts != attempts_seen and state.failure is not None:
                # The attempt this run waited for has just failed: no point waiting again.
                raise MCPConnectionError(state.failure)
            if connection is not None:
                state.connection = None
                connection.close_soon()
            state.attempts += 1
            try:
                connection = await self._open()
            except MCPConnectionError as exc:
                state.failure = str(exc)
                raise
            state.failure = None
            state.connection = connection
            return connection

    async def _open(self) -> Connection:
        import asyncio

        if self._params is None:
            # The MCP SDK takes a while to import: never on the event loop.
            self._params = await asyncio.to_thread(self._make_params)
        from pilothouse.tools.mcp.connection import Connection

        connection = Connection(self._params, self._mark_stale)
        try:
            await connection.open()
        except MCPConnectionError:
            raise
        except Exception as exc:
            from pilothouse.tools.mcp.connection import describe_error

            raise MCPConnectionError(
                f"could not connect to {self._describe()}: {describe_error(exc)}"
            ) from exc
        self._connections_made += 1
        if self._connections_made > 1:
            # A new connection may be to a new server process: its tools may differ.
            self._stale = True
        return connection

    def _make_params(self) -> ServerParams:
        try:
            from pilothouse.tools.mcp.connection import ServerParams
        except ImportError as exc:
            raise MCPConnectionError(
                f"MCPTools needs the MCP SDK ({exc}): pip install 'pilothouse[mcp]'"
            ) from exc
        return ServerParams(**self._server_params)

    def _drop(self, connection: Connection) -> None:
        for state in list(self._loops.values()):
            if state.connection is connection:
                state.connection = None
        connection.close_soon()

    def _mark_stale(self) -> None:
        self._stale = True

    def is_connected(self) -> bool:
        """Whether the running event loop has a live connection to the server."""
        state = self._state()
        return state.connection is not None and state.connection.usable

    async def aclose(self) -> None:
        """Close this event loop's connection (stopping a stdio server), waiting until closed.

        Connections made on other event loops (by sync `Agent.run` calls from other threads)
        are asked to close without waiting. The toolkit stays usable: it connects again on
        next use.
        """
        import asyncio

        current = asyncio.get_running_loop()
        with self._loops_lock:
            states = list(self._loops.items())
        for loop, state in states:
            connection, state.connection = state.connection, None
            if connection is None:
                continue
            if loop is current:
                await connection.close()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(connection.close_soon)

    async def __aenter__(self) -> MCPTools:
        """Connect and list the tools now, so that the first run does not wait for it."""
        await self.aload(None)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the connection (see `aclose`)."""
        await self.aclose()

    def _describe(self) -> str:
        params = self._server_params
        if params["transport"] == "stdio":
            return "the MCP server `" + " ".join([params["command"], *params["args"]]) + "`"
        return f"the MCP server at {params['url']}"

    def __repr__(self) -> str:
        target = self._server_params["url"] or " ".join(
            [self._server_params["command"], *self._server_params["args"]]
        )
        return f"MCPTools({target!r}, transport={self.transport!r})"


def _transport_of(
    command: str | Sequence[str] | None, url: str | None, transport: str | None
) -> Transport:
    if (command is None) == (url is None):
        raise ValueError("MCPTools needs either command=... (a stdio server) or url=..., not both")
    if transport is not None and transport not in _TRANSPORTS:
        raise ValueError(f"transport must be 'stdio' or 'streamable-http', got {transport!r}")
    implied: Transport = "stdio" if command is not None else "streamable-http"
    if transport is not None and transport != implied:
        needs = "command=..." if transport == "stdio" else "url=..."
        raise ValueError(f"transport={transport!r} needs {needs}")
    return implied


def _check_seconds(option: str, value: object) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{option} must be a positive number of seconds, got {value!r}")


def _argv(command: str | Sequence[str] | None) -> list[str]:
    if isinstance(command, str):
        argv = shlex.split(command)
    elif isinstance(command, Sequence) and all(isinstance(part, str) for part in command):
        argv = list(command)
    else:
        raise TypeError("command must be a command line string or a list of strings")
    if not argv:
        raise ValueError("command is empty")
    return argv


def _names(option: str, names: Collection[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError(f"{option} must be a list of tool names, not a string")
    return frozenset(names)
