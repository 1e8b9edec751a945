"""Server-sent events: the frame format and a response that notices a client leaving.

A frame is ``id: <seq>`` / ``event: <EventName>`` / ``data: <the event's JSON>``; ``seq``
numbers a run's events from 1, so a client that reconnects with ``Last-Event-ID: <seq>``
gets exactly the events it missed. The event JSON never contains a raw line break (JSON
escapes them), so one ``data:`` line carries it.

`EventStreamResponse` sends the frames an async generator yields, and watches the request for
``http.disconnect`` at the same time: when the client goes away the generator is closed at
once (its ``finally`` blocks run), not at the next frame; ``on_close`` is called when the
response ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["KEEPALIVE", "TERMINAL_EVENTS", "EventStreamResponse", "sse_frame"]

KEEPALIVE = ": keepalive\n\n"
# The events that end a run (or, for RunPaused, one leg of it).
TERMINAL_EVENTS = frozenset({"RunCompleted", "RunError", "RunCancelled", "RunPaused"})


def sse_frame(seq: int, name: str, data: str) -> str:
    """One SSE frame."""
    return f"id: {seq}\nevent: {name}\ndata: {data}\n\n"


class EventStreamResponse(Response):
    """A ``text/event-stream`` response fed by ``frames`` (an async generator of text)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncGenerator[str, None],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.frames = frames
        self.on_close = on_close
        self.status_code = status_code
        self.background: BackgroundTask | None = None
        self.init_headers(
            {"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The frames are sent from this task; a second one waits for the client to leave and
        # then interrupts this one (one task per stream instead of two).
        this = asyncio.current_task()
        assert this is not None
        left = ended = False

        def interrupt(watcher: asyncio.Future[None]) -> None:
            nonlocal left
            # ``ended``: the callback may run after this response is over; leave it alone then.
            if not ended and not watcher.cancelled() and watcher.exception() is None:
                left = True
                this.cancel()

        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(interrupt)
        try:
            await self._send_frames(send)
        except asyncio.CancelledError:
            if not left:
                raise
            this.uncancel()
        except OSError:
            pass  # the client went away while a frame was being written
        finally:
            ended = True
            watcher.remove_done_callback(interrupt)
            watcher.cancel()
            if self.on_close is not None:
                self.on_close()

    async def _send_frames(self, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self.frames:
                await send(
                    {"type": "http.response.body", "body": chunk.encode(), "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # Interrupted at a send: close the generator so that its cleanup runs now.
            with contextlib.suppress(Exception):
                await self.frames.aclose()


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
