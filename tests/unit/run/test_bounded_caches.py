"""What a process keeps between runs is bounded, even with a new Agent, new tools and new
callables per request (as web handlers often write them).

`get_last_run_output` keeps recent runs by count and by size; the callables an agent is
given (dependencies, instructions) are not kept after their agent is gone.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
import weakref
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.models.test import TestModel

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """The resident memory of this process, in MB."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def kept_mb() -> float:
    """What Python objects allocated since tracing began still hold, in MB (exact, unlike RSS,
    which also moves with the allocator's fragmentation and what earlier tests left)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 2**20


class RequestBody:
    """What a per-request closure typically captures: the request, with its payload."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def __len__(self) -> int:
        return len(self.data)


def handle_request(i: int, text: str) -> Agent:
    """A request handler that builds everything anew: tool, dependency, instructions, agent."""
    request_body = RequestBody(100_000)

    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: {len(request_body)} bytes"

    agent = Agent(
        model=TestModel(),
        tools=[lookup],
        dependencies={"size": lambda: len(request_body)},
        instructions=lambda agent: f"Request {i}.",
    )
    out = agent.run(text, session_id=f"s{i}")
    assert out.status is RunStatus.completed
    return agent


def test_a_new_agent_per_request_with_large_inputs_keeps_memory_bounded() -> None:
    text = "x" * 100_000
    # Warm up: imports, and the caches that are meant to fill up to their bounds.
    for i in range(1_000):
        handle_request(i, f"{text} {i}")
    rss_before = rss_mb()
    tracemalloc.start()
    try:
        agents: list[Agent] = []
        for i in range(2_000):
            agents.append(handle_request(i, f"{text} {i}"))
            del agents[:-10]  # the handler's caller keeps only the last few agents
        kept = kept_mb()
    finally:
        tracemalloc.stop()
    rss_grown = rss_mb() - rss_before
    # Kept forever, the inputs and closures alone would be ~400 MB. What stays is the recent
    # runs (at most 16 MB by their estimate) and the last agents with their requests.
    assert kept < 40, f"2,000 requests kept {kept:.1f} MB"
    # RSS moves by tens of MB with heap fragmentation (freed 100 KB blocks): a loose bound.
    assert rss_grown < 150, f"RSS grew by {rss_grown:.1f} MB over 2,000 requests"
    # The most recent runs are still there to read; the oldest have made room for them.
    for agent in agents:
        last = agent.get_last_run_output()
        assert last is not None and last.content is not None
    first = Agent(model=TestModel(), id=agents[0].id)
    assert first.get_last_run_output() is not None
    assert Agent(model=TestModel(), id="never-ran").get_last_run_output() is None


def test_thousands_of_agents_keep_only_recent_last_runs() -> None:
    first = handle_request(-1, "first")
    for i in range(5_000):
        handle_request(i, "hello")
    assert first.get_last_run_output() is None  # made room for later agents
    last = handle_request(5_000, "last")
    out = last.get_last_run_output()
    assert out is not None and out.session_id == "s5000"


def test_per_request_callables_are_not_kept_after_their_agent() -> None:
    captured: list[weakref.ref[Any]] = []
    for i in range(50):
        request_body = RequestBody(1_000)
        captured.append(weakref.ref(request_body))

        def instructions(agent: Agent, body: RequestBody = request_body) -> str:
            return f"{len(body)} bytes"

        agent = Agent(
            model=TestModel(),
            dependencies={"size": lambda body=request_body: len(body)},
            instructions=instructions,
        )
        assert agent.run(f"request {i}").status is RunStatus.completed
        del agent, instructions, request_body
    gc.collect()
    alive = sum(1 for ref in captured if ref() is not None)
    assert alive == 0, f"{alive} of 50 requests' objects are still alive"
