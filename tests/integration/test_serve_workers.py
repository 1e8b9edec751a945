"""Several workers as one service: two ``pilothouse serve`` processes on one database (SQLite
file, PostgreSQL schema). A stream dropped on one is resumed on the other, a run is cancelled
and continued from the other, and a client that leaves its foreground stream cancels its run.
Then ``--workers 2`` on PostgreSQL behaves the same through one port."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_kit import (
    Server,
    SseReader,
    base_env,
    db_spec,
    pg_schema,
    servers,
    token,
    wait_for_status,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

RUNS = "/agents/assistant/runs"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    tmp: Path = tmp_path_factory.mktemp(f"serve-{request.param}")
    with pg_schema() if request.param == "postgres" else contextlib.nullcontext() as schema:
        env = base_env(db_spec(request.param, tmp, schema), SERVE_TEST_GRACE="0.5")
        with servers(env, tmp, 2) as (a, b):
            yield a, b


def test_stream_resumes_on_another_worker_after_a_forced_disconnect(
    pair: tuple[Server, Server],
) -> None:
    a, b = pair
    bearer = token("reader")
    with a.client(token=bearer) as on_a:
        body = {"message": "words 12 0.1", "background": True}
        with on_a.stream("POST", RUNS, json=body) as answer:
            reader = SseReader(answer)
            seen = [reader.next() for _ in range(3)]
        # The connection is closed: a background run goes on.
    assert all(f is not None for f in seen)
    last = seen[-1]
    assert last is not None
    run_id = last.data["run_id"]
    with (
        b.client(token=bearer) as on_b,
        on_b.stream(
            "GET", f"{RUNS}/{run_id}/events", headers={"Last-Event-ID": str(last.id)}
        ) as resumed,
    ):
        rest = SseReader(resumed).rest()
    ids = [f.id for f in seen if f] + [f.id for f in rest]
    assert ids == list(range(1, len(ids) + 1)), ids
    assert rest[-1].event == "RunCompleted"
    words = [f.data["content"] for f in [*seen, *rest] if f and f.event == "RunContent"]
    assert "".join(words) == "".join(f"w{i} " for i in range(12))


def test_cancel_from_another_worker(pair: tuple[Server, Server]) -> None:
    a, b = pair
    with a.client() as on_a, b.client() as on_b:
        with on_a.stream("POST", RUNS, json={"message": "steps 20 0.2"}) as answer:
            reader = SseReader(answer)
            first = reader.next()
            assert first is not None
            run_id = first.data["run_id"]
            started = time.monotonic()
            cancelled = on_b.post(f"{RUNS}/{run_id}/cancel")
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json() == {"run_id": run_id, "status": "CANCELLED", "cancelled": True}
            rest = reader.rest()
        assert rest[-1].event == "RunCancelled"
        assert time.monotonic() - started < 3
        assert on_b.get(f"{RUNS}/{run_id}").json()["status"] == "CANCELLED"


def test_leaving_a_foreground_stream_cancels_its_run(pair: tuple[Server, Server]) -> None:
    a, b = pair
    with a.client() as on_a:
        with on_a.stream("POST", RUNS, json={"message": "steps 30 0.2"}) as answer:
            first = SseReader(answer).next()
        assert first is not None
        run_id = first.data["run_id"]
    with b.client() as on_b:
        run = wait_for_status(on_b, f"{RUNS}/{run_id}", {"CANCELLED", "COMPLETED"})
        assert run["status"] == "CANCELLED"
        frames = SseReader(on_b.get(f"{RUNS}/{run_id}/events")).rest()
        assert frames[-1].event == "RunCancelled"


def test_a_client_that_comes_back_in_time_keeps_its_run(pair: tuple[Server, Server]) -> None:
    a, b = pair
    with a.client() as on_a, on_a.stream("POST", RUNS, json={"message": "words 10 0.1"}) as answer:
        first = SseReader(answer).next()
    assert first is not None
    # Reconnect to the other worker within the grace period (0.5 s).
    with (
        b.client() as on_b,
        on_b.stream(
            "GET", f"{RUNS}/{first.data['run_id']}/events", params={"after": first.id}
        ) as resumed,
    ):
        rest = SseReader(resumed).rest()
    assert rest[0].id == first.id + 1 and rest[-1].event == "RunCompleted"


def test_continue_a_paused_run_on_another_worker(pair: tuple[Server, Server]) -> None:
    a, b = pair
    with a.client(token=token("carol")) as on_a, b.client(token=token("carol")) as on_b:
        with on_a.stream("POST", RUNS, json={"message": "confirm"}) as answer:
            first_leg = SseReader(answer).rest()
        assert first_leg[-1].event == "RunPaused"
        run_id = first_leg[-1].data["run_id"]
        assert on_b.get(f"{RUNS}/{run_id}").json()["status"] == "PAUSED"
        waiting = first_leg[-1].data["tools"][0]
        missing = on_b.post(f"{RUNS}/{run_id}/continue", json={"tools": [waiting]})
        assert missing.status_code == 422
        problem = missing.json()
        assert problem["field"] == "tools" and "delete_logs" in problem["detail"]
        assert problem["tools"] == [
            {
                "tool_name": "delete_logs",
                "tool_call_id": waiting["tool_call_id"],
                "missing": "confirmed",
            }
        ]
        answered = {**waiting, "confirmed": True}
        with on_b.stream("POST", f"{RUNS}/{run_id}/continue", json={"tools": [answered]}) as answer:
            frames = SseReader(answer).rest()
        assert frames[-1].event == "RunCompleted"
        assert frames[-1].data["content"] == "result: deleted all rows of logs"
        # Numbering goes on after the first leg's events.
        assert frames[0].id == first_leg[-1].id + 1
        again = on_a.post(f"{RUNS}/{run_id}/continue", json={"tools": [answered]})
        assert again.status_code == 409 and again.json()["status"] == "COMPLETED"
        assert on_a.get(f"{RUNS}/{run_id}").json()["status"] == "COMPLETED"


def test_two_workers_through_one_port(tmp_path: Path) -> None:
    with pg_schema() as schema:
        env = base_env(db_spec("postgres", tmp_path, schema))
        with servers(env, tmp_path, workers=2) as (server,), server.client() as client:
            workers: dict[str, int] = {}
            runs = []
            for i in range(60):
                # A new connection each time, so that both workers get some.
                with httpx.Client(base_url=server.url, headers=client.headers) as fresh:
                    worker = fresh.get("/health").json()["worker_id"]
                    workers[worker] = workers.get(worker, 0) + 1
                    if len(runs) < 12:
                        run = fresh.post(RUNS, json={"message": f"n{i}", "stream": False})
                        runs.append(run.json())
                if len(workers) == 2 and len(runs) == 12:
                    break
            assert len(workers) == 2, workers
            for run in runs:
                assert client.get(f"{RUNS}/{run['run_id']}").json()["status"] == "COMPLETED"
            listed = client.get("/sessions", params={"limit": 100}).json()
            assert listed["meta"]["total_count"] == 12
