"""The run loop through the public API: outputs, modes, input types, messages and metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel

from pilothouse import Agent, RunOutput, RunStatus
from pilothouse.agent import RunContentEvent, RunEvent
from pilothouse.models import Message, ToolCall
from pilothouse.models.test import FunctionModel, TestModel


def echo(messages: list[Message], tools: object) -> str:
    return f"echo: {messages[-1].text()}"


def test_run_returns_completed_output_with_its_ids_and_messages() -> None:
    agent = Agent(model=FunctionModel(echo), name="echoer", instructions="Be brief.")
    out = agent.run("hello", user_id="u1", session_id="s1")

    assert isinstance(out, RunOutput)
    assert out.status is RunStatus.completed
    assert out.content == "echo: hello"
    assert out.content_type == "str"
    assert (out.user_id, out.session_id, out.agent_name) == ("u1", "s1", "echoer")
    assert out.agent_id == agent.id
    assert [m.role for m in out.messages] == ["system", "user", "assistant"]
    assert out.messages[0].content == "Be brief."
    assert out.model == "function:echo" and out.model_provider == "function"
    assert out.input is not None and out.input.input_content == "hello"


def test_metrics_are_counted_per_call_and_summed_per_run() -> None:
    def decide(messages: list[Message], tools: object) -> object:
        if messages[-1].role == "tool":
            return "done now"
        return [ToolCall(name="add", arguments={"a": 1, "b": 2})]

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    out = Agent(model=FunctionModel(decide), tools=[add]).run("add")
    calls = [m.metrics for m in out.messages if m.role == "assistant"]
    assert len(calls) == 2
    assert all(c.input_tokens > 0 and c.output_tokens > 0 for c in calls)
    assert out.metrics.input_tokens == sum(c.input_tokens for c in calls)
    assert out.metrics.total_tokens == out.metrics.input_tokens + out.metrics.output_tokens
    assert out.metrics.model_calls == 2
    assert out.metrics.duration is not None and out.metrics.duration > 0
    assert out.metrics.time_to_first_token is not None


def test_time_to_first_token_is_measured_from_the_request() -> None:
    async def slow_start(messages: list[Message], tools: object):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.05)
        yield "first"
        await asyncio.sleep(0.05)
        yield " second"

    out = Agent(model=FunctionModel(stream_function=slow_start)).run("go")
    ttft = out.metrics.time_to_first_token
    assert ttft is not None and ttft >= 0.045
    assert out.metrics.duration is not None and out.metrics.duration >= ttft + 0.045
    assert out.content == "first second"


async def test_all_four_modes_give_the_same_answer() -> None:
    agent = Agent(model=TestModel(text="the same words"))

    def sync_modes() -> tuple[str, str]:
        plain = agent.run("x").content
        streamed = "".join(
            e.content for e in agent.run("x", stream=True) if e.event == RunEvent.run_content
        )
        return plain, streamed

    plain, streamed = await asyncio.to_thread(sync_modes)
    awaited = (await agent.arun("x")).content
    direct = "".join([e.content async for e in agent.arun("x", stream=True)])
    stream = await agent.arun("x", stream=True)
    awaited_stream = "".join([e.content async for e in stream])
    assert {plain, streamed, awaited, direct, awaited_stream} == {"the same words"}


def test_stream_true_alone_yields_only_content_events() -> None:
    events = list(Agent(model=TestModel(text="one two three")).run("x", stream=True))
    assert len(events) == 3
    assert all(isinstance(e, RunContentEvent) for e in events)


def test_a_streamed_run_then_a_plain_run_returns_an_output() -> None:
    agent = Agent(model=TestModel(text="ok"))
    list(agent.run("x", stream=True))
    out = agent.run("x")
    assert isinstance(out, RunOutput) and out.content == "ok"


def test_run_works_inside_a_running_event_loop() -> None:
    agent = Agent(model=TestModel(text="from a notebook"))

    async def notebook_cell() -> tuple[str, list[str]]:
        out = agent.run("x")
        chunks = [e.content for e in agent.run("x", stream=True)]
        return out.content, chunks

    content, chunks = asyncio.run(notebook_cell())
    assert content == "from a notebook"
    assert "".join(chunks) == "from a notebook"


class Query(BaseModel):
    question: str


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tell me a joke", "Tell me a joke"),
        (["Instruction 1", "Instruction 2"], "Instruction 1\nInstruction 2"),
        ({"task": "summarize", "text": "..."}, '"task": "summarize"'),
        (Query(question="What is AI?"), '"question": "What is AI?"'),
    ],
)
def test_every_input_type_becomes_a_user_message(value: object, expected: str) -> None:
    out = Agent(model=FunctionModel(echo)).run(input=value)
    user = out.messages[-2]
    assert user.role == "user"
    assert expected in user.content
    assert out.input is not None and out.input.input_content == value


def test_a_list_of_messages_is_a_conversation() -> None:
    seen: list[list[str]] = []

    def record(messages: list[Message], tools: object) -> str:
        seen.append([f"{m.role}:{m.text()}" for m in messages])
        return "ok"

    Agent(model=FunctionModel(record)).run(
        [
            Message(role="user", content="hi"),
            {"role": "assistant", "content": "hello"},
            Message(role="user", content="again"),
        ]
    )
    assert seen == [["user:hi", "assistant:hello", "user:again"]]


def test_system_message_parts_and_override() -> None:
    seen: list[str] = []

    def record(messages: list[Message], tools: object) -> str:
        seen.append(messages[0].text() if messages[0].role == "system" else "")
        return "ok"

    Agent(
        model=FunctionModel(record),
        description="You are a pilot.",
        instructions=["Be brief.", "Be kind."],
        expected_output="A haiku.",
        additional_context="It is night.",
        markdown=True,
    ).run("x")
    Agent(model=FunctionModel(record), system_message="Only this.", instructions="ignored").run("x")
    Agent(
        model=FunctionModel(record), instructions=lambda agent: f"Agent {agent.name}", name="n"
    ).run("x")
    built, override, from_callable = seen
    for part in (
        "You are a pilot.",
        "- Be brief.",
        "- Be kind.",
        "A haiku.",
        "It is night.",
        "markdown",
    ):
        assert part in built
    assert override == "Only this."
    assert from_callable == "Agent n"


def test_get_last_run_output_returns_the_latest_run() -> None:
    agent = Agent(model=FunctionModel(echo))
    agent.run("First query")
    second = agent.run("Second query")
    assert agent.get_last_run_output() is second
    other = agent.run("in another session", session_id="elsewhere")
    assert agent.get_last_run_output(session_id="elsewhere") is other
    assert Agent(model=FunctionModel(echo)).get_last_run_output() is None


def test_output_round_trips_through_json() -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    out = Agent(model=TestModel(), tools=[add]).run("x", metadata={"source": "api"})
    again = RunOutput.from_dict(__import__("json").loads(out.to_json()))
    assert again.to_dict() == out.to_dict()
    assert again.status is RunStatus.completed
    assert again.tools[0].tool_name == "add"
    assert again.metadata == {"source": "api"}


def test_debug_mode_logs_the_run(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG", logger="pilothouse"):
        Agent(model=FunctionModel(echo)).run("quiet")
        assert not any("quiet" in r.getMessage() for r in caplog.records)
        Agent(model=FunctionModel(echo)).run("loud", debug_mode=True)
    messages = [r.getMessage() for r in caplog.records]
    assert any("user: loud" in m for m in messages)
    assert any("assistant: echo: loud" in m for m in messages)


def test_media_go_with_the_user_message_the_input_and_the_tools(tmp_path: Path) -> None:
    from pilothouse.media import File, Image

    picture = tmp_path / "cat.png"
    picture.write_bytes(b"\x89PNG fake")
    seen: list[Message] = []
    tool_saw: list[object] = []

    def count_images(images: list[Image]) -> int:
        """Count the images of the run."""
        tool_saw.extend(images)
        return len(images)

    def decide(messages: list[Message], tools: object) -> object:
        seen.append(messages[-1])
        if messages[-1].role == "tool":
            return "done"
        return [ToolCall(name="count_images")]

    image = Image(filepath=picture)
    doc = File(content=b"%PDF-1.4", name="doc.pdf")
    out = Agent(model=FunctionModel(decide), tools=[count_images]).run(
        "Describe this", images=[image], files=[doc]
    )
    assert seen[0].images == [image] and seen[0].files == [doc]
    assert out.input is not None and out.input.images == [image] and out.input.files == [doc]
    assert tool_saw == [image]
    assert out.tools[0].result == "1"
    assert doc.get_mime_type() == "application/pdf" and image.get_mime_type() == "image/png"


def test_bad_media_arguments_raise_at_once() -> None:
    from pilothouse.media import Image

    agent = Agent(model=FunctionModel(echo))
    with pytest.raises(TypeError, match=r"images must be a list of pilothouse.media.Image"):
        agent.run("x", images=["cat.png"])
    with pytest.raises(ValueError, match="exactly one of url=, filepath= or content="):
        Image()
    with pytest.raises(ValueError, match="no such file"):
        Image(filepath="/nonexistent/cat.png")
