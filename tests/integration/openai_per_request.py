"""A separate process that runs an OpenAIChat agent once per thread, or once per
`asyncio.run`, against the server at BASE_URL, and reports its open file descriptors and
event loops before and after (test_openai_per_request).

Usage: openai_per_request.py BASE_URL MODE RUNS; MODE is ``threads`` or ``asyncio``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading

from pilothouse import Agent
from pilothouse.models.openai import OpenAIChat


def snapshot() -> dict[str, int]:
    """Open file descriptors, event loops not closed, and threads, now."""
    gc.collect()
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "loops": sum(1 for loop in loops if not loop.is_closed()),
        "threads": threading.active_count(),
    }


def main() -> None:
    base_url, mode, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = OpenAIChat(id="smollm2", base_url=base_url, api_key="sk-local", max_tokens=4)
    agent = Agent(model=model)
    statuses: list[str] = []

    def one() -> None:
        if mode == "threads":
            statuses.append(agent.run("Say hi.").status.value)
        else:
            statuses.append(asyncio.run(agent.arun("Say hi.")).status.value)

    def request() -> None:
        if mode == "threads":
            thread = threading.Thread(target=one)
            thread.start()
            thread.join()
        else:
            one()

    request()  # warm up: the SDK import, the first connection
    before = snapshot()
    for _ in range(runs):
        request()
    print(json.dumps({"before": before, "after": snapshot(), "statuses": statuses}))


if __name__ == "__main__":
    main()
