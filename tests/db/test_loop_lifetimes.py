"""Sync runs from a new thread per request, and `asyncio.run` per request, leak nothing.

Each thread's event loop, and what a store opened on it (PostgreSQL connections, pooled
aiosqlite connections), is released when the thread ends; a loop that `asyncio.run` closes
takes the store's connections with it, with no "Event loop is closed" traceback. Each case
runs in a separate process, so that its open files and loops are its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from storekit import PG_URL, new_id

HERE = Path(__file__).parent


def run_process(
    kind: str, target: str, mode: str, runs: int, nofile: int | None = None
) -> tuple[dict[str, Any], str]:
    args = [sys.executable, str(HERE / "loop_runner.py"), kind, target, new_id("l") + "_"]
    args += [mode, str(runs)] + ([str(nofile)] if nofile else [])
    # The child imports what this process imports (the sources under test, the test kit).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "runs.db")
    return "postgres", f"{PG_URL}#{request.getfixturevalue('pg_schema')}"


def test_200_thread_per_request_runs_hold_no_more_files_loops_or_threads(
    target: tuple[str, str],
) -> None:
    report, _ = run_process(*target, "threads", 200)
    assert report["errors"] == [] and report["statuses"] == {"COMPLETED": 200}
    before, after = report["before"], report["after"]
    # The last thread's loop may still wait for the next call to close it: one loop's worth.
    assert after["fds"] <= before["fds"] + 4, report
    assert after["loops"] <= before["loops"] + 1, report
    assert after["threads"] <= before["threads"] + 2, report


def test_300_thread_per_request_runs_fit_in_256_file_descriptors(
    target: tuple[str, str],
) -> None:
    report, _ = run_process(*target, "threads", 300, nofile=256)
    assert report["errors"] == [] and report["statuses"] == {"COMPLETED": 300}


def test_asyncio_run_per_request_closes_the_store_connections_with_each_loop(
    target: tuple[str, str],
) -> None:
    report, stderr = run_process(*target, "asyncio", 100)
    assert report["errors"] == [] and report["statuses"] == {"COMPLETED": 100}
    assert "Event loop is closed" not in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    assert report["after"]["fds"] <= report["before"]["fds"] + 2, report
