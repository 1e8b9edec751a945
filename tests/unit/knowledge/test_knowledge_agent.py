"""Agents with a knowledge base, through the public API, with the test models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pilothouse import Agent, RunStatus
from pilothouse.db import InMemoryDb
from pilothouse.knowledge import GT, Knowledge, Reference, SqliteVecDb
from pilothouse.models import ToolCall
from pilothouse.models.base import ToolDefinition
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.run.output import RunOutput

DOCS = {
    "deploy-docs": (
        "# Deploying\n\nRun make deploy to ship the service.",
        {"tag": "docs", "year": 2024},
    ),
    "deploy-blog": (
        "# How we deploy\n\nOur blog post on deploying with make deploy.",
        {"tag": "blog", "year": 2021},
    ),
    "kettle": (
        "# Zephyr kettle\n\nThe Zephyr kettle boils water in ninety seconds.",
        {"tag": "products", "year": 2023},
    ),
}


@pytest.fixture(scope="module")
def kb() -> Iterator[Knowledge]:
    knowledge = Knowledge(vector_db=SqliteVecDb(), max_results=2, name="company handbook")
    for name, (text, metadata) in DOCS.items():
        knowledge.insert(text_content=text, name=name, metadata=metadata)
    yield knowledge
    knowledge.vector_db.close()


def _search_then_answer(query: str, filters: dict[str, Any] | None = None) -> FunctionModel:
    def decide(messages: list[Message], tools: list[ToolDefinition]) -> str | list[ToolCall]:
        if messages[-1].role == "tool":
            return f"Found: {messages[-1].content}"
        arguments: dict[str, Any] = {"query": query}
        if filters is not None:
            arguments["filters"] = filters
        return [ToolCall(name="search_knowledge_base", arguments=arguments)]

    return FunctionModel(decide)


def _found_documents(out: RunOutput) -> list[str]:
    return [item["document"] for item in json.loads(out.tools[0].result)]


def test_the_model_gets_a_search_tool_and_references_are_recorded(kb: Knowledge) -> None:
    seen: list[list[str]] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> str | list[ToolCall]:
        seen.append([t.name for t in tools])
        if messages[-1].role == "tool":
            return "ok"
        return [ToolCall(name="search_knowledge_base", arguments={"query": "how do I deploy"})]

    agent = Agent(model=FunctionModel(decide), knowledge=kb)
    out = agent.run("How do I deploy?")
    assert out.status == RunStatus.completed
    assert seen[0] == ["search_knowledge_base"]
    assert set(_found_documents(out)) == {"deploy-docs", "deploy-blog"}
    assert out.references is not None and len(out.references) == 2
    ref = out.references[0]
    assert isinstance(ref, Reference) and ref.query == "how do I deploy"
    assert ref.name in ("deploy-docs", "deploy-blog") and ref.score is not None and ref.chunk_id
    assert ref.metadata["tag"] in ("docs", "blog")
    # References survive the run's serialised form.
    again = RunOutput.from_dict(json.loads(out.to_json()))
    assert again.references == out.references


def test_the_tool_definition_is_plain_without_agentic_filters(kb: Knowledge) -> None:
    captured: list[ToolDefinition] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> str:
        captured.extend(tools)
        return "no search"

    Agent(model=FunctionModel(decide), knowledge=kb).run("hi")
    (definition,) = captured
    assert list(definition.parameters["properties"]) == ["query"]
    assert "company handbook" in (definition.description or "")
    out = Agent(model=FunctionModel(decide), knowledge=kb, search_knowledge=False).run("hi")
    assert len(captured) == 1 and out.references == []


@pytest.mark.parametrize(
    ("agent_filters", "run_filters", "expected"),
    [
        (None, None, {"deploy-docs", "deploy-blog"}),
        ({"tag": "blog"}, None, {"deploy-blog"}),
        (None, {"tag": "docs"}, {"deploy-docs"}),
        ({"tag": "blog"}, {"tag": "docs"}, {"deploy-docs"}),  # the run's value wins
        ({"tag": "products"}, None, {"kettle"}),
    ],
)
def test_knowledge_filters_restrict_every_search(
    kb: Knowledge, agent_filters: Any, run_filters: Any, expected: set[str]
) -> None:
    agent = Agent(
        model=_search_then_answer("deploying"), knowledge=kb, knowledge_filters=agent_filters
    )
    out = agent.run("How do I deploy?", knowledge_filters=run_filters)
    assert set(_found_documents(out)) == expected
    assert {r.name for r in out.references or []} == expected


def test_agentic_filters_are_offered_validated_and_combined_with_the_run_filters(
    kb: Knowledge,
) -> None:
    captured: list[ToolDefinition] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> str:
        captured.extend(tools)
        return "-"

    Agent(model=FunctionModel(decide), knowledge=kb, enable_agentic_knowledge_filters=True).run("x")
    definition = captured[0]
    assert set(definition.parameters["properties"]) == {"query", "filters"}
    assert "valid filter keys: tag, year" in (definition.description or "")

    chosen = Agent(
        model=_search_then_answer("deploy", {"tag": "blog"}),
        knowledge=kb,
        enable_agentic_knowledge_filters=True,
    )
    assert _found_documents(chosen.run("Deploy?")) == ["deploy-blog"]

    unknown = Agent(
        model=_search_then_answer("deploy", {"topic": "ops"}),
        knowledge=kb,
        enable_agentic_knowledge_filters=True,
    )
    out = unknown.run("Deploy?")
    assert out.status == RunStatus.completed
    assert out.tools[0].tool_call_error
    assert "unknown filter key(s) 'topic'. Valid keys: tag, year." in out.tools[0].result
    assert out.references == []

    # The run's filters still apply: the model cannot widen them.
    narrowed = Agent(
        model=_search_then_answer("deploy", {"tag": "blog"}),
        knowledge=kb,
        enable_agentic_knowledge_filters=True,
    )
    out = narrowed.run("Deploy?", knowledge_filters={"tag": "docs"})
    assert "No passages" in out.tools[0].result


def test_add_knowledge_to_context_retrieves_before_the_first_request(kb: Knowledge) -> None:
    first_request: list[str] = []

    def decide(messages: list[Message], tools: list[ToolDefinition]) -> str:
        first_request.append(messages[-1].text())
        return "The kettle takes ninety seconds."

    agent = Agent(
        model=FunctionModel(decide),
        knowledge=kb,
        add_knowledge_to_context=True,
        search_knowledge=False,
    )
    out = agent.run("How fast does the Zephyr kettle boil?", knowledge_filters={"year": 2023})
    text = first_request[0]
    assert text.startswith("How fast does the Zephyr kettle boil?")
    assert "<references>" in text and "ninety seconds" in text and "deploy" not in text
    assert [r.name for r in out.references or []] == ["kettle"]
    # The stored input message carries the passages too, so history replays what the model saw.
    assert "<references>" in out.messages[-2].text()


def test_expressions_work_as_run_filters_through_the_knowledge_api(kb: Knowledge) -> None:
    found = kb.search("deploy", filters=GT("year", 2022))
    assert {c.name for c in found} == {"deploy-docs", "kettle"}


def test_test_model_drives_the_tool_too(kb: Knowledge) -> None:
    out = Agent(model=TestModel(), knowledge=kb).run("anything")
    assert out.status == RunStatus.completed
    assert out.tools[0].tool_name == "search_knowledge_base" and not out.tools[0].tool_call_error


async def test_async_and_streamed_runs_and_a_stored_run_keep_references(kb: Knowledge) -> None:
    db = InMemoryDb()
    agent = Agent(model=_search_then_answer("kettle"), knowledge=kb, db=db)
    out = await agent.arun("Kettle?", session_id="s")
    assert [r.name for r in out.references or []][:1] == ["kettle"]
    stored = await agent.aget_last_run_output("s")
    assert stored is not None and stored.references == out.references
    events = [e async for e in agent.arun("Kettle?", stream=True, stream_events=True)]
    assert events[-1].event == "RunCompleted"


def test_a_failing_store_ends_the_run_with_an_error(kb: Knowledge) -> None:
    class Broken(SqliteVecDb):
        def vector_search(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("disk on fire")

    broken = Knowledge(vector_db=Broken())
    broken.insert(text_content="x", name="x")
    agent = Agent(
        model=FunctionModel(lambda m, t: "-"), knowledge=broken, add_knowledge_to_context=True
    )
    out = agent.run("question")
    assert out.status == RunStatus.error and "disk on fire" in str(out.content)
    tool_agent = Agent(model=_search_then_answer("x"), knowledge=broken)
    out = tool_agent.run("question")
    assert out.status == RunStatus.completed and out.tools[0].tool_call_error
    assert "disk on fire" in out.tools[0].result


def test_bad_knowledge_arguments() -> None:
    with pytest.raises(TypeError, match=r"knowledge must be a pilothouse\.knowledge\.Knowledge"):
        Agent(knowledge="kb.db", model=TestModel())
    with pytest.raises(TypeError, match="search_knowledge must be True or False"):
        Agent(knowledge=Knowledge(), search_knowledge="yes", model=TestModel())  # type: ignore[arg-type]
