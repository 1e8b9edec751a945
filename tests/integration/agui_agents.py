"""The app the AG-UI and playground tests serve (``pilothouse serve <this file>:app``).

The model is a FunctionModel that acts on the user's message, so that each test picks a run's
behaviour with its message:

- ``words N DELAY``: answer with N words, DELAY seconds apart (a long, steady stream);
- ``markdown``: a streamed answer in markdown (bold, code, a list);
- ``weather CITY``: reason, say so, call ``get_weather`` (which keeps the city in the session
  state), then answer from its result;
- ``confirm``: call ``delete_logs``, which needs confirmation (the run pauses);
- ``hitl``: call ``delete_logs``, ``send_report`` (asks the user for ``to``) and ``run_shell``
  (executed by the client) at once;
- ``Plan my day in CITY`` and ``Book a table ...``: the scene of the README's screenshot (a
  tool call, a markdown answer, a call waiting for approval);
- ``fail``: the model fails (the run ends with ERROR);
- anything else: ``echo: <message>``.

A second agent, ``helper``, always answers ``helper here``. Configured by environment like
``served_agents.py``: ``SERVE_TEST_DB`` (``sqlite:<file>``), ``SERVE_TEST_AUTH=1`` (the
security key ``SERVE_TEST_KEY`` and HS256 JWTs signed with ``SERVE_TEST_JWT_SECRET``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pilothouse import Agent, tool
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import ToolCall
from pilothouse.models.base import ModelDelta
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.serve import JWTConfig, create_app


async def get_weather(city: str, session_state: dict[str, Any]) -> str:
    """Get the current weather for a city."""
    await asyncio.sleep(0.05)
    session_state["last_city"] = city
    session_state["lookups"] = int(session_state.get("lookups", 0)) + 1
    return f"Sunny and 21°C in {city}"


@tool(requires_confirmation=True)
def delete_logs(table: str) -> str:
    """Delete every row of a logs table."""
    return f"deleted all rows of {table}"


@tool(requires_user_input=True, user_input_fields=["to"])
def send_report(title: str, to: str) -> str:
    """Send a report by email."""
    return f"sent {title!r} to {to}"


@tool(requires_confirmation=True)
def book_table(restaurant: str, people: int) -> str:
    """Book a table at a restaurant."""
    return f"Booked a table for {people} at {restaurant}."


@tool(external_execution=True)
def run_shell(command: str) -> str:
    """Run a shell command on the user's machine."""
    raise AssertionError("executed by the client")


def _since_last_user(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index].text(), list(messages[index + 1 :])
    return "", []


async def behave(messages: list[Message], tools: list[Any]) -> AsyncIterator[Any]:
    """The model's turn, chosen by the user's message."""
    text, after = _since_last_user(messages)
    results = [m.text() for m in after if m.role == "tool"]
    words = text.split()
    if words[:1] == ["words"] and len(words) == 3:
        for index in range(int(words[1])):
            await asyncio.sleep(float(words[2]))
            yield f"w{index} "
    elif text == "markdown":
        for piece in ("Here is **bold** text", " and `code`:\n\n", "- one\n", "- two\n"):
            await asyncio.sleep(0.05)
            yield piece
    elif words[:1] == ["weather"] and len(words) == 2:
        if not results:
            yield ModelDelta(reasoning="The user wants the weather; ")
            yield ModelDelta(reasoning="I will look it up.")
            yield "Let me look that up. "
            yield ToolCall(name="get_weather", arguments={"city": words[1]})
        else:
            yield f"The forecast: {results[-1]}."
    elif text == "confirm":
        if not results:
            yield ToolCall(name="delete_logs", arguments={"table": "logs"})
        else:
            yield f"result: {results[-1]}"
    elif text == "hitl":
        if not results:
            yield ToolCall(name="delete_logs", arguments={"table": "audit"})
            yield ToolCall(name="send_report", arguments={"title": "weekly"})
            yield ToolCall(name="run_shell", arguments={"command": "uptime"})
        else:
            yield "done: " + " | ".join(results)
    elif text.startswith("Plan my day in "):
        city = words[-1]
        if not results:
            yield ModelDelta(reasoning="A good plan depends on the weather; I will check it.")
            yield "Let me check the weather first."
            yield ToolCall(name="get_weather", arguments={"city": city})
        else:
            for piece in (
                f"It is **{results[-1].split(' in ')[0].lower()}** in {city}, so:\n\n".replace(
                    "°c", "°C"
                ),
                "1. *Morning*: a walk along the river\n",
                "2. *Lunch*: a terrace, in the sun\n",
                "3. *Evening*: dinner at `Chez Lou`, if you want me to book it\n",
            ):
                await asyncio.sleep(0.02)
                yield piece
    elif text.startswith("Book a table"):
        if not results:
            yield ToolCall(name="book_table", arguments={"restaurant": "Chez Lou", "people": 2})
        else:
            yield results[-1]
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
    from pilothouse.db import InMemoryDb

    return InMemoryDb()


def _auth() -> dict[str, Any]:
    if os.environ.get("SERVE_TEST_AUTH") != "1":
        return {}
    return {
        "security_key": os.environ["SERVE_TEST_KEY"],
        "jwt": JWTConfig(key=os.environ["SERVE_TEST_JWT_SECRET"], algorithms=["HS256"]),
    }


assistant = Agent(
    id="assistant",
    name="Assistant",
    model=FunctionModel(stream_function=behave),
    tools=[get_weather, delete_logs, send_report, run_shell, book_table],
    instructions="Help.",
    markdown=True,
)
helper = Agent(
    id="helper", name="Helper", model=FunctionModel(lambda messages, tools: "helper here")
)
app = create_app(agents=[assistant, helper], db=_db(), keepalive=1.0, **_auth())
