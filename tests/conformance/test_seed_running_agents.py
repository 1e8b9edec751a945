"""The examples of the running-agents document, with the test models in place of hosted ones.

Each test is the document's example with ``pilothouse`` as the import root and the model
replaced by `TestModel` / `FunctionModel`; the output is checked. Examples that need a hosted
provider or a session store are covered where those features live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import BaseModel

from pilothouse.agent import (
    Agent,
    RunContentEvent,
    RunEvent,
    RunOutput,
    RunOutputEvent,
    RunStatus,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from pilothouse.models.test import TestModel
from pilothouse.utils.pprint import pprint_run_response


def get_top_hackernews_stories(num_stories: int = 5) -> str:
    """Get the top stories from Hacker News (a local stand-in for the toolkit)."""
    return f"{num_stories} stories about startups"


def test_run_method(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(
        model=TestModel(text="# Report\nStartups are trending."),
        tools=[get_top_hackernews_stories],
        instructions="Write a report on the topic.",
        markdown=True,
    )
    response: RunOutput = agent.run("Trending startups")
    print(response.content)
    assert "Startups are trending." in capsys.readouterr().out
    assert response.tools[0].tool_name == "get_top_hackernews_stories"


def test_simple_example() -> None:
    agent = Agent(
        model=TestModel(text="Why did the agent cross the road?"),
        instructions=["You are a helpful assistant."],
        markdown=True,
    )
    response = agent.run("Tell me a joke")
    assert response.content == "Why did the agent cross the road?"


def test_run_output_core_attributes_and_pprint(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="AI is **useful**."), tools=[get_top_hackernews_stories])
    response = agent.run("Tell me about AI")
    assert response.run_id and response.agent_id == agent.id and response.session_id
    assert response.user_id is None
    assert response.content == "AI is **useful**."
    assert response.content_type == "str"
    assert [m.role for m in response.messages] == ["user", "assistant", "tool", "assistant"]
    assert response.metrics.total_tokens > 0
    assert len(response.tools) == 1
    assert response.status == RunStatus.completed

    pprint_run_response(response, markdown=True)
    print(f"Run ID: {response.run_id}")
    print(f"Tokens: {response.metrics.total_tokens}")
    out = capsys.readouterr().out
    assert "useful" in out and "**useful**" not in out
    assert f"Run ID: {response.run_id}" in out
    assert f"Tokens: {response.metrics.total_tokens}" in out


def test_basic_streaming(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(
        model=TestModel(text="Trending products are mugs and lamps."),
        instructions="You are a helpful assistant.",
    )
    stream: Iterator[RunOutputEvent] = agent.run("Trending products", stream=True)
    for chunk in stream:
        if chunk.event == RunEvent.run_content:
            print(chunk.content, end="", flush=True)
    assert capsys.readouterr().out == "Trending products are mugs and lamps."


def test_stream_and_pretty_print(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="Lamps are trending."))
    stream = agent.run("Trending products", stream=True)
    pprint_run_response(stream, markdown=True)
    assert "Lamps are trending." in capsys.readouterr().out


def test_handle_different_events(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="Quiet day."), tools=[get_top_hackernews_stories])
    stream = agent.run("What's happening in USA?", stream=True, stream_events=True)
    for chunk in stream:
        if isinstance(chunk, RunContentEvent):
            print(f"Content: {chunk.content}")
        elif isinstance(chunk, ToolCallStartedEvent):
            print(f"Tool: {chunk.tool.tool_name}")  # type: ignore[union-attr]
            print(f"Args: {chunk.tool.tool_args}")  # type: ignore[union-attr]
        elif isinstance(chunk, ToolCallCompletedEvent):
            print(f"Result: {chunk.tool.result}")  # type: ignore[union-attr]
    out = capsys.readouterr().out
    assert "Tool: get_top_hackernews_stories" in out
    assert "Args: {}" in out
    assert "Result: 5 stories about startups" in out
    assert "Content: Quiet " in out and "Content: day." in out


def test_stream_events_include_lifecycle() -> None:
    agent = Agent(model=TestModel(text="x"))
    stream = agent.run("Query", stream=True, stream_events=True)
    names = [e.event for e in stream]
    assert names[0] == RunEvent.run_started and names[-1] == RunEvent.run_completed


def test_basic_async(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="Once upon a time."), markdown=True)

    async def main() -> None:
        response: RunOutput = await agent.arun("Tell me a story")
        print(response.content)

    asyncio.run(main())
    assert capsys.readouterr().out == "Once upon a time.\n"


def test_async_with_streaming(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="Once upon a time."), markdown=True)

    async def main() -> None:
        stream: AsyncIterator[RunOutputEvent] = await agent.arun("Tell me a story", stream=True)
        async for chunk in stream:
            if chunk.event == RunEvent.run_content:
                print(chunk.content, end="")

    asyncio.run(main())
    assert capsys.readouterr().out == "Once upon a time."


def test_aprint_response(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="A short story."))
    asyncio.run(agent.aprint_response("Tell me a story", stream=True))
    out = capsys.readouterr().out
    assert "Tell me a story" in out and "A short story." in out


def test_print_response(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="Knock knock."))
    agent.print_response("Tell me a joke")
    agent.print_response("Story", stream=True)
    out = capsys.readouterr().out
    assert out.count("Knock knock.") == 2
    assert "Tell me a joke" in out and "Story" in out


class Query(BaseModel):
    question: str


def test_input_types() -> None:
    agent = Agent(model=TestModel(text="ok"))
    assert agent.run(input="Tell me a joke").status == RunStatus.completed
    assert agent.run(input=["Instruction 1", "Instruction 2"]).status == RunStatus.completed
    assert agent.run(input={"task": "summarize", "text": "..."}).status == RunStatus.completed
    out = agent.run(input=Query(question="What is AI?"))
    assert out.status == RunStatus.completed
    assert '"question": "What is AI?"' in out.messages[0].content


def test_specifying_user_and_session() -> None:
    agent = Agent(model=TestModel(text="ok"))
    out = agent.run("Tell me a story", user_id="john@example.com", session_id="session_123")
    assert (out.user_id, out.session_id) == ("john@example.com", "session_123")


def test_get_last_run_output(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="answer"))
    agent.run("First query")
    agent.run("Second query")
    last = agent.get_last_run_output()
    assert last is not None
    print(last.content)
    assert last.input is not None and last.input.input_content == "Second query"
    assert capsys.readouterr().out == "answer\n"


@pytest.mark.parametrize("fails", [False, True])
def test_handle_errors(capsys: pytest.CaptureFixture[str], fails: bool) -> None:
    from pilothouse.exceptions import ModelProviderError
    from pilothouse.models.test import FunctionModel

    def model_fn(messages: object, tools: object) -> str:
        if fails:
            raise ModelProviderError("provider unavailable", status_code=503)
        return "fine"

    agent = Agent(model=FunctionModel(model_fn))
    try:
        response = agent.run("Query")

        if response.status == RunStatus.error:
            print(f"Failed: {response.content}")
        elif response.status == RunStatus.completed:
            print(f"Success: {response.content}")

    except Exception as e:
        print(f"Error: {e}")
    expected = "Failed: provider unavailable" if fails else "Success: fine"
    assert capsys.readouterr().out.strip() == expected


def test_stream_long_responses(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(model=TestModel(text="A long article " * 20))
    stream = agent.run("Write long article", stream=True)

    for chunk in stream:
        if chunk.event == RunEvent.run_content:
            print(chunk.content, end="", flush=True)
    assert capsys.readouterr().out == "A long article " * 20


def test_log_run_metadata(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("app")
    agent = Agent(model=TestModel(text="ok"))
    with caplog.at_level(logging.INFO, logger="app"):
        response = agent.run("Query")

        logger.info(f"Run: {response.run_id}")
        logger.info(f"Session: {response.session_id}")
        logger.info(f"Tokens: {response.metrics.total_tokens}")
        logger.info(f"Time: {response.metrics.time_to_first_token}s")
    lines = [r.getMessage() for r in caplog.records if r.name == "app"]
    assert lines[0] == f"Run: {response.run_id}"
    assert int(lines[2].split(": ")[1]) > 0
    assert float(lines[3].removeprefix("Time: ").removesuffix("s")) >= 0


def test_concurrent_runs_with_gather() -> None:
    agent1 = Agent(model=TestModel(text="one"))
    agent2 = Agent(model=TestModel(text="two"))
    agent3 = Agent(model=TestModel(text="three"))

    async def run_multiple() -> list[RunOutput]:
        results = await asyncio.gather(
            agent1.arun("Query 1"),
            agent2.arun("Query 2"),
            agent3.arun("Query 3"),
        )
        return list(results)

    results = asyncio.run(run_multiple())
    assert [r.content for r in results] == ["one", "two", "three"]


def test_both_streaming_and_non_streaming() -> None:
    agent = Agent(model=TestModel(text="the expected answer"))
    response = agent.run("Test")
    assert "expected" in response.content

    stream = agent.run("Test", stream=True)
    content = ""
    for chunk in stream:
        if chunk.event == RunEvent.run_content:
            content += chunk.content
    assert "expected" in content
