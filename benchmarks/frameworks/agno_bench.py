"""Overhead benchmark for agno, with a fake model that answers instantly.

Run by ``benchmarks/overhead.py`` under ``benchmarks/.venv-others/bin/python``; prints one JSON
object. The fake model subclasses ``agno.models.base.Model`` the way agno's provider classes
do: ``invoke``/``ainvoke``/``invoke_stream``/``ainvoke_stream`` produce a provider-shaped payload
and the ``_parse_provider_response*`` methods turn it into agno's ``ModelResponse``, with token
usage.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
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
# Before the framework import, so no telemetry client or exporter is ever configured.
h.apply_quiet_env()
h.block_network()

import agno  # noqa: E402
from agno.agent import Agent  # noqa: E402
from agno.metrics import MessageMetrics  # noqa: E402
from agno.models.base import Model  # noqa: E402
from agno.models.message import Message  # noqa: E402
from agno.models.response import ModelResponse  # noqa: E402
from agno.tools import tool  # noqa: E402

TOOL_CALLS = [0]


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    TOOL_CALLS[0] += 1
    return f"Sunny in {city}"


# A provider-shaped payload, the form a real client returns before agno parses it.
Payload = dict[str, Any]


def answer_text(messages: list[Message]) -> Payload:
    """Text scenario: always the final answer."""
    return {"content": h.TEXT_ANSWER}


def answer_tool(messages: list[Message]) -> Payload:
    """Tool scenario: call get_weather first, then answer from its result."""
    last = messages[-1]
    if last.role == "tool":
        # Answering only from the real tool result makes a skipped tool fail the assertions.
        return {"content": h.TOOL_ANSWER if last.content == h.TOOL_RESULT else "wrong tool result"}
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    return {"tool_calls": [call]}


@dataclass
class FakeModel(Model):
    """An agno model whose replies come from a Python function, optionally after a delay."""

    id: str = "fake"
    name: str = "Fake"
    provider: str = "Fake"
    respond: Callable[[list[Message]], Payload] = answer_text
    latency_s: float = 0.0

    def invoke(
        self, messages: list[Message], assistant_message: Message, **_: Any
    ) -> ModelResponse:
        """Answer a sync request."""
        return self._parse_provider_response(self.respond(messages))

    async def ainvoke(
        self, messages: list[Message], assistant_message: Message, **_: Any
    ) -> ModelResponse:
        """Answer an async request, after the simulated latency if there is one."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._parse_provider_response(self.respond(messages))

    def invoke_stream(
        self, messages: list[Message], assistant_message: Message, **_: Any
    ) -> Iterator[ModelResponse]:
        """Stream a sync request's answer as one chunk."""
        yield self._parse_provider_response_delta(self.respond(messages))

    async def ainvoke_stream(  # type: ignore[override]
        self, messages: list[Message], assistant_message: Message, **_: Any
    ) -> AsyncIterator[ModelResponse]:
        """Stream an async request's answer as one chunk."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        yield self._parse_provider_response_delta(self.respond(messages))

    def _parse_provider_response(self, response: Payload, **_: Any) -> ModelResponse:
        """Turn the provider-shaped payload into agno's response, with token usage."""
        return ModelResponse(
            role="assistant",
            content=response.get("content"),
            tool_calls=response.get("tool_calls", []),
            response_usage=MessageMetrics(input_tokens=10, output_tokens=5, total_tokens=15),
        )

    def _parse_provider_response_delta(self, response: Payload) -> ModelResponse:
        """Turn one streamed payload into agno's response."""
        # One chunk carries the whole reply, as with the other frameworks' fakes.
        return self._parse_provider_response(response)


TEXT_MODEL = FakeModel(respond=answer_text)
TOOL_MODEL = FakeModel(respond=answer_tool)
SLOW_MODEL = FakeModel(respond=answer_text)
PREPARED_TOOL = tool(get_weather)


def make_agent(model: FakeModel = TEXT_MODEL) -> Agent:
    """One agent with one tool, from the plain function; telemetry off in code as well."""
    return Agent(name="bench", model=model, tools=[get_weather], telemetry=False)


def make_agent_prepared() -> Agent:
    """One agent with one tool made once beforehand with ``@tool``."""
    return Agent(name="bench", model=TEXT_MODEL, tools=[PREPARED_TOOL], telemetry=False)


def main() -> None:
    """Run every scenario and print the JSON result."""
    s = h.Settings.from_argv()
    SLOW_MODEL.latency_s = s.latency_s
    text_agent, tool_agent = make_agent(TEXT_MODEL), make_agent(TOOL_MODEL)
    slow_agent = make_agent(SLOW_MODEL)

    scenarios = h.run_arun_scenarios(
        text_agent=text_agent,
        tool_agent=tool_agent,
        slow_agent=slow_agent,
        tool_calls=TOOL_CALLS,
        construct=make_agent,
        construct_prepared=make_agent_prepared,
        import_statement="from agno.agent import Agent",
    )
    results = h.run_scenarios(scenarios, s)
    h.emit(
        {
            "framework": "agno",
            "version": agno.__version__,
            "quick": s.quick,
            "stream_api": "async: agent.arun(stream=True, stream_events=True)",
            "results": results,
        }
    )


if __name__ == "__main__":
    main()
