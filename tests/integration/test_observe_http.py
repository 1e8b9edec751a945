"""A tool's real HTTP call carries the ``traceparent`` of its ``execute_tool`` span.

The server is the standard library's ``http.server`` on loopback, in a thread, recording the
headers it receives; the tools call it with httpx (a sync tool in a worker thread, an async
tool on the loop) and put the current trace context in their headers with OpenTelemetry's own
propagator, as an application's tool would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pilothouse import Agent, observe
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with 200 and remembers its path and headers."""

    received: ClassVar[dict[str, dict[str, str]]] = {}

    def do_GET(self) -> None:
        Recorder.received[self.path] = {k.lower(): v for k, v in self.headers.items()}
        body = b"sunny"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what was received, not the log."""


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.received = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def traceparent(span: Any) -> str:
    c = span.context
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


async def test_tool_http_calls_carry_their_execute_tool_span(server: str) -> None:
    def fetch_sync(city: str) -> str:
        """Fetch the weather (sync, with httpx.Client)."""
        headers: dict[str, str] = {}
        propagate.inject(headers)
        with httpx.Client(timeout=10) as client:
            return client.get(f"{server}/sync/{city}", headers=headers).text

    async def fetch_async(city: str) -> str:
        """Fetch the weather (async, with httpx.AsyncClient)."""
        headers = observe.inject_context()
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(f"{server}/async/{city}", headers=headers)).text

    def model(messages: list[Message], tools: Any) -> Any:
        if messages[-1].role == "tool":
            return "It is sunny."
        return [
            ToolCall(name="fetch_sync", arguments={"city": "paris"}),
            ToolCall(name="fetch_async", arguments={"city": "oslo"}),
        ]

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observe.instrument(tracer_provider=provider)
    try:
        agent = Agent(model=FunctionModel(model), tools=[fetch_sync, fetch_async])
        out = await agent.arun("Weather?")
    finally:
        observe.uninstrument()
        provider.shutdown()
    assert out.status.value == "COMPLETED", out.content
    assert [t.result for t in out.tools] == ["sunny", "sunny"]

    spans = {s.name: s for s in exporter.get_finished_spans()}
    received = Recorder.received
    assert received["/sync/paris"]["traceparent"] == traceparent(spans["execute_tool fetch_sync"])
    assert received["/async/oslo"]["traceparent"] == traceparent(spans["execute_tool fetch_async"])
    run = spans["invoke_agent"]
    for name in ("execute_tool fetch_sync", "execute_tool fetch_async"):
        assert spans[name].context.trace_id == run.context.trace_id
