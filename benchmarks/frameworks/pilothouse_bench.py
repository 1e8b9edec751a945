"""Overhead benchmark for Pilothouse, with a fake model that answers instantly.

Run by ``benchmarks/overhead.py`` with the project's own interpreter; prints one JSON object.
The fake is ``pilothouse.models.test.FunctionModel``: a function decides each turn and returns
a ``ModelResponse`` with a fixed usage, which the model sends as one chunk, as the other
frameworks' fakes do.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load_harness() -> ModuleType:
    """Import ``benchmarks/harness.py`` by path (the scripts are not a package)."""
    path = Path(__file__).resolve().parent.parent / "harness.py"
    spec = importlib.util.spec_from_file_location("bench_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


h = _load_harness()
# Before the framework import, as for the other frameworks.
h.apply_quiet_env()
h.block_network()

import pilothouse  # noqa: E402
from pilothouse import Agent, tool  # noqa: E402
from pilothouse.models import Message, ModelResponse, ToolCall, ToolDefinition  # noqa: E402
from pilothouse.models.test import FunctionModel  # noqa: E402
from pilothouse.run.metrics import Usage  # noqa: E402

TOOL_CALLS = [0]


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    TOOL_CALLS[0] += 1
    return f"Sunny in {city}"


def usage() -> Usage:
    """The token usage every fake reply reports (a new object, as a provider would send)."""
    return Usage(input_tokens=10, output_tokens=5)


def answer_text(messages: list[Message], tools: list[ToolDefinition]) -> ModelResponse:
    """Text scenario: always the final answer."""
    return ModelResponse(content=h.TEXT_ANSWER, usage=usage())


def answer_tool(messages: list[Message], tools: list[ToolDefinition]) -> ModelResponse:
    """Tool scenario: call get_weather first, then answer from its result."""
    last = messages[-1]
    if last.role == "tool":
        # Answering only from the real tool result makes a skipped tool fail the assertions.
        text = h.TOOL_ANSWER if last.content == h.TOOL_RESULT else "wrong tool result"
        return ModelResponse(content=text, usage=usage())
    call = ToolCall(name="get_weather", arguments={"city": "Paris"})
    return ModelResponse(tool_calls=[call], usage=usage())


class Slow:
    """Text answer after an asynchronous wait, for the concurrency scenario."""

    latency_s = 0.05

    @classmethod
    async def answer(cls, messages: list[Message], tools: list[ToolDefinition]) -> ModelResponse:
        """Wait, then answer; the wait is the simulated model latency."""
        await asyncio.sleep(cls.latency_s)
        return ModelResponse(content=h.TEXT_ANSWER, usage=usage())


TEXT_MODEL = FunctionModel(answer_text)
TOOL_MODEL = FunctionModel(answer_tool)
SLOW_MODEL = FunctionModel(Slow.answer)
PREPARED_TOOL = tool(get_weather)


def make_agent(model: FunctionModel = TEXT_MODEL) -> Agent:
    """One agent with one tool, from the plain function."""
    return Agent(model=model, name="bench", tools=[get_weather])


def make_agent_prepared() -> Agent:
    """One agent with one tool made once beforehand with ``tool(...)``."""
    return Agent(model=TEXT_MODEL, name="bench", tools=[PREPARED_TOOL])


def main() -> None:
    """Run every scenario and print the JSON result."""
    s = h.Settings.from_argv()
    Slow.latency_s = s.latency_s
    text_agent, tool_agent = make_agent(TEXT_MODEL), make_agent(TOOL_MODEL)
    slow_agent = make_agent(SLOW_MODEL)

    scenarios = h.run_arun_scenarios(
        text_agent=text_agent,
        tool_agent=tool_agent,
        slow_agent=slow_agent,
        tool_calls=TOOL_CALLS,
        construct=make_agent,
        construct_prepared=make_agent_prepared,
        import_statement="from pilothouse import Agent",
    )
    results = h.run_scenarios(scenarios, s)
    h.emit(
        {
            "framework": "pilothouse",
            "version": pilothouse.__version__,
            "quick": s.quick,
            "stream_api": "async: agent.arun(stream=True, stream_events=True)",
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
