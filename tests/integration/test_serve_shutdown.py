"""SIGTERM drains a worker: runs that finish within the drain timeout finish (an open stream
gets its last event), the others are stored ``cancelled``; then the process exits."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from serve_kit import SseReader, base_env, db_spec, servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

RUNS = "/agents/assistant/runs"


def _stored(db_file: Path, run_id: str) -> dict[str, Any] | None:
    from pilothouse.db import SqliteDb

    async def read() -> dict[str, Any] | None:
        async with SqliteDb(db_file) as db:
            return await db.get_run(run_id)

    return asyncio.run(read())


def test_sigterm_finishes_short_runs_and_cancels_long_ones(tmp_path: Path) -> None:
    env = base_env(db_spec("sqlite", tmp_path), SERVE_TEST_DRAIN="2")
    with servers(env, tmp_path, drain=2) as (server,), server.client() as client:
        short = client.post(
            RUNS, json={"message": "steps 3 0.2", "background": True, "stream": False}
        )
        long = client.post(
            RUNS, json={"message": "steps 100 0.2", "background": True, "stream": False}
        )
        assert short.status_code == long.status_code == 202
        with client.stream("POST", RUNS, json={"message": "steps 4 0.2"}) as answer:
            reader = SseReader(answer)
            first = reader.next()
            assert first is not None
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            rest = reader.rest()
        assert rest[-1].event == "RunCompleted"
        # uvicorn ends by re-raising the signal it handled: -SIGTERM, after a clean shutdown.
        assert server.process.wait(20) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopping < 15
        streamed = _stored(tmp_path / "serve.db", first.data["run_id"])
        finished = _stored(tmp_path / "serve.db", short.json()["run_id"])
        stopped = _stored(tmp_path / "serve.db", long.json()["run_id"])
        assert streamed is not None and streamed["status"] == "COMPLETED"
        assert finished is not None and finished["status"] == "COMPLETED"
        assert finished["content"] == "finished 3 steps"
        assert stopped is not None and stopped["status"] == "CANCELLED"
        assert "did not finish in time" in server.log()
