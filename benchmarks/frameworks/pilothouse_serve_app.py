"""The Pilothouse app that ``benchmarks/serve.py`` serves, and its direct-``arun`` baseline.

Served with ``pilothouse serve benchmarks/frameworks/pilothouse_serve_app.py:app``; configured
by environment: ``BENCH_LATENCY_S`` (the fake model's wait before answering), ``BENCH_DB``
(``memory`` or ``postgres``, with ``BENCH_PG_URL`` and ``BENCH_PG_SCHEMA``). Run as a script
with ``--direct N`` it times ``await agent.arun(...)`` on the same agent instead and prints
JSON. The fake model is the one of ``pilothouse_bench.py``: it answers with one chunk and a
fixed usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pilothouse_bench as fake

from pilothouse import Agent
from pilothouse.models import Message, ModelResponse, ToolDefinition
from pilothouse.models.test import FunctionModel
from pilothouse.serve import create_app

LATENCY_S = float(os.environ.get("BENCH_LATENCY_S", "0"))


async def answer(messages: list[Message], tools: list[ToolDefinition]) -> ModelResponse:
    """The text answer, after the configured latency."""
    if LATENCY_S:
        await asyncio.sleep(LATENCY_S)
    return ModelResponse(content=fake.h.TEXT_ANSWER, usage=fake.usage())


def make_db() -> Any:
    """The session store the environment asks for."""
    if os.environ.get("BENCH_DB") == "postgres":
        from pilothouse.db import PostgresDb

        return PostgresDb(os.environ["BENCH_PG_URL"], schema=os.environ["BENCH_PG_SCHEMA"])
    from pilothouse.db import InMemoryDb

    return InMemoryDb()


agent = Agent(
    id="bench", name="bench", model=FunctionModel(answer), tools=[fake.get_weather], db=make_db()
)
app = create_app(agents=[agent], max_concurrent_runs=100_000)


async def direct(n: int) -> dict[str, Any]:
    """Median µs of ``await agent.arun(...)``, and CPU µs per run, after a warm-up."""
    times = []
    cpu_started = 0.0
    for i in range(n + n // 5):
        if i == n // 5:
            cpu_started = time.process_time()
        started = time.perf_counter()
        out = await agent.arun(fake.h.TEXT_PROMPT)
        elapsed = time.perf_counter() - started
        assert out.content == fake.h.TEXT_ANSWER, out.content
        if i >= n // 5:
            times.append(elapsed)
    cpu_us = (time.process_time() - cpu_started) / n * 1e6
    return {"p50_us": statistics.median(times) * 1e6, "cpu_us": cpu_us, "runs": n}


if __name__ == "__main__":
    count = int(sys.argv[sys.argv.index("--direct") + 1])
    print(json.dumps(asyncio.run(direct(count))))
