"""store_events=True: a run keeps its events (all but content deltas) and stores them."""

from __future__ import annotations

from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.db import InMemoryDb
from pilothouse.exceptions import ModelProviderError
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.run.events import RunContentEvent, ToolCallCompletedEvent


def get_time(city: str) -> str:
    """The local time in a city.

    Args:
        city: The city.
    """
    return "12:00"


def names(events: Any) -> list[str]:
    return [e.event for e in events or ()]


def test_a_plain_run_keeps_its_lifecycle_events() -> None:
    out = Agent(model=TestModel(text="Noon."), tools=[get_time], store_events=True).run("Time?")
    assert names(out.events) == [
        "RunStarted",
        "ToolCallStarted",
        "ToolCallCompleted",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert not any(isinstance(e, RunContentEvent) for e in out.events or ())
    assert all(e.run_id == out.run_id for e in out.events or ())


def test_without_store_events_nothing_is_kept() -> None:
    out = Agent(model=TestModel(text="Noon."), tools=[get_time]).run("Time?")
    assert out.events is None


def test_streaming_shows_what_was_asked_and_keeps_the_rest() -> None:
    agent = Agent(model=TestModel(text="It is noon."), tools=[get_time], store_events=True)
    shown = list(agent.run("Time?", stream=True))
    # stream=True alone shows content only...
    assert shown and all(isinstance(e, RunContentEvent) for e in shown)
    out = agent.get_last_run_output()
    assert out is not None
    # ...while the run kept its lifecycle events.
    assert "ToolCallCompleted" in names(out.events)
    assert names(out.events)[-1] == "RunCompleted"


async def test_a_failed_run_keeps_its_error_event_and_the_store_has_them() -> None:
    def fail(messages: list[Message], tools: Any) -> str:
        raise ModelProviderError("provider down", status_code=400)

    db = InMemoryDb()
    agent = Agent(model=FunctionModel(fail), db=db, store_events=True)
    out = await agent.arun("Hi", session_id="e")
    assert out.status is RunStatus.error
    assert names(out.events) == ["RunStarted", "RunError"]

    stored = await agent.aget_run_output(out.run_id)
    assert stored is not None
    assert names(stored.events) == ["RunStarted", "RunError"]
    assert type(stored.events[-1]).__name__ == "RunErrorEvent"  # type: ignore[index]


async def test_stored_events_come_back_as_event_objects() -> None:
    db = InMemoryDb()
    agent = Agent(model=TestModel(text="Noon."), tools=[get_time], db=db, store_events=True)
    out = await agent.arun("Time?", session_id="e2")
    stored = await agent.aget_run_output(out.run_id)
    assert stored is not None and stored.events is not None
    completed = [e for e in stored.events if isinstance(e, ToolCallCompletedEvent)]
    assert completed and completed[0].tool is not None
    assert completed[0].tool.tool_name == "get_time"
    assert names(stored.events) == names(out.events)
