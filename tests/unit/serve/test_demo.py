"""``pilothouse serve --demo``: its agent and app, and the command's checks (the demo itself
runs in a browser test, tests/integration/test_playground_browser.py)."""

from __future__ import annotations

import subprocess
import sys


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pilothouse.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_demo_agent_runs_the_embedded_model_with_a_sample_tool() -> None:
    from pilothouse.models.llama_cpp import LlamaCpp
    from pilothouse.serve.demo import app, get_weather

    agent = app.state.pilothouse.agents["demo"]
    assert isinstance(agent.model, LlamaCpp)
    assert [view["name"] for view in app.state.pilothouse.agent_views["demo"]["tools"]] == [
        "get_weather"
    ]
    assert app.state.pilothouse.authenticator.enabled is False
    assert get_weather("Paris") == get_weather(" paris ".strip().title())
    assert get_weather("Paris").endswith("in Paris.")


def test_serve_needs_a_target_or_the_demo() -> None:
    done = serve()
    assert done.returncode == 2 and "or --demo" in done.stderr


def test_the_demo_listens_on_loopback_only_and_takes_no_target() -> None:
    done = serve("--demo", "--host", "0.0.0.0")
    assert done.returncode == 2 and "loopback only" in done.stderr
    done = serve("app:app", "--demo")
    assert done.returncode == 2 and "not both" in done.stderr
