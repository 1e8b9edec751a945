"""A misbehaving model provider on loopback, for the tests of the adapters' time limits and
fallbacks: a real HTTP server (asyncio streams) that the real SDKs talk to.

Each test gives it a ``respond(request, reply)`` coroutine that decides what the server does:
answer JSON, stream SSE chunks, send keep-alives forever, stall. The server runs on the test's
event loop; leaving the ``async with`` closes it and stops every handler still running.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Reply:
    """Writes one response. The body of a streamed response is not framed: the connection
    closes at its end (``Connection: close``), which every HTTP client understands."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def start(self, status: int = 200, content_type: str = "text/event-stream") -> None:
        head = (
            f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n"
            "cache-control: no-cache\r\nconnection: close\r\n\r\n"
        )
        await self.send(head.encode())

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def event(self, data: Any, event: str | None = None) -> None:
        """One SSE event with ``data`` as JSON."""
        prefix = f"event: {event}\n" if event else ""
        await self.send(f"{prefix}data: {json.dumps(data)}\n\n")

    async def json(self, data: Any, status: int = 200) -> None:
        """A whole JSON response."""
        body = json.dumps(data).encode()
        head = (
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        await self.send(head.encode() + body)

    async def forever(self, keep_alive: bytes | str, every: float = 0.2) -> None:
        """Send ``keep_alive`` every ``every`` seconds until the client goes away."""
        while True:
            await self.send(keep_alive)
            await asyncio.sleep(every)


Respond = Callable[[Request, Reply], Awaitable[None]]


class HostileProvider:
    """The server: ``async with HostileProvider(respond) as server: ... server.url``."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[Request] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        """The base URL without /v1 (what the Anthropic SDK takes)."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> HostileProvider:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, path, headers, body)
            self.requests.append(request)
            await self.respond(request, Reply(writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: what a client that gives up does
        finally:
            self._tasks.discard(task)
            writer.close()
