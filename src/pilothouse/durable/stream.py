"""`DurableRunStream`: the events of a durable run, as they happen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from dbos import WorkflowHandleAsync

from pilothouse.durable.channels import Listener, Stop, listen
from pilothouse.durable.stops import Failed, runs_here, settle, wait_for_stop
from pilothouse.run import events as ev
from pilothouse.run.output import RunOutput

__all__ = ["DurableRunStream"]

# What a stream shows without ``stream_events``, as `Agent.run` does.
_PLAIN = (ev.RunContentEvent, ev.RunErrorEvent, ev.RunCancelledEvent, ev.RunPausedEvent)


class DurableRunStream:
    """The events of a durable run, until it stops (ends, or pauses for a person).

    Iterate it with ``async for`` (awaiting it first returns the same stream). Events come
    live from the workflow when this process executes it; a run executed by another process
    (started earlier with the same run id) shows no events, only its ``output`` at the end.
    Closing the stream early stops watching; the run goes on.
    """

    def __init__(
        self,
        start: Callable[[], Awaitable[WorkflowHandleAsync[RunOutput]]],
        run_id: str,
        *,
        stream_events: bool,
    ) -> None:
        self.run_id = run_id
        self.output: RunOutput | None = None
        self._start = start
        self._stream_events = stream_events
        self._events = self._generate()

    def __aiter__(self) -> DurableRunStream:
        return self

    async def __anext__(self) -> ev.BaseRunEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop watching the run (it goes on)."""
        await self._events.aclose()

    def __await__(self) -> Any:
        async def itself() -> DurableRunStream:
            return self

        return itself().__await__()

    def _shown(self, event: Any) -> bool:
        return isinstance(event, ev.BaseRunEvent) and (
            self._stream_events or isinstance(event, _PLAIN)
        )

    async def _generate(self) -> AsyncGenerator[ev.BaseRunEvent, None]:
        listener = listen(self.run_id)
        remote: asyncio.Future[RunOutput] | None = None
        item: asyncio.Future[Any] | None = None
        try:
            handle = await self._start()
            here = runs_here(handle)
            if not here:
                # Another process executes the run: only DBOS can say when it stops.
                remote = asyncio.ensure_future(wait_for_stop(self.run_id, None, listener=None))
            while True:
                item = asyncio.ensure_future(listener.queue.get())
                waiting = {item} if remote is None else {item, remote}
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if item in done:
                    got = item.result()
                    if remote is not None:
                        remote.cancel()
                        remote = None
                    if isinstance(got, Stop):
                        self.output = got.output
                        await settle(self.run_id, got.output, handle if here else None)
                        return
                    if isinstance(got, Failed):
                        raise got.error
                    if self._shown(got):
                        yield got
                    continue
                assert remote is not None
                for got in _drain(listener):
                    if self._shown(got):
                        yield got
                self.output = remote.result()
                await settle(self.run_id, self.output)
                return
        finally:
            listener.close()
            for task in (item, remote):
                if task is not None and not task.done():
                    task.cancel()


def _drain(listener: Listener) -> list[Any]:
    items = []
    while not listener.queue.empty():
        items.append(listener.queue.get_nowait())
    return items
