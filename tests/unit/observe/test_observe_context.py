"""Context propagation: tools and the model run inside their spans, a run joins its caller's
trace, and a server continues an incoming ``traceparent``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanContext
from otel_recorder import Recorded

from pilothouse import Agent, observe
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel

pytestmark = pytest.mark.timeout(30)

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_ID:016x}-01"


def current() -> SpanContext:
    return trace.get_current_span().get_span_context()


class Seen:
    """The span context each tool (and the model) saw as current, and the thread it ran on."""

    def __init__(self) -> None:
        self.contexts: dict[str, SpanContext] = {}
        self.threads: dict[str, int] = {}

    def record(self, name: str) -> str:
        self.contexts[name] = current()
        self.threads[name] = threading.get_ident()
        return f"{name} done"


def agent_with(seen: Seen, *names: str) -> Agent:
    def sync_tool(city: str) -> str:
        """A sync tool."""
        return seen.record("sync_tool")

    async def async_tool(city: str) -> str:
        """An async tool."""
        await asyncio.sleep(0)
        return seen.record("async_tool")

    def model(messages: list[Message], tools: Any) -> Any:
        seen.record(f"model{len(messages)}")
        if messages[-1].role == "tool":
            return "done"
        return [ToolCall(name=name, arguments={"city": "Paris"}) for name in names]

    chosen = [t for t in (sync_tool, async_tool) if t.__name__ in names]
    return Agent(model=FunctionModel(model), tools=chosen)


def span_context_of(otel: Recorded, name: str) -> SpanContext:
    return otel.one(name).context


async def test_sync_and_async_tools_run_inside_their_spans(otel: Recorded) -> None:
    seen = Seen()
    await agent_with(seen, "sync_tool", "async_tool").arun("Go")
    assert seen.contexts["sync_tool"] == span_context_of(otel, "execute_tool sync_tool")
    assert seen.contexts["async_tool"] == span_context_of(otel, "execute_tool async_tool")
    # The sync tool ran in a worker thread, and the span went with it.
    assert seen.threads["sync_tool"] != threading.get_ident()


def test_a_sync_tool_called_inline_runs_inside_its_span(otel: Recorded) -> None:
    seen = Seen()
    agent_with(seen, "sync_tool").run("Go")
    # One call in a sync run: the tool runs on the run's own thread, without a worker.
    assert seen.threads["sync_tool"] == threading.get_ident()
    assert seen.contexts["sync_tool"] == span_context_of(otel, "execute_tool sync_tool")


def test_the_model_works_inside_its_chat_span(otel: Recorded) -> None:
    seen = Seen()
    agent_with(seen, "sync_tool").run("Go")
    chats = otel.named("chat")
    assert [seen.contexts["model1"], seen.contexts["model3"]] == [c.context for c in chats]


def test_nothing_stays_current_after_a_run(otel: Recorded) -> None:
    agent_with(Seen(), "sync_tool", "async_tool").run("Go")
    assert not current().is_valid


async def test_a_run_is_a_child_of_the_callers_span(otel: Recorded) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as request:
        await agent_with(Seen(), "async_tool").arun("Go")
        assert current() == request.get_span_context()
    run = otel.one("invoke_agent")
    assert run.parent is not None and run.parent.span_id == request.get_span_context().span_id
    assert run.context.trace_id == request.get_span_context().trace_id


def test_continue_trace_puts_the_run_under_the_remote_parent(otel: Recorded) -> None:
    seen = Seen()
    with observe.continue_trace({"Traceparent": TRACEPARENT, "Accept": "*/*"}):
        agent_with(seen, "sync_tool").run("Go")
    assert not current().is_valid  # detached again after the block
    run = otel.one("invoke_agent")
    assert run.context.trace_id == TRACE_ID
    assert run.parent is not None and run.parent.span_id == PARENT_ID and run.parent.is_remote
    assert seen.contexts["sync_tool"].trace_id == TRACE_ID


async def test_continue_trace_around_a_stream(otel: Recorded) -> None:
    with observe.continue_trace([("traceparent", TRACEPARENT)]):
        stream = agent_with(Seen(), "async_tool").arun("Go", stream=True)
        async for _ in stream:
            pass
    assert otel.one("invoke_agent").context.trace_id == TRACE_ID


def test_continue_trace_without_a_traceparent_starts_a_new_trace(otel: Recorded) -> None:
    with observe.continue_trace({"accept": "*/*"}):
        agent_with(Seen(), "sync_tool").run("Go")
    run = otel.one("invoke_agent")
    assert run.parent is None and run.context.trace_id != TRACE_ID
    with observe.continue_trace(None):
        pass


def test_extract_context_reads_the_w3c_header() -> None:
    context = observe.extract_context({"TRACEPARENT": TRACEPARENT})
    remote = trace.get_current_span(context).get_span_context()
    assert (remote.trace_id, remote.span_id, remote.is_remote) == (TRACE_ID, PARENT_ID, True)


def test_inject_context_in_a_tool_carries_its_span(otel: Recorded) -> None:
    sent: dict[str, str] = {}

    def call_service(city: str) -> str:
        """Call another service."""
        sent.update(observe.inject_context())
        return "ok"

    def model(messages: list[Message], tools: Any) -> Any:
        if messages[-1].role == "tool":
            return "done"
        return ToolCall(name="call_service", arguments={"city": "Paris"})

    Agent(model=FunctionModel(model), tools=[call_service]).run("Go")
    span = otel.one("execute_tool call_service").context
    assert sent["traceparent"] == f"00-{span.trace_id:032x}-{span.span_id:016x}-" + (
        f"{int(span.trace_flags):02x}"
    )
    existing = {"accept": "*/*"}
    assert observe.inject_context(existing) is existing
    assert "traceparent" not in existing  # no span is current here
