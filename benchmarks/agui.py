"""What AG-UI adds to a streamed run: ``POST /agents/{id}/agui`` against ``POST .../runs``.

Usage::

    .venv/bin/python benchmarks/agui.py            # about 15 seconds on 2 cores
    .venv/bin/python benchmarks/agui.py --runs 100 --json

Both endpoints run the same agent (a FunctionModel that streams 20 pieces, calls one tool
that changes the session state, then streams 20 more; in-memory store) on the same app, in
this process: each request is sent straight to the ASGI app by a minimal driver (no sockets,
no HTTP parsing), the same for both, so the difference between the two is what the AG-UI route
costs on top of the native stream: reading the ``RunAgentInput``, the starting session state,
the state reports, translating each event into AG-UI events and encoding them with the
``ag-ui-protocol`` package. Each run is checked (its last event, its text).

Reported: the median wall time and CPU time per run, and the AG-UI events per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pilothouse import Agent
from pilothouse.db import InMemoryDb
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.serve import create_app

PIECES = 20


def remember(city: str, session_state: dict[str, Any]) -> str:
    """Remember a city."""
    session_state["city"] = city
    return f"noted {city}"


async def stream(messages: list[Message], tools: list[Any]) -> AsyncIterator[Any]:
    after_tool = messages[-1].role == "tool"
    for index in range(PIECES):
        yield f"w{index} "
    if not after_tool:
        yield ToolCall(name="remember", arguments={"city": "Paris"})


async def call(app: Any, path: str, body: bytes) -> bytes:
    """One POST straight to the ASGI app; the whole response body."""
    sent = False
    done = asyncio.Event()
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return b"".join(chunks)


def native_body() -> bytes:
    return json.dumps({"message": "go", "session_id": uuid.uuid4().hex}).encode()


def agui_body() -> bytes:
    return json.dumps(
        {
            "threadId": uuid.uuid4().hex,
            "runId": uuid.uuid4().hex,
            "messages": [{"id": "m", "role": "user", "content": "go"}],
            "state": {"units": "metric"},
        }
    ).encode()


def check_native(body: bytes) -> int:
    frames = [f for f in body.decode().split("\n\n") if f.startswith("id:")]
    assert "event: RunCompleted" in frames[-1], frames[-1][:200]
    return len(frames)


def check_agui(body: bytes) -> int:
    events = [json.loads(f[6:]) for f in body.decode().split("\n\n") if f.startswith("data: ")]
    assert events[-1]["type"] == "RUN_FINISHED", events[-1]
    text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
    assert text.count("w19 ") == 2, text
    assert any(e["type"] == "STATE_DELTA" for e in events)
    return len(events)


async def measure(app: Any, runs: int) -> dict[str, dict[str, float]]:
    kinds = {
        "native": ("/agents/bench/runs", native_body, check_native),
        "agui": ("/agents/bench/agui", agui_body, check_agui),
    }
    samples: dict[str, dict[str, list[float]]] = {
        k: {"wall": [], "cpu": [], "events": []} for k in kinds
    }
    for _ in range(10):  # warm up both routes
        for path, body, check in kinds.values():
            check(await call(app, path, body()))
    for _ in range(runs):
        for kind, (path, body, check) in kinds.items():
            payload = body()
            wall, cpu = time.perf_counter(), time.process_time()
            answer = await call(app, path, payload)
            samples[kind]["wall"].append(time.perf_counter() - wall)
            samples[kind]["cpu"].append(time.process_time() - cpu)
            samples[kind]["events"].append(check(answer))
    return {
        kind: {name: statistics.median(values) for name, values in found.items()}
        for kind, found in samples.items()
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    agent = Agent(id="bench", model=FunctionModel(stream_function=stream), tools=[remember])
    app = create_app(agent, db=InMemoryDb(), mcp=False)
    async with app.router.lifespan_context(app):
        result = await measure(app, args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    native, agui = result["native"], result["agui"]
    print(f"{args.runs} runs each, medians\n")
    print("| Measurement | POST .../runs (SSE) | POST .../agui | AG-UI adds |")
    print("|---|---|---|---|")
    for name, label in (("wall", "Wall time per run (µs)"), ("cpu", "CPU per run (µs)")):
        a, b = native[name] * 1e6, agui[name] * 1e6
        print(f"| {label} | {a:,.0f} | {b:,.0f} | {b - a:,.0f} |")
    print(f"| Events per run | {native['events']:.0f} | {agui['events']:.0f} | - |")


if __name__ == "__main__":
    asyncio.run(main())
