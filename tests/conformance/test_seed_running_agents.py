"""The examples of the running-agents document, with the test models in place of hosted ones.

Each test is the document's example with ``pilothouse`` as the import root and the model
replaced by `TestModel` / `FunctionModel`; the output is checked. Examples that need a hosted
provider or a session store are covered where those features live.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse import RunContext, tool
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


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every name lookup and connection that would leave the machine."""
    import ipaddress
    import socket

    def is_local(host: object) -> bool:
        if host in (None, "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host)).is_loopback
        except ValueError:
            return False

    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if isinstance(address, tuple) and not is_local(address[0]):
            raise AssertionError(f"tried to reach {address[0]}")
        real_connect(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if not is_local(host):
            raise AssertionError(f"tried to look up {host}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_media_parameters(loopback_only: None) -> None:
    import wave
    from io import BytesIO

    from pilothouse.media import Audio, File, Image, Video
    from pilothouse.models import Message
    from pilothouse.models.test import FunctionModel

    received: list[Message] = []

    def media_model(messages: list[Message], tools: object) -> str:
        user = messages[-1]
        received.append(user)
        kinds = [k for k in ("images", "audio", "videos", "files") if getattr(user, k)]
        return f"{user.text()}: got {', '.join(kinds)}"

    buffer = BytesIO()
    with wave.open(buffer, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(8000)
        recording.writeframes(b"\0\0" * 80)
    audio_bytes = buffer.getvalue()
    file_bytes = b"%PDF-1.4\n%%EOF\n"
    agent = Agent(model=FunctionModel(media_model))

    # Images
    image = Image(url="https://example.com/img.jpg")
    images_run = agent.run("Describe this", images=[image])

    # Audio
    clip = Audio(content=audio_bytes, format="wav")
    audio_run = agent.run("Transcribe this", audio=[clip])

    # Video
    video = Video(url="https://example.com/vid.mp4")
    videos_run = agent.run("Analyze this", videos=[video])

    # Files
    document = File(content=file_bytes, name="doc.pdf")
    files_run = agent.run("Summarize this", files=[document])

    runs = [images_run, audio_run, videos_run, files_run]
    assert [r.status for r in runs] == [RunStatus.completed] * 4
    assert [r.content for r in runs] == [
        "Describe this: got images",
        "Transcribe this: got audio",
        "Analyze this: got videos",
        "Summarize this: got files",
    ]
    # Recorded on the run's input ...
    inputs = [r.input for r in runs]
    assert all(i is not None for i in inputs)
    assert images_run.input.images == [image]  # type: ignore[union-attr]
    assert audio_run.input.audio == [clip]  # type: ignore[union-attr]
    assert videos_run.input.videos == [video]  # type: ignore[union-attr]
    assert files_run.input.files == [document]  # type: ignore[union-attr]
    assert files_run.input.input_content == "Summarize this"  # type: ignore[union-attr]
    # ... and sent to the model with the user's message, unchanged and not downloaded.
    assert received[0].images == [image] and received[0].images[0].content is None
    assert received[1].audio == [clip] and received[1].audio[0].read_bytes() == audio_bytes
    assert received[1].audio[0].get_mime_type() == "audio/wav"
    assert received[2].videos == [video] and received[2].videos[0].content is None
    assert received[3].files == [document] and received[3].files[0].get_mime_type() == (
        "application/pdf"
    )
    # Each run carries its own media only.
    assert received[0].audio is None and received[3].images is None
    # The recorded input serialises with the media (bytes as base64, URLs as given).
    import base64

    recorded = audio_run.input.to_dict()  # type: ignore[union-attr]
    assert recorded["audio"][0]["format"] == "wav"
    assert base64.b64decode(recorded["audio"][0]["content"]) == audio_bytes
    assert images_run.input.to_dict()["images"][0]["url"] == image.url  # type: ignore[union-attr]


def test_media_the_embedded_model_cannot_take_end_the_run_with_a_clear_error(
    loopback_only: None,
) -> None:
    from pilothouse.media import Image

    image = Image(url="https://example.com/img.jpg")
    response = Agent(model="local").run("Describe this", images=[image])
    assert response.status == RunStatus.error
    assert "takes text only" in str(response.content) and "1 image" in str(response.content)
    assert response.input is not None and response.input.images == [image]


class MyModel(BaseModel):
    """The guide's output schema placeholder."""

    answer: str


def test_advanced_parameters() -> None:
    """The Advanced Parameters example: every option at once."""
    seen: dict[str, object] = {}

    def lookup(topic: str, run_context: RunContext) -> str:
        """Look a topic up in the documentation.

        Args:
            topic: What to look up.
        """
        seen["filters"] = run_context.knowledge_filters
        seen["var"] = run_context.dependencies["var"]
        return f"notes on {topic}"

    value = "resolved value"
    agent = Agent(model=TestModel(), tools=[lookup])
    stream = agent.run(
        "Input",
        stream=True,
        stream_events=True,
        retries=3,
        knowledge_filters={"tag": "docs"},
        dependencies={"var": value},
        metadata={"source": "api"},
        output_schema=MyModel,
        debug_mode=True,
    )
    events = list(stream)
    assert events[0].event == RunEvent.run_started.value
    completed = events[-1]
    assert completed.event == RunEvent.run_completed.value
    assert isinstance(completed.content, MyModel)
    assert seen == {"filters": {"tag": "docs"}, "var": "resolved value"}
    out = agent.get_last_run_output()
    assert out is not None and out.metadata == {"source": "api"}
    assert out.content_type == "MyModel"


def test_continue_run() -> None:
    """The continue_run() example: a run that pauses, then is continued."""

    @tool(requires_confirmation=True)
    def deploy(service: str) -> str:
        """Deploy a service.

        Args:
            service: The service to deploy.
        """
        return f"{service} deployed"

    agent = Agent(model=TestModel(text="Deployed."), tools=[deploy])

    response = agent.run("Complex task")
    assert response.status == RunStatus.paused
    for execution in response.tools_requiring_confirmation:
        execution.confirmed = True

    if response.status == RunStatus.paused:
        continued = agent.continue_run(run_response=response)

    assert continued.status == RunStatus.completed
    assert continued.run_id == response.run_id
    assert continued.tools[0].result == "a deployed"
    assert continued.content == "Deployed."


def test_continue_run_of_an_errored_run() -> None:
    """The continue_run() example's other half: an errored run, continued, finishes without
    running its finished tool call again."""
    from pilothouse.exceptions import ModelProviderError
    from pilothouse.models import ToolCall
    from pilothouse.models.test import FunctionModel

    deployed: list[str] = []

    def deploy(service: str) -> str:
        """Deploy a service.

        Args:
            service: The service to deploy.
        """
        deployed.append(service)
        return f"{service} deployed"

    provider_up = [False]

    def model(messages: list[Any], tools: list[Any]) -> Any:
        if messages[-1].role == "user":
            return ToolCall(name="deploy", arguments={"service": "api"})
        if not provider_up[0]:
            raise ModelProviderError("the provider is down", status_code=503)
        return "Deployed."

    agent = Agent(model=FunctionModel(model), tools=[deploy], retries=0)

    response = agent.run("Complex task")
    assert response.status == RunStatus.error

    provider_up[0] = True
    if response.status in (RunStatus.paused, RunStatus.error):
        continued = agent.continue_run(run_response=response)

    assert continued.status == RunStatus.completed
    assert continued.run_id == response.run_id
    assert continued.content == "Deployed."
    assert deployed == ["api"]
