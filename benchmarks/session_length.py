"""Per-run cost against session length: run 10,000 of a session must cost what run 1 costs.

Usage::

    .venv/bin/python benchmarks/session_length.py                # SQLite (FULL, NORMAL) + PostgreSQL
    .venv/bin/python benchmarks/session_length.py --samples 20   # quicker
    .venv/bin/python benchmarks/session_length.py --stores sqlite --json
    .venv/bin/python benchmarks/session_length.py --no-agno      # without the agno comparison

For each store, one fresh database holds four sessions that already have 1, 100, 1,000 and
10,000 runs (bulk-inserted, so preparing takes seconds). Then, taking turns between the four
sessions (so that drift on a busy machine hits all lengths alike), ``--samples`` times each
after a warm-up, each timed run appending to its session:

- **storage**: the storage work of one run, exactly as the run loop does it, through
  ``SessionIO``: ``begin`` (lease, session, state, run row: ``start_run``), ``history`` (the
  last 3 completed runs), ``finish`` (run row finalised, state compare-and-set, lease
  released: ``finish_run``). The run dict is a realistic RunOutput of about 3 KB.
- **agent**: a whole ``await agent.arun(..., session_id=...)`` of
  ``Agent(model=TestModel(...), db=store, add_history_to_context=True, num_history_runs=3)``
  (the instant fake model), next to the same agent without a store; the difference is what
  the store adds to a run.

The tables show the median µs per run at each length and the ratio run 10,000 / run 1
(target <= 1.2). Unless ``--no-agno``, the same agent run is then measured for agno (SqliteDb,
PostgresDb, its own fake model, history of 3 runs) by
``benchmarks/frameworks/agno_session_bench.py`` under ``benchmarks/.venv-others`` (made by
``benchmarks/setup_others.sh``).

PostgreSQL is reached at ``--pg-url`` (default postgresql://postgres@127.0.0.1:5432/test), in a
schema made for the run and dropped after it; when it is unreachable its rows are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
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

from pilothouse import Agent  # noqa: E402
from pilothouse.db import InMemoryDb, PostgresDb, SessionStore, SqliteDb  # noqa: E402
from pilothouse.models.message import Message, ToolCall  # noqa: E402
from pilothouse.models.test import TestModel  # noqa: E402
from pilothouse.run.metrics import Metrics  # noqa: E402
from pilothouse.run.output import RunInput, RunOutput, RunStatus, ToolExecution  # noqa: E402
from pilothouse.run.session import SessionIO  # noqa: E402

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


def increment(state: dict[str, Any]) -> None:
    """The state change of a run: a counter and the last topic."""
    state["turns"] = state.get("turns", 0) + 1
    state["last_topic"] = "weather"


async def one_run(store: SessionStore, session_id: str, run: dict[str, Any]) -> float:
    """The storage work of one run, as the run loop does it; returns seconds."""
    out = RunOutput.from_dict(run)
    started = time.perf_counter()
    io = SessionIO(store)
    state = await io.begin(out, default_state=None, run_state=None)
    history = await io.history(session_id, num_runs=3, num_messages=None)
    increment(state)
    out.session_state = state
    out.status = RunStatus.completed
    await io.finish(out)
    await io.release()
    elapsed = time.perf_counter() - started
    assert history, "history read came back empty"
    return elapsed


def make_agent(store: SessionStore | None) -> Agent:
    """The agent of the whole-run measurement: instant fake model, history of 3 runs."""
    answer = "It is 18 °C and cloudy in Paris; take an umbrella."
    if store is None:
        return Agent(model=TestModel(text=answer), id="agent-bench")
    return Agent(
        model=TestModel(text=answer),
        db=store,
        add_history_to_context=True,
        num_history_runs=3,
        id="agent-bench",
    )


async def agent_run(agent: Agent, session_id: str, i: int) -> float:
    """One whole agent run; returns seconds."""
    started = time.perf_counter()
    out = await agent.arun(
        f"Question {i}: what is the weather in Paris?", session_id=session_id, user_id="u"
    )
    elapsed = time.perf_counter() - started
    assert out.status is RunStatus.completed, out.content
    return elapsed


async def measure(store: SessionStore, samples: int) -> dict[str, dict[int, float]]:
    """Median µs per run at each session length: storage work, whole agent run, and the
    same agent without a store (one figure, length does not apply)."""
    kinds = ("storage", "agent")
    sessions = {
        kind: {length: f"bench-{kind}-{uuid.uuid4().hex[:8]}-{length}" for length in LENGTHS}
        for kind in kinds
    }
    for by_length in sessions.values():
        for length, session_id in by_length.items():
            await prefill(store, session_id, length)
    with_store, without_store = make_agent(store), make_agent(None)
    timings: dict[str, dict[int, list[float]]] = {
        kind: {length: [] for length in LENGTHS} for kind in kinds
    }
    bare: list[float] = []
    for i in range(WARMUP + samples):
        for length in LENGTHS:
            sid = sessions["storage"][length]
            storage = await one_run(store, sid, make_run(sid, i))
            agent = await agent_run(with_store, sessions["agent"][length], i)
            nothing = await agent_run(without_store, "no-store", i)
            if i >= WARMUP:
                timings["storage"][length].append(storage)
                timings["agent"][length].append(agent)
                bare.append(nothing)
    for by_length in sessions.values():
        for length, session_id in by_length.items():
            session = await store.get_session(session_id)
            assert session is not None and session.run_count == length + WARMUP + samples
    result = {
        kind: {length: statistics.median(t) * 1e6 for length, t in timings[kind].items()}
        for kind in kinds
    }
    result["agent_without_store"] = {0: statistics.median(bare) * 1e6}
    return result


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
        storage, agent = medians["storage"], medians["agent"]
        results.append(
            {
                "store": name,
                "us_per_run": {str(k): round(v, 1) for k, v in storage.items()},
                "ratio_10000_to_1": round(storage[10_000] / storage[1], 3),
                "agent_us_per_run": {str(k): round(v, 1) for k, v in agent.items()},
                "agent_ratio_10000_to_1": round(agent[10_000] / agent[1], 3),
                "agent_without_store_us": round(medians["agent_without_store"][0], 1),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    return results


def table(results: list[dict[str, Any]], samples: int, agno: dict[str, Any] | None) -> str:
    """The markdown tables."""
    lines = [
        f"Storage work of one run (SessionIO begin + history(3) + finish), median of {samples}, µs:",
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
    lines += [
        "",
        "Whole agent run (`await agent.arun(...)`, instant fake model, history of 3 runs), "
        f"median of {samples}, µs; last column: the same agent without a store:",
        "",
        "| framework, store | run 1 | run 100 | run 1,000 | run 10,000 | run 10,000 / run 1 "
        "| no store |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        if "skipped" in result:
            continue
        us = result["agent_us_per_run"]
        cells = " | ".join(f"{us[str(n)]:,.0f}" for n in LENGTHS)
        lines.append(
            f"| Pilothouse, {result['store']} | {cells} | {result['agent_ratio_10000_to_1']:.2f} "
            f"| {result['agent_without_store_us']:,.0f} |"
        )
    if agno is not None:
        lines += agno_rows(agno)
    load = os.getloadavg()[0]
    lines += [
        "",
        f"1-minute load average: {load:.2f}; {os.cpu_count()} CPUs; machine speed reference: "
        f"one JSON encode + decode of the run dict takes {json_round_trip_us():.0f} µs",
    ]
    return "\n".join(lines)


def agno_rows(agno: dict[str, Any]) -> list[str]:
    """The agno lines of the agent table, and where and why it stopped."""
    if "skipped" in agno:
        return ["", f"agno: skipped ({agno['skipped']})"]
    lines = []
    notes = []
    for result in agno["results"]:
        us = result["us_per_run"]
        cells = " | ".join(f"{us[str(n)]:,.0f}" if str(n) in us else "—" for n in LENGTHS)
        ratio = "—"
        if "10000" in us:
            ratio = f"{us['10000'] / us['1']:.2f}"
        elif len(us) > 1:
            longest = max(int(k) for k in us)
            ratio = f"(run {longest:,} / run 1: {us[str(longest)] / us['1']:.2f})"
        lines.append(f"| agno {agno['version']}, {result['store']} | {cells} | {ratio} | |")
        if result.get("stopped"):
            notes.append(f"agno, {result['store']}: {result['stopped']}")
    return lines + (["", *notes] if notes else [])


def run_agno(args: argparse.Namespace) -> dict[str, Any]:
    """Run benchmarks/frameworks/agno_session_bench.py under benchmarks/.venv-others."""
    python = ROOT / "benchmarks" / ".venv-others" / "bin" / "python"
    if not python.exists():
        return {"skipped": "benchmarks/.venv-others missing: run benchmarks/setup_others.sh"}
    script = ROOT / "benchmarks" / "frameworks" / "agno_session_bench.py"
    command = [
        str(python),
        str(script),
        "--samples",
        str(args.samples),
        "--stores",
        args.stores,
        "--pg-url",
        args.pg_url,
        "--budget-s",
        str(args.agno_budget_s),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"skipped": f"agno_session_bench.py failed: {done.stderr.strip()[-500:]}"}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


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
    parser.add_argument("--no-agno", action="store_true", help="skip the agno comparison")
    parser.add_argument(
        "--agno-budget-s",
        type=float,
        default=600.0,
        help="stop growing agno's sessions once a store has taken this long",
    )
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
    agno = None if args.no_agno else run_agno(args)
    if args.json:
        print(json.dumps({"pilothouse": results, "agno": agno}, indent=2))
    else:
        print(table(results, args.samples, agno))


if __name__ == "__main__":
    main()
