"""Serve an agent over HTTP: a streamed run, a background run followed and resumed, sessions.

`create_app` turns agents into a FastAPI app with the guide framework's routes. Serve it with
several workers on one database (resumes and cancels work across them):

    pilothouse serve examples/serve.py:app --port 8000 --workers 2

Run as a script, this file starts the app on a free loopback port in-process and talks to it
with httpx, the way any HTTP client would. The model is a FunctionModel, so no provider or
network is needed.
"""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pilothouse import Agent
from pilothouse.db import SqliteDb
from pilothouse.models import ToolCall
from pilothouse.models.test import FunctionModel
from pilothouse.serve import create_app


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny and 21°C in {city}"


def decide(messages: list[Any], tools: list[Any]) -> str | list[ToolCall]:
    """The model's turn: look the weather up, then answer from the tool's result."""
    if messages[-1].role == "tool":
        return f"Here is the forecast: {messages[-1].text()}."
    return [ToolCall(name="get_weather", arguments={"city": "Paris"})]


agent = Agent(
    id="weather",
    name="Weather",
    model=FunctionModel(decide),
    tools=[get_weather],
    instructions="Answer questions about the weather.",
)
# One database for every worker: sessions, runs, and the events that streams resume from.
db = SqliteDb(Path(tempfile.gettempdir()) / "pilothouse-serve-example.db")
app = create_app(agents=[agent], db=db)


def _sse(text: str) -> list[tuple[int, str, dict[str, Any]]]:
    """Parse SSE frames: (id, event name, data)."""
    frames = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            frames.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return frames


def main() -> None:
    import httpx
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        while not server.started:
            time.sleep(0.05)
        print("agents:", [a["id"] for a in client.get("/agents").json()])

        # A streamed run: SSE frames, each with an id.
        body = {"message": "Weather in Paris?", "user_id": "ada", "session_id": "trip"}
        answer = client.post("/agents/weather/runs", json=body)
        for seq, name, data in _sse(answer.text):
            detail = data.get("content") or (data.get("tool") or {}).get("tool_name") or ""
            print(f"  id {seq:>2}  {name:<20} {detail}")

        # A background run: 202 at once; its events can be read (and resumed) from any worker.
        accepted = client.post(
            "/agents/weather/runs",
            json={**body, "stream": False, "background": True},
        )
        run_id = accepted.json()["run_id"]
        print(f"background run accepted: HTTP {accepted.status_code}, run_id {run_id[:8]}...")
        events = client.get(f"/agents/weather/runs/{run_id}/events")
        frames = _sse(events.text)
        print("followed:", [name for _, name, _ in frames])
        resumed = client.get(
            f"/agents/weather/runs/{run_id}/events", headers={"Last-Event-ID": str(frames[2][0])}
        )
        print("resumed after id", frames[2][0], "->", [seq for seq, _, _ in _sse(resumed.text)])

        run = client.get(f"/agents/weather/runs/{run_id}").json()
        print("stored:", run["status"], "-", run["content"])
        sessions = client.get("/sessions", params={"user_id": "ada"}).json()
        print("sessions of ada:", sessions["meta"]["total_count"])
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main()
