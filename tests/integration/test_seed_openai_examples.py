"""The running-agents guide's OpenAIChat examples, unchanged but for the endpoint.

Only the import root and the environment differ from the guide: ``OPENAI_BASE_URL`` points at
llama-cpp-python's OpenAI-compatible server on loopback, which serves SmolLM2 whatever model
id is asked for. The model is tiny, so the checks are about the protocol (the run completed,
content arrived, streamed pieces add up, history went into the second run), not the wit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from pilothouse.agent import Agent, RunEvent, RunOutput, RunOutputEvent, RunStatus
from pilothouse.db import InMemoryDb
from pilothouse.models.openai import OpenAIChat

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def openai_endpoint(monkeypatch: pytest.MonkeyPatch, llama_cpp_python_server: str) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llama_cpp_python_server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")


def test_simple_example(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(
        model=OpenAIChat(id="gpt-5-mini"),
        instructions=["You are a helpful assistant."],
        markdown=True,
    )

    response = agent.run("Tell me a joke")
    print(response.content)

    assert response.status == RunStatus.completed
    assert response.content and capsys.readouterr().out.strip()
    assert response.model == "gpt-5-mini" and response.metrics.time_to_first_token


def test_basic_streaming(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(
        model=OpenAIChat(id="gpt-5-mini"),
        instructions="You are a helpful assistant.",
    )

    stream: Iterator[RunOutputEvent] = agent.run("Trending products", stream=True)

    pieces = 0
    for chunk in stream:
        if chunk.event == RunEvent.run_content:
            print(chunk.content, end="", flush=True)
            pieces += 1
    last = agent.get_last_run_output()
    assert last is not None and last.status == RunStatus.completed
    assert pieces > 1
    assert capsys.readouterr().out == last.content


def test_async_examples(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(
        model=OpenAIChat(id="gpt-5-mini"),
        markdown=True,
    )

    async def main() -> None:
        response: RunOutput = await agent.arun("Tell me a story")
        print(response.content)

    asyncio.run(main())
    first = capsys.readouterr().out

    async def streaming() -> None:
        stream: AsyncIterator[RunOutputEvent] = await agent.arun("Tell me a story", stream=True)

        async for chunk in stream:
            if chunk.event == RunEvent.run_content:
                print(chunk.content, end="")

    asyncio.run(streaming())
    second = capsys.readouterr().out
    assert first.strip() and second.strip()

    asyncio.run(agent.aprint_response("Tell me a story", stream=True))
    assert "Tell me a story" in capsys.readouterr().out


def test_user_and_session_example() -> None:
    db = InMemoryDb()
    agent = Agent(
        model=OpenAIChat(id="gpt-5-mini"),
        db=db,
        add_history_to_context=True,
    )

    # First message
    agent.run(
        "My name is John",
        user_id="user_123",
        session_id="session_abc",
    )

    # Second message - remembers context
    second = agent.run(
        "What's my name?",
        user_id="user_123",
        session_id="session_abc",
    )
    assert second.status == RunStatus.completed
    history = [m.text() for m in second.messages if m.from_history]
    assert history[0] == "My name is John"
    assert len(agent.get_chat_history("session_abc")) == 4
