"""The running-agents guide's first example — Claude with HackerNewsTools — unchanged.

Only the environment differs: ``ANTHROPIC_BASE_URL`` points at llama.cpp's ``llama-server``
(which speaks the Anthropic Messages API) and ``HACKERNEWS_API_BASE_URL`` at a local server
that serves the Hacker News API's JSON shapes. The model is SmolLM2-135M: the check is that the
run completes with content and usage through the official SDK, not the quality of the report.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pilothouse.agent import Agent, RunOutput, RunStatus
from pilothouse.models.anthropic import Claude
from pilothouse.tools.hackernews import HackerNewsTools

pytestmark = pytest.mark.integration

STORIES = {1: "A startup ships a pilothouse", 2: "Sailing boats and agents"}


class _HackerNewsAPI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/v0/topstories.json":
            body: object = list(STORIES)
        elif self.path.startswith("/v0/item/"):
            story = int(self.path.removeprefix("/v0/item/").removesuffix(".json"))
            body = {"id": story, "title": STORIES.get(story), "by": "ada", "score": 10, "time": 0}
        else:
            body = None
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hackernews_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HackerNewsAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v0"
    finally:
        server.shutdown()
        server.server_close()


def test_run_method(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    llama_server: str,
    hackernews_api: str,
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llama_server)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-local")
    monkeypatch.setenv("HACKERNEWS_API_BASE_URL", hackernews_api)

    agent = Agent(
        model=Claude(id="claude-sonnet-4-5"),
        tools=[HackerNewsTools()],
        instructions="Write a report on the topic.",
        markdown=True,
    )

    # Run and get response
    response: RunOutput = agent.run("Trending startups")
    print(response.content)

    assert response.status == RunStatus.completed, response.content
    assert response.content and capsys.readouterr().out.strip()
    assert response.model == "claude-sonnet-4-5" and response.model_provider == "anthropic"
    assert response.metrics.input_tokens > 0 and response.metrics.output_tokens > 0
    # Whatever the tiny model chose, any tool call it made reached the local API.
    for execution in response.tools:
        assert execution.tool_name in {
            "get_top_hackernews_stories",
            "get_story_details",
            "get_user_details",
        }
