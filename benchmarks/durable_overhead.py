"""What durable execution on DBOS adds to a run.

Usage::

    .venv/bin/python benchmarks/durable_overhead.py              # SQLite and PostgreSQL
    .venv/bin/python benchmarks/durable_overhead.py --runs 50 --systems sqlite

One run = one tool call and an answer (two model requests, one tool call) from an instant
fake model, with the agent's session store on SQLite. Measured, sequentially, ``--runs`` times
each after a warm-up, median wall time per run:

- **plain**: ``await agent.arun(...)``;
- **durable**: ``await DBOSAgent(agent).arun(...)``: the run as a DBOS workflow with three
  steps (two model requests, one tool call), its stop recorded as a DBOS event;
- **durable, streamed**: the same with ``stream=True, stream_events=True``, every event read.

For each DBOS system database: SQLite (a file in a temporary directory) and PostgreSQL at
``--pg-url`` (a database made for the run and dropped after it; skipped when unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dbos import DBOS  # noqa: E402

from pilothouse import Agent  # noqa: E402
from pilothouse.db import SqliteDb  # noqa: E402
from pilothouse.durable import DBOSAgent  # noqa: E402
from pilothouse.models import Message, ToolCall, ToolDefinition  # noqa: E402
from pilothouse.models.test import FunctionModel  # noqa: E402


def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"It is {messages[-1].content}"
    return [ToolCall(name="get_weather", arguments={"city": "Paris"})]


def get_weather(city: str) -> str:
    """Get the weather."""
    return f"sunny in {city}"


async def timed(label: str, runs: int, once: Any) -> tuple[str, float]:
    for _ in range(5):
        await once()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - started)
    return label, statistics.median(samples) * 1000


async def measure(system: str, url: str, workdir: Path, runs: int) -> list[tuple[str, float]]:
    store = SqliteDb(str(workdir / f"agents-{system}.db"))
    agent = Agent(
        name=f"bench-{system}", model=FunctionModel(decide), tools=[get_weather], db=store
    )
    durable = DBOSAgent(agent)
    DBOS(config={"name": "pilothouse-bench", "system_database_url": url, "log_level": "WARNING"})
    DBOS.launch()
    try:

        async def plain() -> None:
            out = await agent.arun("Weather?")
            assert out.content == "It is sunny in Paris"

        async def durable_run() -> None:
            out = await durable.arun("Weather?")
            assert out.content == "It is sunny in Paris"

        async def streamed() -> None:
            stream = durable.arun("Weather?", stream=True, stream_events=True)
            async for _ in stream:
                pass
            assert stream.output is not None and stream.output.content == "It is sunny in Paris"

        return [
            await timed("plain", runs, plain),
            await timed("durable", runs, durable_run),
            await timed("durable, streamed", runs, streamed),
        ]
    finally:
        DBOS.destroy(destroy_registry=True)
        await store.close()


def pg_database(server: str) -> str | None:
    try:
        import psycopg

        name = f"pilothouse_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{server}/postgres", connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name
    except Exception as exc:
        print(f"PostgreSQL at {server} skipped: {exc}", file=sys.stderr)
        return None


def drop_pg_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", connect_timeout=3, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--systems", default="sqlite,postgres")
    parser.add_argument("--pg-server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    results: dict[str, list[tuple[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for system in args.systems.split(","):
            if system == "sqlite":
                url = f"sqlite:///{workdir / 'dbos.sqlite'}"
                results["SQLite"] = asyncio.run(measure(system, url, workdir, args.runs))
            elif system == "postgres":
                name = pg_database(args.pg_server)
                if name is None:
                    continue
                try:
                    url = f"{args.pg_server}/{name}"
                    results["PostgreSQL"] = asyncio.run(measure(system, url, workdir, args.runs))
                finally:
                    drop_pg_database(args.pg_server, name)
    print(f"| Run (tool call + answer), ms per run | {' | '.join(results)} |")
    print(f"|---|{'---|' * len(results)}")
    labels = [label for label, _ in next(iter(results.values()))] if results else []
    for index, label in enumerate(labels):
        cells = " | ".join(f"{rows[index][1]:.2f}" for rows in results.values())
        print(f"| {label} | {cells} |")
    load = os.getloadavg()[0]
    print(
        f"\n{args.runs} runs each, median; Python {platform.python_version()}, "
        f"{platform.platform()}; 1-min load average {load:.2f}"
    )


if __name__ == "__main__":
    main()
