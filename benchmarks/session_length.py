"""Per-run storage cost against session length: run 10,000 of a session must cost what run 1 costs.

Usage::

    .venv/bin/python benchmarks/session_length.py                # SQLite (FULL, NORMAL) + PostgreSQL
    .venv/bin/python benchmarks/session_length.py --samples 20   # quicker
    .venv/bin/python benchmarks/session_length.py --stores sqlite --json

For each store, one fresh database holds four sessions that already have 1, 100, 1,000 and
10,000 runs (bulk-inserted, so preparing takes seconds). Then the storage work of one run is
timed, as the run loop does it:

    upsert_session + get_last_runs(limit=3) + insert_run + update_run + state compare-and-set

taking turns between the four sessions (so that drift on a busy machine hits all lengths
alike), ``--samples`` times each after a warm-up; each timed run appends to its session. The
table shows the median µs per run at each length and the ratio run 10,000 / run 1 (target
<= 1.2). The run dict is a realistic RunOutput of about 3 KB (messages, a tool call, metrics).

PostgreSQL is reached at ``--pg-url`` (default postgresql://postgres@127.0.0.1:5432/test), in a
schema made for the run and dropped after it; when it is unreachable its rows are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402

from pilothouse.db import InMemoryDb, PostgresDb, SessionStore, SqliteDb  # noqa: E402
from pilothouse.models.message import Message, ToolCall  # noqa: E402
from pilothouse.run.metrics import Metrics  # noqa: E402
from pilothouse.run.output import RunInput, RunOutput, RunStatus, ToolExecution  # noqa: E402

LENGTHS = (1, 100, 1_000, 10_000)
WARMUP = 5
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def make_run(session_id: str, n: int) -> dict[str, Any]:
    """A finished run as the loop stores it: about 3 KB of JSON."""
    question = f"Question {n}: what is the weather in Paris, and should I take an umbrella?"
    call = ToolCall(name="get_weather", arguments={"city": "Paris"})
    answer = "It is 18 °C and cloudy in Paris with a 40% chance of rain; take an umbrella. " * 3
    run = RunOutput(
        run_id=uuid.uuid4().hex,
        agent_id="agent-bench",
        agent_name="bench",
        session_id=session_id,
        user_id="user-bench",
        input=RunInput(input_content=question),
        content=answer,
        model="gpt-5-mini",
        model_provider="openai",
        messages=[
            Message(role="system", content="You are a helpful assistant. Be brief. " * 4),
            Message(role="user", content=question),
            Message(role="assistant", tool_calls=[call]),
            Message(
                role="tool",
                tool_call_id=call.id,
                name="get_weather",
                content='{"temp_c": 18, "sky": "cloudy", "rain": 0.4}',
            ),
            Message(role="assistant", content=answer),
        ],
        metrics=Metrics(input_tokens=412, output_tokens=96, total_tokens=508),
        tools=[ToolExecution(tool_name="get_weather", tool_args={"city": "Paris"}, result="18C")],
        metadata={"request_id": uuid.uuid4().hex},
        status=RunStatus.running,
    )
    return run.to_dict()


async def prefill(store: SessionStore, session_id: str, runs: int) -> None:
    """Give ``session_id`` ``runs`` completed runs, quickly.

    SQL stores get one multi-row INSERT per 1,000 runs through the store's own tables and
    connection (internals, on purpose: going through insert_run with a durable commit each
    would take minutes and measure nothing new).
    """
    await store.upsert_session(session_id, user_id="user-bench", agent_id="agent-bench")
    template = make_run(session_id, 0)
    if not isinstance(store, SqliteDb | PostgresDb):
        for _ in range(runs):
            await store.insert_run(
                {**template, "run_id": uuid.uuid4().hex, "status": RunStatus.completed.value}
            )
        return
    tables = store._tables
    now = time.time()

    async def bulk(conn: AsyncConnection) -> None:
        for start in range(0, runs, 1_000):
            rows = []
            for run_no in range(start + 1, min(start + 1_000, runs) + 1):
                run_id = uuid.uuid4().hex
                rows.append(
                    {
                        "run_id": run_id,
                        "session_id": session_id,
                        "run_no": run_no,
                        "user_id": "user-bench",
                        "agent_id": "agent-bench",
                        "status": RunStatus.completed.value,
                        "created_at": now,
                        "updated_at": now,
                        "data": {**template, "run_id": run_id, "status": "COMPLETED"},
                    }
                )
            await conn.execute(tables.runs.insert(), rows)
        s = tables.sessions
        await conn.execute(update(s).where(s.c.session_id == session_id).values(run_count=runs))

    await store._write(bulk)


def increment(state: dict[str, Any]) -> dict[str, Any]:
    """The state change of a run: a counter and the last topic."""
    return {**state, "turns": state.get("turns", 0) + 1, "last_topic": "weather"}


async def one_run(store: SessionStore, session_id: str, run: dict[str, Any]) -> float:
    """The storage work of one run, as the run loop does it; returns seconds."""
    started = time.perf_counter()
    await store.upsert_session(session_id, user_id="user-bench", agent_id="agent-bench")
    history = await store.get_last_runs(session_id, limit=3, statuses=[RunStatus.completed])
    await store.insert_run(run)
    await store.update_run({**run, "status": RunStatus.completed.value})
    await store.update_session_state(session_id, increment)
    elapsed = time.perf_counter() - started
    assert len(history) == 3 or session_id.endswith("-1"), "history read came back short"
    return elapsed


async def measure(store: SessionStore, samples: int) -> dict[int, float]:
    """Median µs per run at each session length."""
    sessions = {length: f"bench-{uuid.uuid4().hex[:8]}-{length}" for length in LENGTHS}
    for length, session_id in sessions.items():
        await prefill(store, session_id, length)
    timings: dict[int, list[float]] = {length: [] for length in LENGTHS}
    for i in range(WARMUP + samples):
        for length, session_id in sessions.items():
            seconds = await one_run(store, session_id, make_run(session_id, i))
            if i >= WARMUP:
                timings[length].append(seconds)
    for length, session_id in sessions.items():
        session = await store.get_session(session_id)
        assert session is not None and session.run_count == length + WARMUP + samples
    return {length: statistics.median(t) * 1e6 for length, t in timings.items()}


def pg_schema(url: str, action: str, schema: str) -> str | None:
    """Create or drop the benchmark's schema; the reason when PostgreSQL is unreachable."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            if action == "create":
                conn.execute(f'CREATE SCHEMA "{schema}"')
            else:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]
    return None


async def run_all(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    """Measure each requested store on a fresh database."""
    factories: list[tuple[str, Callable[[], SessionStore]]] = []
    kinds = args.stores.split(",")
    if "memory" in kinds:
        factories.append(("InMemoryDb", InMemoryDb))
    if "sqlite" in kinds:
        factories.append(
            ("SqliteDb (synchronous=FULL)", lambda: SqliteDb(workdir / "full.db")),
        )
        factories.append(
            (
                "SqliteDb (synchronous=NORMAL)",
                lambda: SqliteDb(workdir / "normal.db", synchronous="NORMAL"),
            ),
        )
    if "postgres" in kinds:
        factories.append(
            ("PostgresDb", lambda: PostgresDb(args.pg_url, schema=args.pg_schema)),
        )
    results = []
    for name, factory in factories:
        if name == "PostgresDb" and args.pg_unreachable:
            results.append({"store": name, "skipped": args.pg_unreachable})
            continue
        started = time.monotonic()
        async with factory() as store:
            medians = await measure(store, args.samples)
        results.append(
            {
                "store": name,
                "us_per_run": {str(k): round(v, 1) for k, v in medians.items()},
                "ratio_10000_to_1": round(medians[10_000] / medians[1], 3),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    return results


def table(results: list[dict[str, Any]], samples: int) -> str:
    """The markdown table."""
    lines = [
        "Storage work of one run (upsert_session + get_last_runs(3) + insert_run + update_run"
        f" + state CAS), median of {samples}, µs:",
        "",
        "| store | run 1 | run 100 | run 1,000 | run 10,000 | run 10,000 / run 1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        if "skipped" in result:
            lines.append(f"| {result['store']} | skipped: {result['skipped']} | | | | |")
            continue
        us = result["us_per_run"]
        cells = " | ".join(f"{us[str(n)]:,.0f}" for n in LENGTHS)
        lines.append(f"| {result['store']} | {cells} | {result['ratio_10000_to_1']:.2f} |")
    load = os.getloadavg()[0]
    lines += [
        "",
        f"1-minute load average: {load:.2f}; {os.cpu_count()} CPUs; machine speed reference: "
        f"one JSON encode + decode of the run dict takes {json_round_trip_us():.0f} µs",
    ]
    return "\n".join(lines)


def json_round_trip_us() -> float:
    """Median µs of json.loads(json.dumps(run)): a yardstick for this machine's speed, since
    absolute figures vary several-fold between machines."""
    run = make_run("yardstick", 0)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        json.loads(json.dumps(run))
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    """Parse the arguments, measure, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--stores", default="sqlite,postgres", help="memory,sqlite,postgres")
    parser.add_argument(
        "--pg-url", default=os.environ.get("PILOTHOUSE_BENCH_PG_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--json", action="store_true", help="print raw results as JSON")
    args = parser.parse_args()
    args.pg_schema = f"pilothouse_bench_{uuid.uuid4().hex[:8]}"
    args.pg_unreachable = None
    if "postgres" in args.stores:
        args.pg_unreachable = pg_schema(args.pg_url, "create", args.pg_schema)
    try:
        with tempfile.TemporaryDirectory(prefix="pilothouse-bench-") as workdir:
            results = asyncio.run(run_all(args, Path(workdir)))
    finally:
        if "postgres" in args.stores and not args.pg_unreachable:
            pg_schema(args.pg_url, "drop", args.pg_schema)
    print(json.dumps(results, indent=2) if args.json else table(results, args.samples))


if __name__ == "__main__":
    main()
