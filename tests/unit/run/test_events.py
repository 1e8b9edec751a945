"""Every event class exists, carries the common fields, and round-trips through JSON by name."""

from __future__ import annotations

import json

import pytest

import pilothouse.agent as agent_module
from pilothouse.agent import (
    BaseRunEvent,
    RunEvent,
    ToolCallCompletedEvent,
    ToolExecution,
    event_from_dict,
    event_from_json,
)
from pilothouse.run.metrics import Metrics
from pilothouse.run.output import RunStatus

ALL_EVENT_CLASSES = [
    getattr(agent_module, f"{name.value}Event" if name.value != "CustomEvent" else "CustomEvent")
    for name in RunEvent
]


def test_every_run_event_value_has_a_class_named_after_it() -> None:
    assert len(ALL_EVENT_CLASSES) == len(RunEvent) == 27
    for cls, name in zip(ALL_EVENT_CLASSES, RunEvent, strict=True):
        assert issubclass(cls, BaseRunEvent)
        assert cls.event == name.value
        assert cls.__name__ in (f"{name.value}Event", "CustomEvent")


@pytest.mark.parametrize("cls", ALL_EVENT_CLASSES, ids=lambda c: c.__name__)
def test_every_event_round_trips_through_json(cls: type[BaseRunEvent]) -> None:
    event = cls(run_id="r1", session_id="s1", agent_id="a1", agent_name="pilot")
    data = json.loads(event.to_json())
    assert data["event"] == cls.event
    assert {"created_at", "agent_id", "agent_name", "run_id", "session_id"} <= data.keys()
    again = event_from_json(event.to_json())
    assert type(again) is cls
    assert again == event


def test_nested_tool_execution_and_metrics_are_rebuilt() -> None:
    event = ToolCallCompletedEvent(
        run_id="r",
        tool=ToolExecution(
            tool_name="add", tool_args={"a": 1}, result="3", metrics=Metrics(duration=0.5)
        ),
        content="3",
    )
    again = event_from_dict(json.loads(event.to_json()))
    assert isinstance(again, ToolCallCompletedEvent)
    assert isinstance(again.tool, ToolExecution)
    assert again.tool.tool_args == {"a": 1}
    assert again.tool.metrics == Metrics(duration=0.5)


def test_unknown_event_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event 'Nope'"):
        event_from_dict({"event": "Nope"})


def test_event_compares_equal_to_its_run_event_value() -> None:
    event = agent_module.RunContentEvent(content="x")
    assert event.event == RunEvent.run_content
    assert RunStatus.completed.value == "COMPLETED"
    assert RunStatus("ERROR") is RunStatus.error
