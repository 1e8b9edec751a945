"""Overhead benchmark for pydantic-ai, with a fake model that answers instantly.

Run by ``benchmarks/overhead.py`` under ``benchmarks/.venv-others/bin/python``; prints one JSON
object. The fake is pydantic-ai's own ``pydantic_ai.models.function.FunctionModel``, given an
``async`` function for requests (a plain ``def`` would be run in a worker thread, a cost of the
fake rather than of the framework) and an async generator for streamed requests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator
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
# Before the framework import, so no first-run banner or instrumentation is set up.
h.apply_quiet_env()
h.block_network()

from importlib.metadata import version  # noqa: E402

from pydantic_ai import Agent, Tool  # noqa: E402
from pydantic_ai.messages import (  # noqa: E402
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel  # noqa: E402
from pydantic_ai.usage import RequestUsage  # noqa: E402

TOOL_CALLS = [0]


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    TOOL_CALLS[0] += 1
    return f"Sunny in {city}"


def tool_result(messages: list[ModelMessage]) -> str | None:
    """The content of the tool result in the last request, if there is one."""
    last = messages[-1]
    if isinstance(last, ModelRequest):
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return str(part.content)
    return None


def usage() -> RequestUsage:
    """The token usage every fake reply reports."""
    return RequestUsage(input_tokens=10, output_tokens=5)


async def answer_text(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Text scenario: always the final answer."""
    return ModelResponse(parts=[TextPart(h.TEXT_ANSWER)], usage=usage())


async def answer_tool(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Tool scenario: call get_weather first, then answer from its result."""
    result = tool_result(messages)
    if result is not None:
        # Answering only from the real tool result makes a skipped tool fail the assertions.
        text = h.TOOL_ANSWER if result == h.TOOL_RESULT else "wrong tool result"
        return ModelResponse(parts=[TextPart(text)], usage=usage())
    call = ToolCallPart("get_weather", {"city": "Paris"}, tool_call_id="call_1")
    return ModelResponse(parts=[call], usage=usage())


async def stream_text(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
    """Streamed text scenario: the final answer as one chunk."""
    yield h.TEXT_ANSWER


async def stream_tool(
    messages: list[ModelMessage], info: AgentInfo
) -> AsyncIterator[str | dict[int, DeltaToolCall]]:
    """Streamed tool scenario: the tool call as one chunk, then the answer as one chunk."""
    result = tool_result(messages)
    if result is not None:
        yield h.TOOL_ANSWER if result == h.TOOL_RESULT else "wrong tool result"
    else:
        yield {0: DeltaToolCall("get_weather", '{"city": "Paris"}', tool_call_id="call_1")}


class Slow:
    """Text answer after an asynchronous wait, for the concurrency scenario."""

    latency_s = 0.05

    @classmethod
    async def answer(cls, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        """Wait, then answer; the wait is the simulated model latency."""
        await asyncio.sleep(cls.latency_s)
        return ModelResponse(parts=[TextPart(h.TEXT_ANSWER)], usage=usage())


TEXT_MODEL = FunctionModel(answer_text, stream_function=stream_text)
TOOL_MODEL = FunctionModel(answer_tool, stream_function=stream_tool)
SLOW_MODEL = FunctionModel(Slow.answer)
PREPARED_TOOL = Tool(get_weather)


def make_agent(model: FunctionModel = TEXT_MODEL) -> Agent[None, str]:
    """One agent with one tool, from the plain function."""
    return Agent(model, name="bench", tools=[get_weather])


def make_agent_prepared() -> Agent[None, str]:
    """One agent with one tool made once beforehand with ``Tool(...)``."""
    return Agent(TEXT_MODEL, name="bench", tools=[PREPARED_TOOL])


def main() -> None:
    """Run every scenario and print the JSON result."""
    s = h.Settings.from_argv()
    Slow.latency_s = s.latency_s
    text_agent, tool_agent = make_agent(TEXT_MODEL), make_agent(TOOL_MODEL)
    slow_agent = make_agent(SLOW_MODEL)

    def text_sync() -> None:
        assert text_agent.run_sync(h.TEXT_PROMPT).output == h.TEXT_ANSWER

    def tool_sync() -> None:
        before = TOOL_CALLS[0]
        assert tool_agent.run_sync(h.TOOL_PROMPT).output == h.TOOL_ANSWER
        assert TOOL_CALLS[0] == before + 1

    async def text_async() -> None:
        assert (await text_agent.run(h.TEXT_PROMPT)).output == h.TEXT_ANSWER

    async def tool_async() -> None:
        before = TOOL_CALLS[0]
        assert (await tool_agent.run(h.TOOL_PROMPT)).output == h.TOOL_ANSWER
        assert TOOL_CALLS[0] == before + 1

    async def stream(agent: Agent[None, str], prompt: str, answer: str, tool_calls: int) -> None:
        before = TOOL_CALLS[0]
        events = 0
        final: Any = None
        async with agent.run_stream_events(prompt) as stream:
            async for event in stream:
                events += 1
                final = event
        # The last event of run_stream_events carries the run result.
        assert final.result.output == answer and events > 1
        assert TOOL_CALLS[0] == before + tool_calls

    async def text_stream() -> None:
        await stream(text_agent, h.TEXT_PROMPT, h.TEXT_ANSWER, 0)

    async def tool_stream() -> None:
        await stream(tool_agent, h.TOOL_PROMPT, h.TOOL_ANSWER, 1)

    async def slow_run() -> None:
        assert (await slow_agent.run(h.TEXT_PROMPT)).output == h.TEXT_ANSWER

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
        import_statement="from pydantic_ai import Agent",
    )
    results = h.run_scenarios(scenarios, s)
    h.emit(
        {
            "framework": "pydantic-ai",
            "version": version("pydantic-ai-slim"),
            "quick": s.quick,
            "stream_api": "async: agent.run_stream_events()",
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
