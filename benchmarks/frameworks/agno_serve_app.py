"""The agno AgentOS app that ``benchmarks/serve.py`` serves, and its direct-``arun`` baseline.

Served with ``uvicorn agno_serve_app:app`` under ``benchmarks/.venv-others``; configured by
the same environment as ``pilothouse_serve_app.py``: ``BENCH_LATENCY_S``, ``BENCH_DB``
(``memory``: no database, or ``postgres``: agno's PostgresDb), ``BENCH_PG_URL``,
``BENCH_PG_SCHEMA``. Run as a script with ``--direct N`` it times ``await agent.arun(...)``.
The fake model is the one of ``agno_bench.py``.
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

import agno_bench as fake
from agno.agent import Agent
from agno.os import AgentOS


def make_db() -> Any:
    """The session store the environment asks for."""
    if os.environ.get("BENCH_DB") == "postgres":
        from agno.db.postgres import PostgresDb

        url = os.environ["BENCH_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        return PostgresDb(db_url=url, db_schema=os.environ["BENCH_PG_SCHEMA"])
    # Without a database: agno's InMemoryDb costs ~13 ms per run here and grows with every
    # session it holds, which would swamp what the service itself costs.
    return None


model = fake.FakeModel(
    respond=fake.answer_text, latency_s=float(os.environ.get("BENCH_LATENCY_S", "0"))
)
agent = Agent(
    id="bench", name="bench", model=model, tools=[fake.get_weather], db=make_db(), telemetry=False
)
app = AgentOS(agents=[agent], telemetry=False).get_app()


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
