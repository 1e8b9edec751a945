"""HackerNewsTools against a real HTTP server on loopback that serves the API's JSON shapes."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pilothouse import Agent
from pilothouse.models.test import TestModel
from pilothouse.tools.hackernews import (
    BASE_URL_ENV_VAR,
    DEFAULT_BASE_URL,
    HackerNewsError,
    HackerNewsTools,
)

TOP_IDS = [101, 102, 103, 104, 105]


def _story(item_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "by": f"author{item_id}",
        "descendants": item_id % 7,
        "id": item_id,
        "kids": [item_id * 10 + k for k in range(item_id % 4)],
        "score": item_id * 2,
        "time": 1_700_000_000 + item_id,
        "title": f"Story number {item_id}",
        "type": "story",
        "url": f"https://example.org/{item_id}",
        **extra,
    }


def _routes() -> dict[str, Route]:
    routes = {"/v0/topstories.json": Route(body=TOP_IDS)}
    for item_id in TOP_IDS:
        routes[f"/v0/item/{item_id}.json"] = Route(body=_story(item_id))
    routes["/v0/item/200.json"] = Route(
        body={
            "by": "asker",
            "id": 200,
            "kids": [201, 202, 203],
            "descendants": 5,
            "score": 42,
            "text": "How do you test <i>network</i> code?",
            "time": 1_700_000_200,
            "title": "Ask HN: Testing tips?",
            "type": "story",
        }
    )
    routes["/v0/item/998.json"] = Route(body={"id": 998, "deleted": True, "time": 1_700_000_998})
    routes["/v0/item/500.json"] = Route(status=500, body={"error": "boom"})
    routes["/v0/user/alice.json"] = Route(
        body={
            "about": "Builds <b>things</b>.",
            "created": 1_600_000_000,
            "id": "alice",
            "karma": 1234,
            "submitted": [101, 102, 150],
        }
    )
    return routes


@dataclass
class Route:
    status: int = 200
    body: Any = None
    raw: bytes | None = None  # sent as is instead of the JSON of ``body``
    delay: float = 0.0


@dataclass
class FakeApi:
    """What the server serves and what it saw; tests change ``routes`` freely."""

    base_url: str
    routes: dict[str, Route]
    requests: list[str] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def item_requests(self) -> list[str]:
        return [p for p in self.requests if p.startswith("/v0/item/")]


class _Server(ThreadingHTTPServer):
    api: FakeApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that gave up (the timeout test) leave a broken pipe behind: not a failure.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, as the real API: a client that reused a connection from another event
    # loop would fail here, where HTTP/1.0 would hide it behind a fresh connection each time.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        api = self.server.api
        with api.lock:
            api.requests.append(self.path)
            api.in_flight += 1
            api.peak_in_flight = max(api.peak_in_flight, api.in_flight)
        try:
            route = api.routes.get(self.path)
            if route is None:
                # Like Firebase: an unknown item or user is a 200 with `null`.
                known = self.path.startswith(("/v0/item/", "/v0/user/"))
                route = Route(body=None) if known else Route(status=404, body={"error": "?"})
            if route.delay:
                time.sleep(route.delay)
            data = route.raw if route.raw is not None else json.dumps(route.body).encode()
            self.send_response(route.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            with api.lock:
                api.in_flight -= 1

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = _Server(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.api = FakeApi(base_url=f"http://127.0.0.1:{port}/v0", routes=_routes())
    # A short poll interval: shutdown() waits for the next poll, 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the toolkit itself ----------------------------------------------------------------------


def test_toolkit_name_tools_and_flags() -> None:
    kit = HackerNewsTools(base_url="http://127.0.0.1:1/v0")
    assert kit.name == "hackernews"
    assert [f.name for f in kit.functions] == [
        "get_top_hackernews_stories",
        "get_story_details",
        "get_user_details",
    ]
    only_users = HackerNewsTools(get_top_stories=False, get_story_details=False)
    assert [f.name for f in only_users.functions] == ["get_user_details"]
    assert HackerNewsTools(get_user_details=False, get_story_details=False).functions[0].name == (
        "get_top_hackernews_stories"
    )


def test_schemas_the_model_sees() -> None:
    by_name = {f.name: f for f in HackerNewsTools().functions}
    top = by_name["get_top_hackernews_stories"]
    assert top.parameters["properties"]["num_stories"]["type"] == "integer"
    assert top.parameters["properties"]["num_stories"]["default"] == 10
    assert "required" not in top.parameters
    assert by_name["get_story_details"].parameters["required"] == ["story_id"]
    assert by_name["get_user_details"].parameters["required"] == ["username"]
    # The Args section feeds the parameter descriptions, not the tool description.
    assert "Args:" not in (top.description or "")
    assert "top stories on Hacker News" in (top.description or "")


def test_invalid_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        HackerNewsTools(timeout=0)
    with pytest.raises(ValueError, match="max_stories must be at least 1"):
        HackerNewsTools(max_stories=0)


def test_base_url_default_env_var_and_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV_VAR, raising=False)
    assert HackerNewsTools().base_url == DEFAULT_BASE_URL == "https://hacker-news.firebaseio.com/v0"
    monkeypatch.setenv(BASE_URL_ENV_VAR, "http://mirror.test/v0/")
    assert HackerNewsTools().base_url == "http://mirror.test/v0"
    assert HackerNewsTools(base_url="http://explicit.test/v0").base_url == "http://explicit.test/v0"
    monkeypatch.setenv(BASE_URL_ENV_VAR, "")
    assert HackerNewsTools().base_url == DEFAULT_BASE_URL


def test_httpx_is_not_imported_until_a_tool_runs() -> None:
    code = (
        "import sys\n"
        "from pilothouse.tools.hackernews import HackerNewsTools\n"
        "kit = HackerNewsTools()\n"
        "kit.functions[0].definition\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


# --- the tools, against the local server -----------------------------------------------------


async def test_top_stories(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    stories = json.loads(await kit.get_top_hackernews_stories(3))
    assert stories == [
        {
            "id": i,
            "title": f"Story number {i}",
            "url": f"https://example.org/{i}",
            "score": i * 2,
            "by": f"author{i}",
            "time": 1_700_000_000 + i,
            "descendants": i % 7,
        }
        for i in (101, 102, 103)
    ]
    assert api.requests[0] == "/v0/topstories.json"
    assert sorted(api.item_requests()) == [f"/v0/item/{i}.json" for i in (101, 102, 103)]


async def test_top_stories_items_are_fetched_concurrently(api: FakeApi) -> None:
    for item_id in TOP_IDS:
        api.routes[f"/v0/item/{item_id}.json"].delay = 0.3
    kit = HackerNewsTools(base_url=api.base_url)
    started = time.perf_counter()
    stories = json.loads(await kit.get_top_hackernews_stories(5))
    elapsed = time.perf_counter() - started
    assert [s["id"] for s in stories] == TOP_IDS  # the API's order, not completion order
    assert api.peak_in_flight >= 2
    assert elapsed < 5 * 0.3  # one after the other would take at least 1.5 s


async def test_num_stories_is_clamped(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url, max_stories=2)
    assert [s["id"] for s in json.loads(await kit.get_top_hackernews_stories(50))] == [101, 102]
    assert len(api.item_requests()) == 2
    assert [s["id"] for s in json.loads(await kit.get_top_hackernews_stories(0))] == [101]
    assert [s["id"] for s in json.loads(await kit.get_top_hackernews_stories(-4))] == [101]
    assert len(api.item_requests()) == 4


async def test_top_stories_skip_null_and_deleted_items(api: FakeApi) -> None:
    api.routes["/v0/topstories.json"] = Route(body=[101, 999, 998, 102, 200])
    kit = HackerNewsTools(base_url=api.base_url)
    stories = json.loads(await kit.get_top_hackernews_stories(5))
    assert [s["id"] for s in stories] == [101, 102, 200]
    assert stories[2]["url"] is None  # an "Ask HN" post has no url


async def test_top_stories_list_error(api: FakeApi) -> None:
    api.routes["/v0/topstories.json"] = Route(status=503, body={"error": "down"})
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError, match=r"HTTP 503 .*topstories\.json") as info:
        await kit.get_top_hackernews_stories(3)
    assert info.value.status_code == 503
    assert api.item_requests() == []


async def test_top_stories_item_error_is_raised_after_the_others_finish(api: FakeApi) -> None:
    api.routes["/v0/topstories.json"] = Route(body=[101, 500, 102])
    api.routes["/v0/item/102.json"].delay = 0.2
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError, match=r"HTTP 500 .*item/500\.json"):
        await kit.get_top_hackernews_stories(3)
    # The slow item was still fetched to the end, not cut off by the client closing.
    assert "/v0/item/102.json" in api.requests
    assert api.in_flight == 0


async def test_story_details(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    details = json.loads(await kit.get_story_details(200))
    assert details == {
        "id": 200,
        "type": "story",
        "title": "Ask HN: Testing tips?",
        "url": None,
        "text": "How do you test <i>network</i> code?",
        "score": 42,
        "by": "asker",
        "time": 1_700_000_200,
        "descendants": 5,
        "kids_count": 3,
    }
    assert api.requests == ["/v0/item/200.json"]


async def test_story_details_of_a_deleted_item_says_so(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    details = json.loads(await kit.get_story_details(998))
    assert details["deleted"] is True
    assert details["kids_count"] == 0
    assert "dead" not in details


async def test_story_details_unknown_id(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError, match="no Hacker News item with id 999"):
        await kit.get_story_details(999)


async def test_story_details_http_500(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError) as info:
        await kit.get_story_details(500)
    assert str(info.value) == (
        f"Hacker News API returned HTTP 500 Internal Server Error for {api.base_url}/item/500.json"
    )
    assert info.value.status_code == 500


async def test_invalid_json_is_reported(api: FakeApi) -> None:
    api.routes["/v0/item/7.json"] = Route(raw=b"<html>not json</html>")
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError, match=r"invalid JSON for .*item/7\.json"):
        await kit.get_story_details(7)


async def test_user_details(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    assert json.loads(await kit.get_user_details("alice")) == {
        "id": "alice",
        "karma": 1234,
        "created": 1_600_000_000,
        "about": "Builds <b>things</b>.",
        "submitted_count": 3,
    }
    assert api.requests == ["/v0/user/alice.json"]


async def test_unknown_user(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError, match="no Hacker News user named 'ghost'"):
        await kit.get_user_details("ghost")


async def test_username_cannot_reach_another_path(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    with pytest.raises(HackerNewsError, match="no Hacker News user named"):
        await kit.get_user_details("../topstories")
    assert api.requests == ["/v0/user/..%2Ftopstories.json"]
    with pytest.raises(HackerNewsError, match="cannot be empty"):
        await kit.get_user_details("   ")
    assert len(api.requests) == 1


async def test_env_var_points_the_toolkit_at_the_server(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BASE_URL_ENV_VAR, api.base_url)
    kit = HackerNewsTools()
    assert kit.base_url == api.base_url
    assert json.loads(await kit.get_user_details("alice"))["karma"] == 1234
    assert api.requests == ["/v0/user/alice.json"]


async def test_unreachable_server_fails_quickly_with_a_clear_message() -> None:
    base = f"http://127.0.0.1:{_free_port()}/v0"
    kit = HackerNewsTools(base_url=base, timeout=2.0)
    started = time.perf_counter()
    with pytest.raises(HackerNewsError, match=r"^Hacker News API unreachable at ") as info:
        await kit.get_top_hackernews_stories(3)
    assert f"{base}/topstories.json: " in str(info.value)
    assert info.value.status_code is None
    assert time.perf_counter() - started < 2.0


async def test_slow_server_times_out(api: FakeApi) -> None:
    api.routes["/v0/user/alice.json"].delay = 2.0
    kit = HackerNewsTools(base_url=api.base_url, timeout=0.2)
    started = time.perf_counter()
    with pytest.raises(HackerNewsError, match=r"user/alice\.json did not answer within 0\.2 s"):
        await kit.get_user_details("alice")
    assert time.perf_counter() - started < 1.5


def test_one_toolkit_works_on_several_event_loops(api: FakeApi) -> None:
    kit = HackerNewsTools(base_url=api.base_url)
    first = asyncio.run(kit.get_story_details(101))
    second = asyncio.run(kit.get_story_details(101))
    assert first == second
    assert json.loads(first)["title"] == "Story number 101"


async def test_model_arguments_go_through_validation(api: FakeApi) -> None:
    by_name = {f.name: f for f in HackerNewsTools(base_url=api.base_url).functions}
    # A model sends JSON text; "102" is converted to the annotated int.
    result = await by_name["get_story_details"].acall('{"story_id": "102"}')
    assert json.loads(result)["title"] == "Story number 102"
    stories = await by_name["get_top_hackernews_stories"].acall({"num_stories": 2})
    assert [s["id"] for s in json.loads(stories)] == [101, 102]


# --- through an agent run --------------------------------------------------------------------


def test_agent_run_calls_the_tool_and_sees_the_titles(api: FakeApi) -> None:
    agent = Agent(
        model=TestModel(call_tools=["get_top_hackernews_stories"]),
        tools=[HackerNewsTools(base_url=api.base_url)],
    )
    output = agent.run("What is on Hacker News?")
    assert output.tools is not None
    assert len(output.tools) == 1
    execution = output.tools[0]
    assert execution.tool_name == "get_top_hackernews_stories"
    assert not execution.tool_call_error
    assert isinstance(execution.result, str)
    for item_id in TOP_IDS:  # the default of 10, cut short by the 5 the server lists
        assert f"Story number {item_id}" in execution.result
    assert "Story number 101" in (output.content or "")


def test_agent_run_reports_an_unreachable_api_to_the_model() -> None:
    base = f"http://127.0.0.1:{_free_port()}/v0"
    agent = Agent(
        model=TestModel(call_tools=["get_top_hackernews_stories"]),
        tools=[HackerNewsTools(base_url=base, timeout=2.0)],
    )
    output = agent.run("What is on Hacker News?")
    assert output.tools is not None
    execution = output.tools[0]
    assert execution.tool_call_error
    assert "HackerNewsError: Hacker News API unreachable at " in str(execution.result)
