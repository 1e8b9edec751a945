"""What a checkpoint costs: a tool run with ``checkpoint="step"`` against ``checkpoint="run"``.

Usage::

    .venv/bin/python benchmarks/checkpoints.py               # SQLite and PostgreSQL
    .venv/bin/python benchmarks/checkpoints.py --runs 100 --stores sqlite

A run of an agent with one tool and the instant fake model makes two model requests and one
tool call. With ``checkpoint="step"`` it stores its progress twice on the way (after the model
response that asks for the tool, and after the tool batch); with ``checkpoint="run"`` it is
stored only at its start and end. Both kinds of run alternate, so that drift on a busy machine
hits both alike. The table shows the median ms per run and the cost of one checkpoint:
(step - run) / 2.

PostgreSQL is reached at ``--pg-url`` (default postgresql://postgres@127.0.0.1:5432/test), in a
schema made for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from pilothouse import Agent  # noqa: E402
from pilothouse.db import PostgresDb, SessionStore, SqliteDb  # noqa: E402
from pilothouse.models import Message, ModelResponse, ToolCall, ToolDefinition  # noqa: E402
from pilothouse.models.test import FunctionModel  # noqa: E402


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def decide(messages: list[Message], tools: list[ToolDefinition]) -> ModelResponse:
    """Call the tool once, then answer from its result."""
    if messages[-1].role == "tool":
        return ModelResponse(content=f"It is {messages[-1].content}")
    return ModelResponse(tool_calls=[ToolCall(name="get_weather", arguments={"city": "Paris"})])


async def _measure(store: SessionStore, runs: int) -> dict[str, float]:
    agents = {
        mode: Agent(model=FunctionModel(decide), tools=[get_weather], db=store, checkpoint=mode)
        for mode in ("step", "run")
    }
    times: dict[str, list[float]] = {"step": [], "run": []}
    for mode, agent in agents.items():  # warm-up: tables, statements, tool schemas
        await agent.arun("Weather?", session_id=f"warm-{mode}")
    for index in range(runs):
        for mode, agent in agents.items():
            started = time.perf_counter()
            out = await agent.arun("Weather?", session_id=f"{mode}-{index % 10}")
            times[mode].append(time.perf_counter() - started)
            assert out.content == "It is Sunny in Paris", out.content
    step = statistics.median(times["step"]) * 1000
    run = statistics.median(times["run"]) * 1000
    return {"step": step, "run": run, "checkpoint": (step - run) / 2}


def _postgres(url: str) -> tuple[SessionStore, Any]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    return PostgresDb(url, schema=schema), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each kind per store")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(
        '| store | run, checkpoint="run" (ms) | run, checkpoint="step" (ms) | one checkpoint (ms) |'
    )
    print("|---|---:|---:|---:|")
    for kind in args.stores.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cleanup = None
            if kind == "sqlite":
                store: SessionStore = SqliteDb(str(Path(tmp) / "bench.db"))
            else:
                store, cleanup = _postgres(args.pg_url)
            try:
                result = asyncio.run(_run_and_close(store, args.runs))
            finally:
                if cleanup is not None:
                    cleanup()
        print(
            f"| {kind} | {result['run']:.2f} | {result['step']:.2f} | {result['checkpoint']:.2f} |"
        )


async def _run_and_close(store: SessionStore, runs: int) -> dict[str, float]:
    try:
        return await _measure(store, runs)
    finally:
        await store.close()


if __name__ == "__main__":
    main()
