"""An OpenAIChat agent called from a new thread per request, or through `asyncio.run` per
request, against llama-cpp-python's server: each loop's SDK client is closed with its loop.

Before, every thread kept its loop, its SDK client and their sockets (four file descriptors)
forever, and every `asyncio.run` left a client behind that printed "Event loop is closed"
tracebacks when collected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent


def run_process(base_url: str, mode: str, runs: int) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(HERE / "openai_per_request.py"), base_url, mode, str(runs)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_a_thread_per_request_leaves_no_client_loop_or_socket_behind(
    llama_cpp_python_server: str,
) -> None:
    report, stderr = run_process(llama_cpp_python_server, "threads", 12)
    assert report["statuses"] == ["COMPLETED"] * 13, stderr
    before, after = report["before"], report["after"]
    # The last thread's loop may still wait for the next call to close it: one loop's worth.
    assert after["fds"] <= before["fds"] + 4, report
    assert after["loops"] <= before["loops"] + 1, report
    assert after["threads"] <= before["threads"] + 2, report


def test_asyncio_run_per_request_prints_no_event_loop_is_closed(
    llama_cpp_python_server: str,
) -> None:
    report, stderr = run_process(llama_cpp_python_server, "asyncio", 12)
    assert report["statuses"] == ["COMPLETED"] * 13, stderr
    assert "Event loop is closed" not in stderr, stderr[-3000:]
    assert "Exception ignored" not in stderr, stderr[-3000:]
    assert report["after"]["fds"] <= report["before"]["fds"] + 2, report
