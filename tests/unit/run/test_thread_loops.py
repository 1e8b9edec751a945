"""Sync runs in threads that end: each thread's event loop is closed after it, never under a
stream that is still being read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.models.test import TestModel
from pilothouse.run.events import RunContentEvent


def in_thread(fn: Any) -> Any:
    """Call ``fn`` in a new thread that ends when it returns; its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join()
    return result[0]


def test_a_stream_begun_in_an_ended_thread_reads_on_to_the_end() -> None:
    agent = Agent(model=TestModel(text="one two three four"))

    def begin() -> tuple[Iterator[Any], Any]:
        stream = iter(agent.run("hi", stream=True))
        return stream, next(stream)

    stream, first = in_thread(begin)
    # Other requests in other threads come and go meanwhile, each closing ended threads' loops.
    for _ in range(3):
        assert in_thread(lambda: agent.run("hi").status) is RunStatus.completed
    events = [first, *stream]
    text = "".join(e.content for e in events if isinstance(e, RunContentEvent))
    assert text == "one two three four"
    assert agent.run("again").status is RunStatus.completed
