"""For the AG-UI and playground tests: a ``pilothouse serve`` process of ``agui_agents.py``,
AG-UI streams read back into the protocol's own types, and the distribution's Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from serve_kit import KEY, Server, base_env, stop
from serve_kit import _wait_ready as wait_ready
from serverkit import free_port, unavailable

APP = Path(__file__).with_name("agui_agents.py")
CHROMIUM = Path("/usr/bin/chromium")
# Offline, quiet, headless: no network of the browser's own, no sandbox (tests may run as
# root in a container), no GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def serving(tmp_path: Path, *, demo: bool = False) -> Iterator[Server]:
    """``pilothouse serve`` of ``agui_agents.py`` on a fresh SQLite file with auth on, or
    ``pilothouse serve --demo``."""
    port = free_port()
    command = [sys.executable, "-m", "pilothouse.cli", "serve"]
    command += ["--demo"] if demo else [f"{APP}:app"]
    command += ["--port", str(port)]
    env = {} if demo else base_env(f"sqlite:{tmp_path / 'agui.db'}")
    log_path = tmp_path / f"server-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(server, 60)
        yield server
    finally:
        stop(server)


def run_input(thread_id: str, text: str | None = None, **fields: Any) -> dict[str, Any]:
    """A RunAgentInput (its JSON) with ``text`` as the user's message."""
    from ag_ui.core import RunAgentInput, UserMessage

    messages = [UserMessage(id=uuid.uuid4().hex, content=text)] if text is not None else []
    value = RunAgentInput(
        thread_id=thread_id,
        run_id=uuid.uuid4().hex,
        messages=messages,
        tools=[],
        context=[],
        **fields,
    )
    dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True)
    return dumped


def parse_events(body: str) -> list[Any]:
    """The AG-UI events of an SSE body, as the protocol's own event types."""
    from ag_ui.core import Event
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(Event)
    events = []
    for frame in body.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(
            line[5:].removeprefix(" ") for line in frame.split("\n") if line.startswith("data:")
        )
        if data:
            events.append(adapter.validate_json(data))
    return events


def agui(
    client: httpx.Client, body: dict[str, Any], path: str = "/agents/assistant/agui"
) -> list[Any]:
    """POST an AG-UI request; its events (the request must succeed)."""
    answer = client.post(path, json=body, headers={"Accept": "text/event-stream"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    return parse_events(answer.text)


def types(events: list[Any]) -> list[str]:
    """The event types, in order."""
    return [event.type.value for event in events]


def check_run_discipline(events: list[Any], known_calls: set[str] | None = None) -> None:
    """Assert the rules a consumer enforces on one run's stream: RUN_STARTED first, one
    RUN_FINISHED or RUN_ERROR last; every message, reasoning span and tool call opened before
    it is continued, and closed before the run ends; results only for calls that exist."""
    names = types(events)
    assert names[0] == "RUN_STARTED", names
    assert names[-1] in ("RUN_FINISHED", "RUN_ERROR"), names
    assert (
        names.count("RUN_STARTED") == 1
        and names.count("RUN_FINISHED") + names.count("RUN_ERROR") == 1
    ), names
    calls = set(known_calls or ())
    open_sets: dict[str, set[str]] = {
        "text": set(),
        "span": set(),
        "reasoning": set(),
        "call": set(),
    }
    opens = {
        "TEXT_MESSAGE_START": "text",
        "REASONING_START": "span",
        "REASONING_MESSAGE_START": "reasoning",
        "TOOL_CALL_START": "call",
    }
    continues = {
        "TEXT_MESSAGE_CONTENT": "text",
        "REASONING_MESSAGE_CONTENT": "reasoning",
        "TOOL_CALL_ARGS": "call",
    }
    closes = {
        "TEXT_MESSAGE_END": "text",
        "REASONING_END": "span",
        "REASONING_MESSAGE_END": "reasoning",
        "TOOL_CALL_END": "call",
    }
    for event, name in zip(events, names, strict=True):
        key = getattr(event, "tool_call_id", None) or getattr(event, "message_id", None)
        if name in opens:
            assert key not in open_sets[opens[name]], f"{name} reopens {key}"
            open_sets[opens[name]].add(key)
            if name == "TOOL_CALL_START":
                calls.add(key)
        elif name in continues:
            assert key in open_sets[continues[name]], f"{name} for {key}, which is not open"
        elif name in closes:
            assert key in open_sets[closes[name]], f"{name} closes {key}, which is not open"
            open_sets[closes[name]].discard(key)
        elif name == "TOOL_CALL_RESULT":
            assert event.tool_call_id in calls, f"a result for an unknown call {event.tool_call_id}"
    assert not any(open_sets.values()), f"left open at the end: {open_sets}"


def chromium() -> str:
    """The distribution's Chromium (``apt-get install chromium``; ``make test`` installs it)."""
    if not CHROMIUM.exists():
        found = shutil.which("chromium")
        if found is None:
            unavailable(
                "Chromium is not installed: apt-get install -y chromium (make test installs it)"
            )
        return found
    return str(CHROMIUM)


__all__ = [
    "CHROMIUM_ARGS",
    "KEY",
    "agui",
    "check_run_discipline",
    "chromium",
    "parse_events",
    "run_input",
    "serving",
    "types",
]
