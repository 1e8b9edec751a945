"""The spans of a run: names, kinds, the tree, GenAI attributes, errors, pause and continue."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otel_recorder import Recorded

from pilothouse import Agent, RunStatus, tool
from pilothouse.db import InMemoryDb
from pilothouse.exceptions import ContinueRunError, ModelProviderError
from pilothouse.models import ModelResponse, ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel, TestModel
from pilothouse.run.metrics import Usage
from pilothouse.run.output import RunOutput

pytestmark = pytest.mark.timeout(30)


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def get_time(city: str) -> str:
    """Get the local time in a city."""
    return f"Noon in {city}"


def two_tools_then_answer(messages: list[Message], tools: Any) -> ModelResponse:
    """Call both tools in one response, then answer from their results."""
    if messages[-1].role == "tool":
        return ModelResponse(content="Sunny, at noon.", usage=Usage(30, 4, cache_read_tokens=8))
    calls = [
        ToolCall(name="get_weather", arguments={"city": "Paris"}),
        ToolCall(name="get_time", arguments={"city": "Paris"}),
    ]
    return ModelResponse(tool_calls=calls, usage=Usage(12, 9, reasoning_tokens=3))


def tool_agent(**kwargs: Any) -> Agent:
    model = FunctionModel(two_tools_then_answer, model_id="fake-1")
    return Agent(
        name="weather",
        description="Answers weather questions",
        model=model,
        tools=[get_weather, get_time],
        **kwargs,
    )


def test_a_run_with_two_tool_calls_makes_the_span_tree(otel: Recorded) -> None:
    agent = tool_agent()
    out = agent.run("Weather and time in Paris?", session_id="conv-1")
    assert out.status is RunStatus.completed

    run = otel.one("invoke_agent")
    chats = otel.named("chat")
    tools = otel.named("execute_tool")
    assert run.name == "invoke_agent weather"
    assert run.kind is SpanKind.INTERNAL
    assert run.parent is None
    assert [s.name for s in chats] == ["chat fake-1", "chat fake-1"]
    assert all(s.kind is SpanKind.CLIENT for s in chats)
    assert sorted(s.name for s in tools) == ["execute_tool get_time", "execute_tool get_weather"]
    assert all(s.kind is SpanKind.INTERNAL for s in tools)
    # One trace, every step a child of the run's span.
    assert len(otel.spans()) == 5
    for child in (*chats, *tools):
        assert child.context.trace_id == run.context.trace_id
        assert child.parent is not None and child.parent.span_id == run.context.span_id

    assert dict(run.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "function",
        "gen_ai.request.model": "fake-1",
        "gen_ai.agent.id": agent.id,
        "gen_ai.agent.name": "weather",
        "gen_ai.agent.description": "Answers weather questions",
        "gen_ai.conversation.id": "conv-1",
        "pilothouse.run.id": out.run_id,
        "pilothouse.run.status": "COMPLETED",
        # The run's totals over its two model requests.
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 13,
        "gen_ai.usage.cache_read.input_tokens": 8,
        "gen_ai.usage.reasoning.output_tokens": 3,
    }
    first = dict(chats[0].attributes or {})
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.provider.name"] == "function"
    assert first["gen_ai.request.model"] == "fake-1"
    assert first["gen_ai.response.model"] == "fake-1"
    assert first["gen_ai.conversation.id"] == "conv-1"
    assert first["gen_ai.usage.input_tokens"] == 12
    assert first["gen_ai.usage.output_tokens"] == 9
    assert first["gen_ai.usage.reasoning.output_tokens"] == 3
    assert first["gen_ai.response.time_to_first_chunk"] >= 0
    # The model adapters do not report a finish reason yet: the attribute is left out.
    assert "gen_ai.response.finish_reasons" not in first
    assert dict(chats[1].attributes or {})["gen_ai.usage.cache_read.input_tokens"] == 8

    by_name = {e.tool_name: e for e in out.tools}
    for span in tools:
        attributes = dict(span.attributes or {})
        name = attributes["gen_ai.tool.name"]
        assert span.name == f"execute_tool {name}"
        assert attributes["gen_ai.operation.name"] == "execute_tool"
        assert attributes["gen_ai.tool.call.id"] == by_name[name].tool_call_id
        assert attributes["gen_ai.tool.type"] == "function"
        assert attributes["gen_ai.tool.description"].startswith("Get the")
        assert span.status.status_code is StatusCode.UNSET
    # The tools ran between the two model requests.
    assert chats[0].end_time <= min(s.start_time for s in tools)
    assert max(s.end_time for s in tools) <= chats[1].start_time


def test_span_context_of_the_run_is_kept_on_its_output(otel: Recorded) -> None:
    out = tool_agent().run("Weather?")
    run = otel.one("invoke_agent")
    assert out.trace_context == {
        "traceparent": f"00-{run.context.trace_id:032x}-{run.context.span_id:016x}-"
        f"{int(run.context.trace_flags):02x}"
    }
    assert RunOutput.from_dict(out.to_dict()).trace_context == out.trace_context


def test_an_agent_without_a_name_gives_the_bare_operation_name(otel: Recorded) -> None:
    Agent(model=TestModel(text="hi")).run("Hello")
    run = otel.one("invoke_agent")
    assert run.name == "invoke_agent"
    assert "gen_ai.agent.name" not in (run.attributes or {})


def failing(messages: list[Message], tools: Any) -> str:
    raise ModelProviderError("the provider is down", status_code=500, retryable=False)


def test_a_failed_run_sets_the_error_status_and_type(otel: Recorded) -> None:
    agent = Agent(name="broken", model=FunctionModel(failing), retries=0)
    out = agent.run("Hello")
    assert out.status is RunStatus.error

    run = otel.one("invoke_agent")
    chat = otel.one("chat")
    assert run.status.status_code is StatusCode.ERROR
    assert "the provider is down" in (run.status.description or "")
    assert dict(run.attributes or {})["error.type"] == "500"
    assert dict(run.attributes or {})["pilothouse.run.status"] == "ERROR"
    assert chat.status.status_code is StatusCode.ERROR
    assert dict(chat.attributes or {})["error.type"] == "500"
    assert chat.parent is not None and chat.parent.span_id == run.context.span_id


def test_an_error_without_a_status_code_is_named_by_its_class(otel: Recorded) -> None:
    def broken(messages: list[Message], tools: Any) -> str:
        raise RuntimeError("bug in the model")

    out = Agent(model=FunctionModel(broken)).run("Hello")
    assert out.status is RunStatus.error
    # The model's own exception on its request; the run ends with the error it became.
    assert dict(otel.one("chat").attributes or {})["error.type"] == "RuntimeError"
    assert dict(otel.one("invoke_agent").attributes or {})["error.type"] == "ModelProviderError"


def test_each_retried_attempt_is_its_own_chat_span(otel: Recorded) -> None:
    attempts: list[int] = []

    def busy_once(messages: list[Message], tools: Any) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelProviderError("busy", status_code=503)
        return "ok"

    agent = Agent(model=FunctionModel(busy_once), retries=1, delay_between_retries=0.0)
    assert agent.run("Hello").status is RunStatus.completed
    chats = otel.named("chat")
    assert len(chats) == 2
    assert chats[0].status.status_code is StatusCode.ERROR
    assert dict(chats[0].attributes or {})["error.type"] == "503"
    assert chats[1].status.status_code is StatusCode.UNSET
    assert otel.one("invoke_agent").status.status_code is StatusCode.UNSET


def test_a_failing_tool_marks_its_span_and_the_run_goes_on(otel: Recorded) -> None:
    def explode(city: str) -> str:
        """Fail."""
        raise ValueError(f"no data for {city}")

    agent = Agent(model=TestModel(text="Sorry."), tools=[explode])
    out = agent.run("Go")
    assert out.status is RunStatus.completed
    assert out.tools[0].tool_call_error
    span = otel.one("execute_tool explode")
    assert span.status.status_code is StatusCode.ERROR
    assert "no data for" in (span.status.description or "")
    assert dict(span.attributes or {})["error.type"] == "ValueError"
    assert otel.one("invoke_agent").status.status_code is StatusCode.UNSET


def test_invalid_arguments_are_an_error_of_the_tool_span(otel: Recorded) -> None:
    def bad_arguments(messages: list[Message], tools: Any) -> Any:
        if messages[-1].role == "tool":
            return "done"
        return ToolCall(name="get_weather", arguments={"town": "Paris"})

    Agent(model=FunctionModel(bad_arguments), tools=[get_weather]).run("Go")
    span = otel.one("execute_tool get_weather")
    assert dict(span.attributes or {})["error.type"] == "ToolArgumentsError"


@tool(requires_confirmation=True)
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


def delete_then_answer(messages: list[Message], tools: Any) -> Any:
    if messages[-1].role == "tool":
        return "Deleted."
    return ToolCall(name="delete_file", arguments={"path": "/tmp/x"})


def test_a_continued_run_links_to_the_paused_one(otel: Recorded) -> None:
    agent = Agent(name="files", model=FunctionModel(delete_then_answer), tools=[delete_file])
    paused = agent.run("Delete /tmp/x", session_id="s-pause")
    assert paused.status is RunStatus.paused
    first = otel.one("invoke_agent")
    assert dict(first.attributes or {})["pilothouse.run.status"] == "PAUSED"
    assert first.status.status_code is StatusCode.UNSET
    assert otel.named("execute_tool") == []  # nothing ran before the confirmation

    paused.tools[0].confirmed = True
    done = agent.continue_run(paused)
    assert done.status is RunStatus.completed
    runs = otel.named("invoke_agent")
    assert len(runs) == 2
    second = runs[1]
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    assert second.links[0].context.trace_id == first.context.trace_id
    attributes = dict(second.attributes or {})
    assert attributes["pilothouse.run.continued"] is True
    assert attributes["pilothouse.run.id"] == paused.run_id
    assert attributes["gen_ai.conversation.id"] == "s-pause"
    tool_span = otel.one("execute_tool delete_file")
    assert tool_span.parent is not None and tool_span.parent.span_id == second.context.span_id
    # The continued run now carries the second execution's context, for a later continue.
    assert done.trace_context is not None
    assert f"{second.context.span_id:016x}" in done.trace_context["traceparent"]


def test_a_run_continued_from_the_store_links_through_the_stored_context(otel: Recorded) -> None:
    db = InMemoryDb()
    agent = Agent(name="files", model=FunctionModel(delete_then_answer), tools=[delete_file], db=db)
    paused = agent.run("Delete /tmp/x", session_id="s-store")
    first = otel.one("invoke_agent")
    answer = paused.tools[0]
    answer.confirmed = True
    # As another process would: by id, with the answers, the run read from the store.
    done = agent.continue_run(run_id=paused.run_id, updated_tools=[answer], session_id="s-store")
    assert done.status is RunStatus.completed
    second = otel.named("invoke_agent")[1]
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    stored = agent.get_run_output(paused.run_id)
    assert stored is not None and stored.trace_context == done.trace_context


def test_a_refused_continue_is_an_error_span(otel: Recorded) -> None:
    db = InMemoryDb()
    agent = Agent(model=TestModel(text="hi"), db=db)
    out = agent.run("Hello", session_id="s-done")
    with pytest.raises(ContinueRunError):
        agent.continue_run(run_id=out.run_id, session_id="s-done")
    refused = otel.named("invoke_agent")[1]
    assert refused.status.status_code is StatusCode.ERROR
    assert dict(refused.attributes or {})["error.type"] == "ContinueRunError"


async def test_a_stream_closed_mid_request_ends_the_chat_span(otel: Recorded) -> None:
    import asyncio

    never = asyncio.Event()

    async def slow(messages: list[Message], tools: Any) -> Any:
        yield "Hel"
        await never.wait()

    agent = Agent(model=FunctionModel(stream_function=slow))
    stream = agent.arun("Hello", stream=True)
    first = await asyncio.wait_for(stream.__anext__(), 5)
    assert first.content == "Hel"
    await stream.aclose()
    assert stream.output.status is RunStatus.cancelled
    chat = otel.one("chat")
    assert dict(chat.attributes or {})["error.type"] == "cancelled"
    run = otel.one("invoke_agent")
    assert dict(run.attributes or {})["pilothouse.run.status"] == "CANCELLED"
    assert run.status.status_code is StatusCode.UNSET


def test_a_sync_stream_traces_every_step(otel: Recorded, caplog: pytest.LogCaptureFixture) -> None:
    # A sync stream runs each step in a new task: no context may be left attached across them.
    events = list(tool_agent().run("Weather?", stream=True, stream_events=True))
    assert events[-1].event == "RunCompleted"
    assert len(otel.named("chat")) == 2
    assert len(otel.named("execute_tool")) == 2
    assert "Failed to detach context" not in caplog.text


def test_structured_output_is_recorded_as_the_output_type(otel: Recorded) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    Agent(model=TestModel(), output_schema=City).run("A city?")
    assert dict(otel.one("invoke_agent").attributes or {})["gen_ai.output.type"] == "json"
    assert dict(otel.one("chat").attributes or {})["gen_ai.output.type"] == "json"


def test_json_of_the_span_tree_is_printable(otel: Recorded) -> None:
    # The exporter's own JSON form works on our spans (what the console exporter prints).
    tool_agent().run("Weather?")
    for span in otel.spans():
        assert json.loads(span.to_json())["name"] == span.name


async def test_a_run_past_its_timeout_is_an_error_span(otel: Recorded) -> None:
    import asyncio

    async def slow(messages: list[Message], tools: Any) -> str:
        await asyncio.sleep(10)
        return "late"

    out = await Agent(model=FunctionModel(slow)).arun("Hello", timeout=0.2)
    assert out.status is RunStatus.error
    run = otel.one("invoke_agent")
    assert run.status.status_code is StatusCode.ERROR
    assert dict(run.attributes or {})["error.type"] == "RunTimeoutError"
    # The model request it cut short ends with the run's error.
    assert dict(otel.one("chat").attributes or {})["error.type"] == "RunTimeoutError"
