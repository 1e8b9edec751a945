"""One connection to an MCP server, held open by a task of its own.

The MCP SDK's client is an async context manager built on anyio task groups: it must be entered
and left by the same task. A run's task cannot own it, since the connection is shared by every
run on the event loop and outlives each of them. So each `Connection` starts a holder task that
enters the SDK's `Client`, reports ready, and waits until it is told to close; runs send
requests through the client from their own tasks (the SDK multiplexes them by request id).

This module imports the SDK: `pilothouse.tools.mcp.toolkit` imports it in a worker thread on
first connect, never on a running event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, Implementation, ToolListChangedNotification

from pilothouse.tools.mcp.errors import MCPConnectionError

__all__ = ["CALL_HEADERS", "Connection", "ServerParams"]

logger = logging.getLogger("pilothouse")

CALL_HEADERS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "pilothouse_mcp_call_headers", default=None
)
"""Extra HTTP headers for the requests sent from the current context (one tool call)."""

# Bounds on closing: the SDK's own stdio shutdown waits at most ~6 s for a stubborn server.
_CLOSE_TIMEOUT = 10.0
# A tools listing that never ends (a server paginating forever) must not hang a run.
_MAX_LIST_PAGES = 100
# The HTTP read timeout also bounds idle server-sent-event streams; the SDK uses 300 s.
_MIN_HTTP_READ_TIMEOUT = 300.0
# Holder tasks of connections being closed in the background: asyncio keeps only weak
# references to tasks, and a closing connection is no longer referenced by its toolkit.
_closing: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class ServerParams:
    """How to reach one MCP server (see `MCPTools` for the meaning of each field)."""

    transport: str
    command: str | None
    args: tuple[str, ...]
    env: Mapping[str, str] | None
    cwd: str | None
    url: str | None
    headers: Mapping[str, str] | None
    timeout: float
    connect_timeout: float

    def describe(self) -> str:
        """The server as a person would recognise it, for messages."""
        if self.transport == "stdio":
            return "the MCP server `" + " ".join([self.command or "", *self.args]) + "`"
        return f"the MCP server at {self.url}"


class Connection:
    """A live connection to an MCP server on the running event loop.

    ``on_tools_changed`` is called when the server says that its list of tools changed.
    """

    def __init__(self, params: ServerParams, on_tools_changed: Callable[[], None]) -> None:
        self.params = params
        self.client: Client | None = None
        # When the server's side of the connection ended (monotonic time), None while open.
        self.ended_at: float | None = None
        self._on_tools_changed = on_tools_changed
        self._close_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        """Whether requests can be sent: handshake done, not closed, server still there."""
        return (
            self.client is not None and self.ended_at is None and not self._close_requested.is_set()
        )

    async def open(self) -> None:
        """Start the server (stdio) or connect to it, and complete the MCP handshake.

        Raises:
            MCPConnectionError: The server could not be started or reached, or did not
                complete the handshake within the timeout.
        """
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        # A fresh context: the connection outlives the run that opens it, and must not carry
        # that run's call headers (or anything else of it) into its own requests.
        self._task = loop.create_task(self._hold(ready), context=contextvars.Context())
        ready.add_done_callback(_consume)
        try:
            async with asyncio.timeout(self.params.connect_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            self.close_soon()
            raise MCPConnectionError(
                f"{self.params.describe()} did not complete the MCP handshake within "
                f"{self.params.connect_timeout:g}s"
            ) from None
        except BaseException:
            self.close_soon()
            raise

    async def _hold(self, ready: asyncio.Future[None]) -> None:
        client = Client(
            _transport(self.params, self._ended),
            # Bounds the handshake (a stdio server may take seconds to start); calls pass their
            # own timeout.
            read_timeout_seconds=self.params.connect_timeout,
            message_handler=self._on_message,
            client_info=Implementation(name="pilothouse", version=_version()),
            # Listings are made when the toolkit asks for them; no client-side cache.
            cache=None,
        )
        try:
            async with client:
                self.client = client
                if not ready.done():
                    ready.set_result(None)
                await self._close_requested.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(
                    MCPConnectionError(f"connecting to {self.params.describe()} was cancelled")
                )
            raise
        except Exception as exc:
            if not ready.done():
                reason = describe_error(exc)
                if _is_closed(exc):
                    reason = "the server closed the connection during the MCP handshake"
                    if self.params.transport == "stdio":
                        reason += " (it exited: see its output on stderr)"
                ready.set_exception(
                    MCPConnectionError(f"could not connect to {self.params.describe()}: {reason}")
                )
            else:
                logger.info(
                    "connection to %s ended: %s", self.params.describe(), describe_error(exc)
                )
        finally:
            self.client = None
            self._ended()

    def _ended(self) -> None:
        if self.ended_at is None:
            self.ended_at = time.monotonic()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            self._on_tools_changed()

    async def list_tools(self) -> list[Any]:
        """All the server's tools (every page of the listing), as the SDK's `Tool` objects."""
        client = self._client()
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(_MAX_LIST_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return tools
        logger.warning(
            "%s lists more than %d pages of tools; using the first ones",
            self.params.describe(),
            _MAX_LIST_PAGES,
        )
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call one tool and return the SDK's `CallToolResult` (errors as the SDK raises them)."""
        return await self._client().call_tool(
            name, arguments, read_timeout_seconds=self.params.timeout
        )

    def _client(self) -> Client:
        client = self.client
        if client is None:
            raise MCPConnectionError(f"the connection to {self.params.describe()} is closed")
        return client

    def close_soon(self) -> None:
        """Ask the connection to close, without waiting (a stdio server is stopped)."""
        self._close_requested.set()
        task = self._task
        if task is not None and not task.done():
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def close(self) -> None:
        """Close the connection and wait (bounded) until it is closed."""
        self.close_soon()
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
        if not done:
            task.cancel()


def describe_error(exc: BaseException) -> str:
    """One line about an error, looking inside exception groups for the first real cause."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_closed(exc: BaseException) -> bool:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED


def _consume(future: asyncio.Future[None]) -> None:
    # Nobody awaits `ready` after a timeout: retrieve its exception so asyncio does not log it.
    if not future.cancelled():
        future.exception()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pilothouse")
    except PackageNotFoundError:
        return "0"


@asynccontextmanager
async def _transport(params: ServerParams, on_end: Callable[[], None]) -> AsyncIterator[Any]:
    """The SDK transport for ``params``, its read stream watched for the end of the connection."""
    if params.transport == "stdio":
        assert params.command is not None
        server = StdioServerParameters(
            command=params.command,
            args=list(params.args),
            env=dict(params.env) if params.env is not None else None,
            cwd=params.cwd,
        )
        async with stdio_client(server) as (read, write):
            yield _WatchedReadStream(read, on_end), write
        return
    assert params.url is not None
    timeout = httpx2.Timeout(params.timeout, read=max(_MIN_HTTP_READ_TIMEOUT, params.timeout + 5))
    async with (
        httpx2.AsyncClient(
            headers=dict(params.headers or {}),
            timeout=timeout,
            event_hooks={"request": [_add_call_headers]},
        ) as http,
        streamable_http_client(params.url, http_client=http) as (read, write),
    ):
        yield _WatchedReadStream(read, on_end), write


async def _add_call_headers(request: httpx2.Request) -> None:
    # The SDK sends each request's POST in the context of the task that made the request, so
    # the headers a tool call set for itself are visible here, and only for its own requests.
    headers = CALL_HEADERS.get()
    if headers:
        request.headers.update(headers)


class _WatchedReadStream:
    """The transport's read stream, reporting when it ends (the server went away)."""

    def __init__(self, inner: Any, on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> contextvars.Context | None:
        # The SDK looks this up on HTTP read streams to run handlers in the sender's context.
        context: contextvars.Context | None = getattr(self._inner, "last_context", None)
        return context

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
