"""Overhead benchmark for openai-agents, with a fake model that answers instantly.

Run by ``benchmarks/overhead.py`` under ``benchmarks/.venv-others/bin/python``; prints one JSON
object. The fake implements ``agents.models.interface.Model``: ``get_response`` returns a
``ModelResponse`` of Responses-API output items with usage, and ``stream_response`` yields the
Responses-API stream events a real model emits for the same reply (created, item added, deltas,
item done, completed). Events are built with ``model_construct``, as the OpenAI client builds
them from server-sent events, so the fake spends no time validating its own output.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_harness() -> ModuleType:
    """Import ``benchmarks/harness.py`` by path (this script runs under another venv)."""
    path = Path(__file__).resolve().parent.parent / "harness.py"
    spec = importlib.util.spec_from_file_location("bench_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


h = _load_harness()
# Before the framework import, so the tracing exporter is disabled from the start.
h.apply_quiet_env()
h.block_network()

from agents import (  # noqa: E402
    Agent,
    ModelResponse,
    Runner,
    Usage,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import Model  # noqa: E402
from agents.version import __version__  # noqa: E402
from openai.types.responses import (  # noqa: E402
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_usage import (  # noqa: E402
    InputTokensDetails,
    OutputTokensDetails,
)

set_tracing_disabled(True)

TOOL_CALLS = [0]


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    TOOL_CALLS[0] += 1
    return f"Sunny in {city}"


OutputItem = ResponseOutputMessage | ResponseFunctionToolCall


def text_item(text: str) -> ResponseOutputMessage:
    """A completed assistant message output item."""
    part = ResponseOutputText.model_construct(
        text=text, type="output_text", annotations=[], logprobs=[]
    )
    return ResponseOutputMessage.model_construct(
        id="msg_1", type="message", role="assistant", status="completed", content=[part]
    )


def answer_text(items: list[Any]) -> OutputItem:
    """Text scenario: always the final answer."""
    return text_item(h.TEXT_ANSWER)


def answer_tool(items: list[Any]) -> OutputItem:
    """Tool scenario: call get_weather first, then answer from its result."""
    last = items[-1]
    if isinstance(last, dict) and last.get("type") == "function_call_output":
        # Answering only from the real tool result makes a skipped tool fail the assertions.
        return text_item(h.TOOL_ANSWER if last.get("output") == h.TOOL_RESULT else "wrong")
    return ResponseFunctionToolCall.model_construct(
        id="fc_1",
        call_id="call_1",
        type="function_call",
        name="get_weather",
        arguments='{"city": "Paris"}',
        status="completed",
    )


def response_usage() -> ResponseUsage:
    """The token usage every fake reply reports."""
    return ResponseUsage.model_construct(
        input_tokens=10,
        output_tokens=5,
        total_tokens=15,
        input_tokens_details=InputTokensDetails.model_construct(cached_tokens=0),
        output_tokens_details=OutputTokensDetails.model_construct(reasoning_tokens=0),
    )


def fake_response(status: str, output: list[Any], usage: ResponseUsage | None) -> Response:
    """The ``Response`` carried by the created and completed stream events."""
    return Response.model_construct(
        id="resp_1",
        created_at=0,
        model="fake",
        object="response",
        output=output,
        tool_choice="auto",
        tools=[],
        parallel_tool_calls=True,
        status=status,
        usage=usage,
    )


def stream_events(item: OutputItem) -> list[Any]:
    """The Responses-API events that stream ``item`` as one chunk."""
    response = fake_response("in_progress", [], None)
    events: list[Any] = [
        ResponseCreatedEvent.model_construct(
            type="response.created", response=response, sequence_number=0
        ),
        ResponseOutputItemAddedEvent.model_construct(
            type="response.output_item.added", item=item, output_index=0, sequence_number=1
        ),
    ]
    if isinstance(item, ResponseFunctionToolCall):
        events += [
            ResponseFunctionCallArgumentsDeltaEvent.model_construct(
                type="response.function_call_arguments.delta",
                item_id=item.id,
                output_index=0,
                delta=item.arguments,
                sequence_number=2,
            ),
            ResponseFunctionCallArgumentsDoneEvent.model_construct(
                type="response.function_call_arguments.done",
                item_id=item.id,
                output_index=0,
                arguments=item.arguments,
                name=item.name,
                sequence_number=3,
            ),
        ]
    else:
        part = item.content[0]
        common = {"item_id": item.id, "output_index": 0, "content_index": 0}
        events += [
            ResponseContentPartAddedEvent.model_construct(
                type="response.content_part.added", part=part, sequence_number=2, **common
            ),
            ResponseTextDeltaEvent.model_construct(
                type="response.output_text.delta",
                delta=part.text,
                logprobs=[],
                sequence_number=3,
                **common,
            ),
            ResponseTextDoneEvent.model_construct(
                type="response.output_text.done",
                text=part.text,
                logprobs=[],
                sequence_number=4,
                **common,
            ),
            ResponseContentPartDoneEvent.model_construct(
                type="response.content_part.done", part=part, sequence_number=5, **common
            ),
        ]
    done = fake_response("completed", [item], response_usage())
    events += [
        ResponseOutputItemDoneEvent.model_construct(
            type="response.output_item.done", item=item, output_index=0, sequence_number=6
        ),
        ResponseCompletedEvent.model_construct(
            type="response.completed", response=done, sequence_number=7
        ),
    ]
    return events


class FakeModel(Model):
    """An openai-agents model whose replies come from a Python function."""

    def __init__(self, respond: Callable[[list[Any]], OutputItem], latency_s: float = 0.0):
        self.respond = respond
        self.latency_s = latency_s

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        """Answer a request with the whole reply, after the simulated latency if any."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
        return ModelResponse(output=[self.respond(items)], usage=usage, response_id=None)

    async def stream_response(  # type: ignore[override]
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Stream the reply as the Responses-API events of one chunk."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        for event in stream_events(self.respond(items)):
            yield event


TEXT_MODEL = FakeModel(answer_text)
TOOL_MODEL = FakeModel(answer_tool)
SLOW_MODEL = FakeModel(answer_text)
PREPARED_TOOL = function_tool(get_weather)


def make_agent(model: FakeModel = TEXT_MODEL) -> Agent[Any]:
    """One agent with one tool, from the plain function.

    The Agent accepts only tool objects, so this includes ``function_tool(...)``: the other
    frameworks are handed the plain function and do the same schema work themselves.
    """
    return Agent(name="bench", model=model, tools=[function_tool(get_weather)])


def make_agent_prepared() -> Agent[Any]:
    """One agent with one tool made once beforehand with ``function_tool(...)``."""
    return Agent(name="bench", model=TEXT_MODEL, tools=[PREPARED_TOOL])


def main() -> None:
    """Run every scenario and print the JSON result."""
    s = h.Settings.from_argv()
    SLOW_MODEL.latency_s = s.latency_s
    text_agent, tool_agent = make_agent(TEXT_MODEL), make_agent(TOOL_MODEL)
    slow_agent = make_agent(SLOW_MODEL)

    def text_sync() -> None:
        assert Runner.run_sync(text_agent, h.TEXT_PROMPT).final_output == h.TEXT_ANSWER

    def tool_sync() -> None:
        before = TOOL_CALLS[0]
        assert Runner.run_sync(tool_agent, h.TOOL_PROMPT).final_output == h.TOOL_ANSWER
        assert TOOL_CALLS[0] == before + 1

    async def text_async() -> None:
        assert (await Runner.run(text_agent, h.TEXT_PROMPT)).final_output == h.TEXT_ANSWER

    async def tool_async() -> None:
        before = TOOL_CALLS[0]
        assert (await Runner.run(tool_agent, h.TOOL_PROMPT)).final_output == h.TOOL_ANSWER
        assert TOOL_CALLS[0] == before + 1

    async def stream(agent: Agent[Any], prompt: str, answer: str, tool_calls: int) -> None:
        before = TOOL_CALLS[0]
        result = Runner.run_streamed(agent, prompt)
        events = 0
        async for _ in result.stream_events():
            events += 1
        assert result.final_output == answer and events > 1
        assert TOOL_CALLS[0] == before + tool_calls

    async def text_stream() -> None:
        await stream(text_agent, h.TEXT_PROMPT, h.TEXT_ANSWER, 0)

    async def tool_stream() -> None:
        await stream(tool_agent, h.TOOL_PROMPT, h.TOOL_ANSWER, 1)

    async def slow_run() -> None:
        assert (await Runner.run(slow_agent, h.TEXT_PROMPT)).final_output == h.TEXT_ANSWER

    scenarios = h.Scenarios(
        construct=make_agent,
        construct_prepared=make_agent_prepared,
        text_sync=text_sync,
        tool_sync=tool_sync,
        text_async=text_async,
        tool_async=tool_async,
        text_stream=text_stream,
        tool_stream=tool_stream,
        slow_run=slow_run,
        import_statement="from agents import Agent",
    )
    results = h.run_scenarios(scenarios, s)
    h.emit(
        {
            "framework": "openai-agents",
            "version": __version__,
            "quick": s.quick,
            "stream_api": "async: Runner.run_streamed(...).stream_events()",
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
