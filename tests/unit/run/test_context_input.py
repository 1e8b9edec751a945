"""Structured input through the public API: what the model is sent, and ``input_schema``."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from typing import Any

import pytest
from pydantic import BaseModel, Field

from pilothouse import Agent, RunStatus
from pilothouse.models import Message, ToolDefinition
from pilothouse.models.test import FunctionModel


class Address(BaseModel):
    city: str
    postcode: str | None = None


class Query(BaseModel):
    question: str
    max_words: int = Field(default=50, gt=0)
    address: Address | None = None


class Recorder:
    """A model that records the messages of every call and answers "ok"."""

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []

    def __call__(self, messages: list[Message], tools: list[ToolDefinition]) -> str:
        self.calls.append(list(messages))
        return "ok"

    @property
    def sent(self) -> list[Message]:
        """The messages after the system message of the last call."""
        return [m for m in self.calls[-1] if m.role != "system"]


@pytest.fixture
def model() -> Recorder:
    return Recorder()


def test_a_pydantic_model_is_sent_as_its_json(model: Recorder) -> None:
    query = Query(question="What is AI?", address=Address(city="Paris"))
    out = Agent(model=FunctionModel(model), instructions="Answer.").run(query)

    assert out.status is RunStatus.completed
    (user,) = model.sent
    assert user.role == "user"
    assert json.loads(user.text()) == {
        "question": "What is AI?",
        "max_words": 50,
        "address": {"city": "Paris", "postcode": None},
    }
    assert user.text() == query.model_dump_json(indent=2)
    assert out.input is not None and out.input.input_content is query
    assert json.loads(out.input.input_content_string()) == query.model_dump(mode="json")


def test_a_dict_is_sent_as_json_with_non_json_values_as_text(model: Recorder) -> None:
    run_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {"task": "summarize", "when": datetime.date(2024, 1, 2), "id": run_id, "n": [1, 2]}
    out = Agent(model=FunctionModel(model)).run(value)

    (user,) = model.sent
    assert user.role == "user"
    assert json.loads(user.text()) == {
        "task": "summarize",
        "when": "2024-01-02",
        "id": "12345678-1234-5678-1234-567812345678",
        "n": [1, 2],
    }
    assert out.input is not None and out.input.input_content == value


def test_a_dict_that_only_resembles_a_message_is_still_structured_input(model: Recorder) -> None:
    # "role" and "content" are ordinary field names for structured input: only a dict that is a
    # message (a known role, message keys only) is treated as one.
    agent = Agent(model=FunctionModel(model))
    agent.run({"role": "reviewer", "content": "the draft", "deadline": "friday"})
    (user,) = model.sent
    assert user.role == "user"
    assert json.loads(user.text()) == {
        "role": "reviewer",
        "content": "the draft",
        "deadline": "friday",
    }

    agent.run([{"role": "editor", "text": "a"}, {"role": "author", "text": "b"}])
    (user,) = model.sent
    assert user.role == "user"
    assert user.text() == (
        '{\n  "role": "editor",\n  "text": "a"\n}\n{\n  "role": "author",\n  "text": "b"\n}'
    )


def test_message_dicts_are_still_messages(model: Recorder) -> None:
    agent = Agent(model=FunctionModel(model))
    agent.run({"role": "user", "content": "hi"})
    assert [(m.role, m.text()) for m in model.sent] == [("user", "hi")]

    agent.run(
        [
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "What's my name?"},
        ]
    )
    assert [(m.role, m.text()) for m in model.sent] == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What's my name?"),
    ]


def test_a_list_of_structured_values_is_one_message_of_json_parts(model: Recorder) -> None:
    Agent(model=FunctionModel(model)).run([Query(question="a"), {"b": 1}, "plain text"])
    (user,) = model.sent
    text = user.text()
    assert text.startswith(Query(question="a").model_dump_json(indent=2) + "\n")
    assert '{\n  "b": 1\n}' in text
    assert text.endswith("\nplain text")


# ---------------------------------------------------------------------- input_schema


def test_input_schema_validates_a_dict_into_the_model_before_it_is_sent(model: Recorder) -> None:
    agent = Agent(model=FunctionModel(model), input_schema=Query)
    out = agent.run({"question": "What is AI?", "max_words": "20", "address": {"city": "Oslo"}})

    assert out.status is RunStatus.completed
    expected = Query(question="What is AI?", max_words=20, address=Address(city="Oslo"))
    assert out.input is not None and out.input.input_content == expected
    (user,) = model.sent
    assert json.loads(user.text())["max_words"] == 20  # coerced by the schema

    query = Query(question="as an instance")
    assert agent.run(query).input.input_content is query  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ({"max_words": 3}, "question", "Field required"),
        ({"question": "q", "max_words": "many"}, "max_words", "valid integer"),
        ({"question": "q", "max_words": 0}, "max_words", "greater than 0"),
        ({"question": "q", "address": {"postcode": "1"}}, "address.city", "Field required"),
    ],
)
def test_input_schema_failure_names_the_field_and_calls_no_model(
    model: Recorder, value: dict[str, Any], field: str, problem: str
) -> None:
    agent = Agent(model=FunctionModel(model), input_schema=Query)
    with pytest.raises(ValueError, match="input does not match Query") as info:
        agent.run(value)
    message = str(info.value)
    assert f"{field}: " in message and problem in message
    assert model.calls == []
    assert agent.get_last_run_output() is None  # no run was started


def test_input_schema_failure_raises_before_any_model_call_in_every_mode(model: Recorder) -> None:
    agent = Agent(model=FunctionModel(model), input_schema=Query)
    bad = {"question": "q", "max_words": "many"}

    with pytest.raises(ValueError, match="max_words"):
        agent.run(bad, stream=True)

    async def main() -> None:
        with pytest.raises(ValueError, match="max_words"):
            await agent.arun(bad)
        with pytest.raises(ValueError, match="max_words"):
            async for _ in agent.arun(bad, stream=True):
                pass

    asyncio.run(main())
    assert model.calls == []


@pytest.mark.parametrize("value", ["What is AI?", Address(city="Paris"), ["q"], None])
def test_input_schema_refuses_other_kinds_of_input(model: Recorder, value: Any) -> None:
    agent = Agent(model=FunctionModel(model), input_schema=Query)
    with pytest.raises(TypeError, match=r"takes Query input \(an instance or a dict\)"):
        agent.run(value)
    assert model.calls == []


def test_knowledge_filters_reach_tools_merged_and_bad_ones_are_refused() -> None:
    from pilothouse import RunContext
    from pilothouse.models.test import TestModel

    seen: list[object] = []

    def search_docs(query: str, run_context: RunContext) -> str:
        """Search the documentation.

        Args:
            query: What to look for.
        """
        seen.append(run_context.knowledge_filters)
        return "found"

    agent = Agent(model=TestModel(text="ok"), tools=[search_docs], knowledge_filters={"lang": "en"})
    agent.run("Find it", knowledge_filters={"tag": "docs"})
    agent.run("Find it")
    assert seen == [{"lang": "en", "tag": "docs"}, {"lang": "en"}]
    with pytest.raises(TypeError, match="knowledge_filters must be a dict"):
        agent.run("x", knowledge_filters=["docs"])
    with pytest.raises(TypeError, match="knowledge_filters must be a dict"):
        Agent(knowledge_filters="docs")  # type: ignore[arg-type]
