"""A separate process that runs an agent once per thread, or once per `asyncio.run`, and
reports what the process holds before and after (test_loop_lifetimes).

Usage: loop_runner.py KIND TARGET PREFIX MODE RUNS [NOFILE]; MODE is ``threads`` (a new
thread per run calling ``agent.run``) or ``asyncio`` (``asyncio.run(agent.arun(...))`` per run).
With NOFILE the process may have at most that many open file descriptors.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import sys
import threading
from collections import Counter

from session_runner import open_store

from pilothouse import Agent
from pilothouse.models.test import TestModel


def lookup(city: str) -> str:
    """Look a city up (a sync tool: it runs in the loop's default executor)."""
    return f"{city}: found"


def open_fds() -> int:
    """The number of file descriptors the process has open."""
    return len(os.listdir("/proc/self/fd"))


def open_loops() -> int:
    """The number of event loops in the process that are not closed."""
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()
    )


def snapshot() -> dict[str, int]:
    """What the process holds now."""
    gc.collect()
    return {"fds": open_fds(), "loops": open_loops(), "threads": threading.active_count()}


def main() -> None:
    kind, target, prefix, mode, runs = sys.argv[1:6]
    if len(sys.argv) > 6:
        limit = int(sys.argv[6])
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    agent = Agent(model=TestModel(), tools=[lookup], db=open_store(kind, target, prefix))
    statuses: Counter[str] = Counter()
    errors: list[str] = []

    def one(i: int) -> None:
        try:
            if mode == "threads":
                out = agent.run("find Paris", session_id=f"s{i}")
            else:
                out = asyncio.run(agent.arun("find Paris", session_id=f"s{i}"))
            statuses[out.status.value] += 1
        except Exception as exc:
            errors.append(repr(exc))

    def request(i: int) -> None:
        if mode == "threads":
            thread = threading.Thread(target=one, args=(i,))
            thread.start()
            thread.join()
        else:
            one(i)

    request(-1)  # warm up: the schema, imports, lazily built caches
    statuses.clear()
    before = snapshot()
    for i in range(int(runs)):
        request(i)
    after = snapshot()
    print(json.dumps({"before": before, "after": after, "statuses": statuses, "errors": errors}))


if __name__ == "__main__":
    main()
