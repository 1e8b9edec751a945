"""The app in-process (httpx's ASGI transport): configuration, request checks, limits, CORS,
structured input, and the error shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from pilothouse import Agent
from pilothouse.db import InMemoryDb
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.serve import ServeSettings, create_app


class Order(BaseModel):
    item: str
    count: int


@pytest.fixture
def serve() -> Callable[..., Any]:
    """Opens an httpx client on a created app (with its lifespan running)."""

    def opener(app: FastAPI) -> Any:
        class Opened:
            async def __aenter__(self) -> httpx.AsyncClient:
                self.lifespan = app.router.lifespan_context(app)
                await self.lifespan.__aenter__()
                self.client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                )
                return self.client

            async def __aexit__(self, *exc: object) -> None:
                await self.client.aclose()
                await self.lifespan.__aexit__(None, None, None)

        return Opened()

    return opener


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(TypeError, match="agents must be"):
        create_app([])
    with pytest.raises(TypeError, match="agents must be"):
        create_app(["not an agent"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="served as 'helper'"):
        create_app([Agent(name="Helper", model=TestModel()), Agent(id="helper", model=TestModel())])
    with pytest.raises(ValueError, match="different session stores"):
        create_app([Agent(id="a", db=InMemoryDb()), Agent(id="b", db=InMemoryDb())])
    with pytest.raises(ValueError, match="other than db"):
        create_app(Agent(db=InMemoryDb()), db=InMemoryDb())
    with pytest.raises(TypeError, match="unknown argument 'max_runs'"):
        create_app(Agent(), max_runs=3)
    with pytest.raises(ValueError, match="max_body_bytes"):
        ServeSettings(max_body_bytes=-1)


def test_agents_are_served_as_copies_with_stable_ids() -> None:
    store = InMemoryDb()
    named = Agent(name="Weather Bot!", model=TestModel())
    unnamed = Agent(model=TestModel())
    app = create_app([named, unnamed], db=store)
    served = app.state.pilothouse.agents
    assert list(served) == ["weather-bot", "agent-2"]
    assert served["weather-bot"] is not named and served["weather-bot"].db is store
    assert named.db is None  # the caller's agent is left as it was


async def test_structured_input_and_a_run_option_error(serve: Callable[..., Any]) -> None:
    agent = Agent(id="orders", model=TestModel(text="ok"), input_schema=Order)
    async with serve(create_app(agent)) as client:
        ok = await client.post(
            "/agents/orders/runs", json={"message": {"item": "tea", "count": 2}, "stream": False}
        )
        assert ok.status_code == 200 and ok.json()["input"]["input_content"] == {
            "item": "tea",
            "count": 2,
        }
        as_text = await client.post(
            "/agents/orders/runs", data={"message": '{"item": "tea", "count": 1}', "stream": "0"}
        )
        assert as_text.json()["status"] == "COMPLETED"
        wrong = await client.post("/agents/orders/runs", json={"message": {"item": "tea"}})
        assert wrong.status_code == 422 and wrong.json()["field"] == "message"
        assert "count" in wrong.json()["detail"]
        text = await client.post("/agents/orders/runs", json={"message": "two teas"})
        assert text.status_code == 422 and text.json()["field"] == "message"


async def test_body_limit_with_and_without_content_length(serve: Callable[..., Any]) -> None:
    async with serve(create_app(Agent(model=TestModel()), max_body_bytes=1000)) as client:
        declared = await client.post("/agents/agent-1/runs", json={"message": "x" * 2000})
        assert declared.status_code == 413 and "1000 bytes" in declared.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"message": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        chunked = await client.post(
            "/agents/agent-1/runs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413
        small = await client.post("/agents/agent-1/runs", json={"message": "hi", "stream": False})
        assert small.status_code == 200


async def test_cors_only_for_configured_origins(serve: Callable[..., Any]) -> None:
    app = create_app(Agent(model=TestModel()), cors_origins=["https://app.example"])
    async with serve(app) as client:
        preflight = await client.options(
            "/agents/agent-1/runs",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    async with serve(create_app(Agent(model=TestModel()))) as client:
        plain = await client.get("/health", headers={"Origin": "https://app.example"})
        assert "access-control-allow-origin" not in plain.headers


async def test_errors_are_json_with_a_field(serve: Callable[..., Any]) -> None:
    async with serve(create_app(Agent(model=TestModel()))) as client:
        unknown = await client.get("/nowhere")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "Not Found", "field": None}
        wrong_method = await client.delete("/agents")
        assert wrong_method.status_code == 405 and "detail" in wrong_method.json()
        bad_query = await client.get("/sessions", params={"page": "first"})
        assert bad_query.status_code == 422 and bad_query.json()["field"] == "page"
        bad_json = await client.post(
            "/agents/agent-1/runs", content=b"{", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 422 and "not valid JSON" in bad_json.json()["detail"]
        bad_tools = await client.post("/agents/agent-1/runs/r1/continue", json={"tools": "x"})
        assert bad_tools.status_code == 422 and bad_tools.json()["field"] == "tools"


async def test_stream_frames_in_process(serve: Callable[..., Any]) -> None:
    def answer(messages: list[Any], tools: list[Any]) -> str:
        return "fine, thanks"

    async with serve(create_app(Agent(id="a", model=FunctionModel(answer)))) as client:
        response = await client.post("/agents/a/runs", json={"message": "how are you?"})
        frames = [block for block in response.text.split("\n\n") if block.strip()]
        parsed = []
        for block in frames:
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            parsed.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
        assert [p[0] for p in parsed] == list(range(1, len(parsed) + 1))
        assert parsed[-1][1] == "RunCompleted" and parsed[-1][2]["content"] == "fine, thanks"
        assert all(p[1] == p[2]["event"] for p in parsed)
        quiet = await client.post("/agents/a/runs", json={"message": "hi", "stream_events": False})
        names = [line[7:] for line in quiet.text.splitlines() if line.startswith("event: ")]
        # Content only, then the end of the run, so that any follower knows it is over.
        assert names[:-1] and set(names[:-1]) == {"RunContent"}
        assert names[-1] == "RunCompleted"
        background = await client.post(
            "/agents/a/runs", json={"message": "later", "background": True, "stream": False}
        )
        assert background.status_code == 202 and background.json()["session_id"]
