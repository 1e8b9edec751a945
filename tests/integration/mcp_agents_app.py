"""Agents served over MCP for the tests: a FastAPI app mounting `create_mcp_app` twice, and the
agents themselves (also served over stdio by ``pilothouse mcp mcp_agents_app.py:echo``).

/mcp/   bearer-token auth ("Bearer ada-token" -> user "ada"), started with the app's lifespan
/open/  no auth, started by its first request (no lifespan wiring)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.requests import Request

from pilothouse import Agent
from pilothouse.db import InMemoryDb
from pilothouse.exceptions import ModelProviderError
from pilothouse.models.message import Message, ToolCall
from pilothouse.models.test import FunctionModel
from pilothouse.serve.mcp import create_mcp_app


def _echo(messages: list[Message], tools: list[Any]) -> str:
    return f"echo: {messages[-1].content}"


def _count_turns(messages: list[Message], tools: list[Any]) -> str:
    return f"turn {sum(1 for m in messages if m.role == 'user')}"


def _broken(messages: list[Message], tools: list[Any]) -> str:
    raise ModelProviderError("the model is down", status_code=400)


def _ask_who(messages: list[Message], tools: list[Any]) -> Any:
    if messages[-1].role == "tool":
        return f"you are {messages[-1].content}"
    return [ToolCall(name="who")]


def who(run_context: Any) -> str:
    """The user of this run."""
    return str(run_context.user_id)


echo = Agent(name="Echo", description="Repeats the message.", model=FunctionModel(_echo))
counter = Agent(
    name="counter",
    model=FunctionModel(_count_turns),
    db=InMemoryDb(),
    add_history_to_context=True,
)
broken = Agent(name="broken", model=FunctionModel(_broken))
whoami = Agent(name="whoami", model=FunctionModel(_ask_who), tools=[who])
AGENTS = [echo, counter, broken, whoami]


def authorize(request: Request) -> str | None:
    token = request.headers.get("authorization", "")
    return {"Bearer ada-token": "ada", "Bearer bob-token": "bob"}.get(token)


guarded = create_mcp_app(AGENTS, authorize=authorize)
open_endpoint = create_mcp_app(AGENTS, name="open")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with guarded.lifespan():
        yield


app = FastAPI(lifespan=lifespan)
app.mount("/mcp", guarded)
app.mount("/open", open_endpoint)


@app.get("/health")
def health() -> PlainTextResponse:
    return PlainTextResponse("ok")
