"""Per-run cost against session length for agno, with its SqliteDb / PostgresDb.

Run by ``benchmarks/session_length.py`` under ``benchmarks/.venv-others/bin/python``; prints
one JSON object. The agent is agno's ``Agent`` with the instant fake model of
``agno_bench.py``, ``db=`` a store, ``add_history_to_context=True, num_history_runs=3``; each
run is ``await agent.arun(..., session_id=...)``.

agno keeps a session's runs inside the session row and rewrites it on every run, so there is
no faster honest way to give a session N runs than N runs: the session is grown run by run.
At 1, 100, 1,000 and 10,000 runs, ``--samples`` more runs are timed (median). The growth
stops when a store's total time passes ``--budget-s`` or one run takes longer than
``--max-run-s``; the result says where and why.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

LENGTHS = (1, 100, 1_000, 10_000)


def _load(name: str) -> ModuleType:
    """Import a sibling script by path (it applies the quiet environment and the network
    guard before importing agno)."""
    path = Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake = _load("agno_bench")

import agno  # noqa: E402
from agno.agent import Agent  # noqa: E402


def make_db(kind: str, workdir: str, pg_url: str, schema: str) -> Any:
    """agno's store of the given kind on a fresh database."""
    if kind == "sqlite":
        from agno.db.sqlite import SqliteDb

        return SqliteDb(db_file=f"{workdir}/agno.db")
    from agno.db.postgres import PostgresDb

    url = pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return PostgresDb(db_url=url, db_schema=schema)


async def measure(kind: str, args: argparse.Namespace, workdir: str, schema: str) -> dict[str, Any]:
    """Grow one session, timing ``samples`` runs at each length until the budget is spent."""
    agent = Agent(
        name="bench",
        model=fake.FakeModel(respond=fake.answer_text),
        db=make_db(kind, workdir, args.pg_url, schema),
        add_history_to_context=True,
        num_history_runs=3,
        telemetry=False,
    )
    session_id = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    done = 0
    medians: dict[str, float] = {}
    stopped = ""

    async def one() -> float:
        nonlocal done
        begin = time.perf_counter()
        out = await agent.arun(
            f"Question {done}: what is the weather in Paris?", session_id=session_id, user_id="u"
        )
        elapsed = time.perf_counter() - begin
        done += 1
        assert out.content == fake.h.TEXT_ANSWER, out.content
        return elapsed

    for length in LENGTHS:
        # Grow the session to length - 1 runs, then time the next `samples` runs.
        while done < length - 1:
            seconds = await one()
            spent = time.monotonic() - started
            if spent > args.budget_s or seconds > args.max_run_s:
                stopped = (
                    f"stopped growing at {done:,} runs (aiming for {length:,}) after "
                    f"{spent:,.0f} s; the last run took {seconds * 1e3:,.0f} ms "
                    f"(budget {args.budget_s:,.0f} s, at most {args.max_run_s:,.0f} s per run)"
                )
                break
        if stopped:
            break
        timings = [await one() for _ in range(args.samples)]
        medians[str(length)] = round(statistics.median(timings) * 1e6, 1)
    return {
        "store": "SqliteDb" if kind == "sqlite" else "PostgresDb",
        "us_per_run": medians,
        "runs_in_session": done,
        "seconds": round(time.monotonic() - started, 1),
        "stopped": stopped,
    }


def pg_schema(url: str, action: str, schema: str) -> None:
    """Create or drop the schema agno's tables go into."""
    import psycopg

    with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
        if action == "create":
            conn.execute(f'CREATE SCHEMA "{schema}"')
        else:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    """Measure each requested store and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--max-run-s", type=float, default=2.0)
    args = parser.parse_args()
    kinds = [k for k in args.stores.split(",") if k in ("sqlite", "postgres")]
    results = []
    schema = f"agno_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="agno-bench-") as workdir:
        for kind in kinds:
            if kind == "postgres":
                try:
                    pg_schema(args.pg_url, "create", schema)
                except Exception as exc:  # unreachable server: say so, measure the rest
                    results.append({"store": "PostgresDb", "us_per_run": {}, "stopped": str(exc)})
                    continue
            try:
                results.append(asyncio.run(measure(kind, args, workdir, schema)))
            finally:
                if kind == "postgres":
                    pg_schema(args.pg_url, "drop", schema)
    print(json.dumps({"framework": "agno", "version": agno.__version__, "results": results}))


if __name__ == "__main__":
    main()
