"""The guide's Advanced Parameters example with a real knowledge base.

``knowledge_filters={"tag": "docs"}`` must change what the agent finds: the same question, asked
with the guide's filter and with another, reaches different documents of a knowledge base built
with the embedded embedder and the sqlite-vec store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from pilothouse.agent import Agent, RunEvent, RunOutput, ToolCallCompletedEvent
from pilothouse.knowledge import Knowledge, SqliteVecDb
from pilothouse.models import ToolCall
from pilothouse.models.base import ToolDefinition
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel


class MyModel(BaseModel):
    """The guide's output schema placeholder: here, the documents the agent found."""

    answer: str


@pytest.fixture(scope="module")
def knowledge() -> Iterator[Knowledge]:
    kb = Knowledge(vector_db=SqliteVecDb())
    kb.insert(
        text_content="# Retries\n\nSet retries=3 to retry failed model calls with backoff.",
        name="guide/retries.md",
        metadata={"tag": "docs"},
    )
    kb.insert(
        text_content="# Why we retry\n\nA blog post: retries saved our launch day.",
        name="blog/retries.md",
        metadata={"tag": "blog"},
    )
    yield kb
    kb.vector_db.close()


def decide(messages: list[Message], tools: list[ToolDefinition]) -> str | list[ToolCall]:
    """Search the knowledge base for the input, then answer with the documents found."""
    if messages[-1].role == "tool":
        found = [item["document"] for item in json.loads(messages[-1].content)]
        return MyModel(answer=", ".join(found)).model_dump_json()
    return [ToolCall(name="search_knowledge_base", arguments={"query": "how do retries work"})]


def run_example(agent: Agent, filters: dict[str, str]) -> list[object]:
    value = "resolved value"
    stream = agent.run(
        "Input",
        stream=True,
        stream_events=True,
        retries=3,
        knowledge_filters=filters,
        dependencies={"var": value},
        metadata={"source": "api"},
        output_schema=MyModel,
        debug_mode=True,
    )
    return list(stream)


def test_advanced_parameters_filters_change_what_the_agent_finds(knowledge: Knowledge) -> None:
    agent = Agent(model=FunctionModel(decide), knowledge=knowledge, search_knowledge=True)

    events = run_example(agent, {"tag": "docs"})
    completed = events[-1]
    assert completed.event == RunEvent.run_completed.value
    assert completed.content == MyModel(answer="guide/retries.md")  # type: ignore[attr-defined]
    searched = [e for e in events if isinstance(e, ToolCallCompletedEvent)]
    assert "set retries=3" in searched[0].content.lower()  # type: ignore[union-attr]
    out = agent.get_last_run_output()
    assert isinstance(out, RunOutput) and out.metadata == {"source": "api"}
    assert [r.name for r in out.references or []] == ["guide/retries.md"]

    other = run_example(agent, {"tag": "blog"})
    assert other[-1].content == MyModel(answer="blog/retries.md")  # type: ignore[attr-defined]
    out = agent.get_last_run_output()
    assert out is not None and [r.name for r in out.references or []] == ["blog/retries.md"]
