"""The app the serve integration tests run under uvicorn (``pilothouse serve <this file>:app``).

The model is a FunctionModel that acts on the user's message, so that each test picks a run's
behaviour with its message:

- ``words N DELAY``: answer with N words, DELAY seconds apart (a long, steady stream);
- ``steps N DELAY``: call the ``step`` tool N times (each waits DELAY), then answer;
- ``confirm``: call ``delete_logs``, which needs confirmation (the run pauses);
- ``fail``: the model fails (the run ends with ERROR);
- anything else: ``echo: <message>``.

Configured by environment: ``SERVE_TEST_DB`` (``sqlite:<file>`` or
``postgres:<url>|<schema>|<prefix>``), ``SERVE_TEST_AUTH=1`` (security key
``SERVE_TEST_KEY`` and HS256 JWTs signed with ``SERVE_TEST_JWT_SECRET``), and settings
``SERVE_TEST_GRACE``, ``SERVE_TEST_DRAIN``, ``SERVE_TEST_MAX_RUNS``, ``SERVE_TEST_MAX_FILES``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pilothouse import Agent, tool
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.serve import JWTConfig, create_app


async def step(index: int, delay: float) -> str:
    """One step of a long task."""
    await asyncio.sleep(delay)
    return f"step {index} done"


@tool(requires_confirmation=True)
def delete_logs(table: str) -> str:
    """Delete every row of a logs table."""
    return f"deleted all rows of {table}"


def _since_last_user(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index].text(), list(messages[index + 1 :])
    return "", []


async def behave(messages: list[Message], tools: list[Any]) -> AsyncIterator[str | ToolCall]:
    """The model's turn, chosen by the user's message."""
    text, after = _since_last_user(messages)
    results = [m for m in after if m.role == "tool"]
    words = text.split()
    if words[:1] == ["words"] and len(words) == 3:
        for index in range(int(words[1])):
            await asyncio.sleep(float(words[2]))
            yield f"w{index} "
    elif words[:1] == ["steps"] and len(words) == 3:
        if len(results) < int(words[1]):
            yield ToolCall(name="step", arguments={"index": len(results), "delay": float(words[2])})
        else:
            yield f"finished {words[1]} steps"
    elif text == "confirm":
        if not results:
            yield ToolCall(name="delete_logs", arguments={"table": "logs"})
        else:
            yield f"result: {results[-1].text()}"
    elif text == "fail":
        raise ModelProviderError("the model is down", status_code=400)
    else:
        yield f"echo: {text}"


def _db() -> Any:
    spec = os.environ.get("SERVE_TEST_DB", "")
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        from pilothouse.db import SqliteDb

        return SqliteDb(where)
    if kind == "postgres":
        from pilothouse.db import PostgresDb

        url, schema, prefix = where.split("|")
        return PostgresDb(url, schema=schema, table_prefix=prefix)
    from pilothouse.db import InMemoryDb

    return InMemoryDb()


def _auth() -> dict[str, Any]:
    if os.environ.get("SERVE_TEST_AUTH") != "1":
        return {}
    return {
        "security_key": os.environ["SERVE_TEST_KEY"],
        "jwt": JWTConfig(key=os.environ["SERVE_TEST_JWT_SECRET"], algorithms=["HS256"]),
    }


def _settings() -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for env, name, kind in (
        ("SERVE_TEST_GRACE", "disconnect_grace", float),
        ("SERVE_TEST_DRAIN", "drain_timeout", float),
        ("SERVE_TEST_MAX_RUNS", "max_concurrent_runs", int),
        ("SERVE_TEST_MAX_FILES", "max_files", int),
        ("SERVE_TEST_MAX_BODY", "max_body_bytes", int),
    ):
        if os.environ.get(env):
            settings[name] = kind(os.environ[env])
    return settings


assistant = Agent(
    id="assistant",
    name="Assistant",
    model=FunctionModel(stream_function=behave),
    tools=[step, delete_logs],
    instructions="Help.",
)
app = create_app(agents=[assistant], db=_db(), keepalive=1.0, **_auth(), **_settings())
