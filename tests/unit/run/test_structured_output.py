"""Structured output: output_schema on the Agent or per run, validation and retries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pydantic import BaseModel, Field

from pilothouse import Agent, RunStatus
from pilothouse.db import InMemoryDb
from pilothouse.models import ToolCall
from pilothouse.models.base import Model, ModelDelta, ModelRequest
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.run.events import RunCompletedEvent, RunContentEvent, RunErrorEvent


class Movie(BaseModel):
    title: str
    year: int = Field(description="Year of release")


class Person(BaseModel):
    name: str


class RequestRecorder(Model):
    """Answers with fixed text and keeps the requests it was sent."""

    provider = "recorder"

    def __init__(self, answer: str) -> None:
        self.id = "recorder"
        self.answer = answer
        self.requests: list[ModelRequest] = []

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        self.requests.append(request)
        for piece in (self.answer[:7], self.answer[7:]):
            yield ModelDelta(content=piece)


def test_agent_output_schema_gives_the_object() -> None:
    model = RequestRecorder('{"title": "Alien", "year": 1979}')
    out = Agent(model=model, output_schema=Movie).run("A film from 1979")

    assert out.status is RunStatus.completed
    assert out.content == Movie(title="Alien", year=1979)
    assert out.content_type == "Movie"
    assert model.requests[0].output_schema is Movie
    assert json.loads(out.get_content_as_string()) == {"title": "Alien", "year": 1979}


def test_run_output_schema_overrides_the_agent() -> None:
    model = RequestRecorder('{"name": "Ada"}')
    agent = Agent(model=model, output_schema=Movie)
    out = agent.run("Who?", output_schema=Person)
    assert out.content == Person(name="Ada")
    assert out.content_type == "Person"
    assert model.requests[0].output_schema is Person
    # Without an output_schema the content stays text.
    plain = Agent(model=RequestRecorder("just text")).run("Hi")
    assert plain.content == "just text" and plain.content_type == "str"


def test_test_model_makes_up_a_valid_object() -> None:
    out = Agent(model=TestModel(), output_schema=Movie).run("Any film")
    assert isinstance(out.content, Movie)


def test_json_in_a_code_fence_is_accepted() -> None:
    text = 'Here it is:\n```json\n{"title": "Heat", "year": 1995}\n```'
    out = Agent(model=RequestRecorder(text), output_schema=Movie).run("Heat")
    assert out.content == Movie(title="Heat", year=1995)


def test_validation_errors_go_back_to_the_model_and_it_retries() -> None:
    seen: list[list[Message]] = []

    def decide(messages: list[Message], tools: Any) -> str:
        seen.append(list(messages))
        if len(seen) == 1:
            return '{"title": "Up", "year": "two thousand nine"}'
        return '{"title": "Up", "year": 2009}'

    out = Agent(model=FunctionModel(decide), output_schema=Movie).run("Up")

    assert out.status is RunStatus.completed
    assert out.content == Movie(title="Up", year=2009)
    assert len(seen) == 2
    feedback = seen[1][-1]
    assert feedback.role == "user"
    assert "Movie" in feedback.text() and "year" in feedback.text()
    assert out.metrics.total_tokens > 0


def test_retries_run_out_and_the_run_fails_with_the_raw_text_kept() -> None:
    calls: list[int] = []

    def decide(messages: list[Message], tools: Any) -> str:
        calls.append(1)
        return "I would rather not answer in JSON."

    db = InMemoryDb()
    agent = Agent(model=FunctionModel(decide), output_schema=Movie, output_retries=1, db=db)
    events = list(agent.run("Film?", stream=True))
    out = agent.get_last_run_output()

    assert out is not None and out.status is RunStatus.error
    assert len(calls) == 2  # the first answer and one retry
    assert "does not match Movie" in out.content
    assert isinstance(events[-1], RunErrorEvent)
    assert out.messages[-1].role == "assistant"
    assert out.messages[-1].content == "I would rather not answer in JSON."
    stored = agent.get_run_output(out.run_id)
    assert stored is not None and stored.status is RunStatus.error


def test_streaming_structured_output_streams_partial_json() -> None:
    answer = '{"title": "Jaws", "year": 1975}'

    def stream(messages: list[Message], tools: Any) -> Any:
        for i in range(0, len(answer), 5):
            yield answer[i : i + 5]

    agent = Agent(model=FunctionModel(stream_function=stream), output_schema=Movie)
    events = list(agent.run("Jaws", stream=True, stream_events=True))

    deltas = [e.content for e in events if isinstance(e, RunContentEvent)]
    assert len(deltas) > 3
    assert "".join(deltas) == answer
    completed = events[-1]
    assert isinstance(completed, RunCompletedEvent)
    assert completed.content == Movie(title="Jaws", year=1975)
    assert completed.content_type == "Movie"


def test_structured_output_after_a_tool_call() -> None:
    def lookup(title: str) -> str:
        """Look a film up.

        Args:
            title: The title.
        """
        return "1968"

    def decide(messages: list[Message], tools: Any) -> Any:
        if messages[-1].role == "tool":
            return json.dumps({"title": "2001", "year": int(messages[-1].text())})
        return ToolCall(name="lookup", arguments={"title": "2001"})

    out = Agent(model=FunctionModel(decide), tools=[lookup], output_schema=Movie).run("2001?")
    assert out.content == Movie(title="2001", year=1968)
    assert out.tools[0].result == "1968"


async def test_async_structured_output_is_stored_as_json() -> None:
    db = InMemoryDb()
    agent = Agent(model=RequestRecorder('{"title": "Ran", "year": 1985}'), db=db)
    out = await agent.arun("Ran", output_schema=Movie, session_id="films")
    stored = await db.get_run(out.run_id)
    assert stored is not None
    assert stored["content"] == {"title": "Ran", "year": 1985}
    assert stored["content_type"] == "Movie"


def test_bad_output_schema_is_rejected_at_once() -> None:
    with pytest.raises(TypeError, match="output_schema must be a pydantic model class"):
        Agent(output_schema={"type": "object"})
    with pytest.raises(TypeError, match="output_schema must be a pydantic model class"):
        Agent(model=TestModel()).run("x", output_schema=Movie(title="a", year=1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output_retries must be a whole number"):
        Agent(output_retries=-1)


def test_input_schema_must_be_a_pydantic_model_class() -> None:
    from dataclasses import dataclass

    @dataclass
    class NotAModel:
        x: int

    with pytest.raises(TypeError, match="input_schema must be a pydantic model class"):
        Agent(input_schema=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="input_schema must be a pydantic model class"):
        Agent(input_schema=NotAModel)


async def test_a_stored_run_comes_back_with_the_agents_schema_object() -> None:
    db = InMemoryDb()
    agent = Agent(
        model=RequestRecorder('{"title": "Ran", "year": 1985}'), db=db, output_schema=Movie
    )
    out = await agent.arun("Ran", session_id="films")

    by_id = await agent.aget_run_output(out.run_id)
    last = await agent.aget_last_run_output("films")
    assert by_id is not None and by_id.content == Movie(title="Ran", year=1985)
    assert last is not None and last.content == Movie(title="Ran", year=1985)
    # An agent without that schema gets the stored JSON as it is.
    other = Agent(model=TestModel(), db=db)
    plain = await other.aget_run_output(out.run_id)
    assert plain is not None and plain.content == {"title": "Ran", "year": 1985}
    assert plain.content_type == "Movie"
