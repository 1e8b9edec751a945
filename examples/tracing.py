"""OpenTelemetry tracing: the span tree and metrics of a run with two tool calls, and of a paused
run continued later (its new span links to the paused one).

Needs the ``otel`` extra (``pip install "pilothouse[otel]"``). The spans go to the SDK's
in-memory exporter and are printed as a tree; to send them to a backend instead, see
docs/observability.md (an OTLP exporter in place of the in-memory one). Runs offline, on a test
model.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pilothouse import Agent, observe, tool
from pilothouse.models import ModelResponse, ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.run.metrics import Usage

# Where the spans and metrics go. In production: a BatchSpanProcessor with an OTLP exporter.
exporter = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
reader = InMemoryMetricReader()
meter_provider = MeterProvider(metric_readers=[reader])
observe.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


def get_time(city: str) -> str:
    """Get the local time in a city."""
    return f"It is noon in {city}"


@tool(requires_confirmation=True)
def book_table(restaurant: str) -> str:
    """Book a table (asks the user first)."""
    return f"Booked at {restaurant}"


def model(messages: list[Message], tools: Any) -> Any:
    """A stand-in for a real model: call the tools the prompt needs, then answer."""
    if messages[-1].role == "tool":
        return ModelResponse(content="Done: " + messages[-1].text(), usage=Usage(60, 12))
    if "book" in messages[-1].text():
        return ToolCall(name="book_table", arguments={"restaurant": "Chez Ada"})
    calls = [
        ToolCall(name="get_weather", arguments={"city": "Paris"}),
        ToolCall(name="get_time", arguments={"city": "Paris"}),
    ]
    return ModelResponse(tool_calls=calls, usage=Usage(40, 18))


def print_tree(spans: list[ReadableSpan]) -> None:
    """Print spans as a tree: name, kind, duration and the main GenAI attributes."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        attributes = dict(span.attributes or {})
        ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        shown = {
            k.removeprefix("gen_ai."): v
            for k, v in attributes.items()
            if k.endswith(("tokens", "tool.call.id", "conversation.id", "status", "error.type"))
        }
        print(f"{'  ' * depth}{span.name} [{span.kind.name}] {ms:.2f} ms {shown}")
        for link in span.links:
            print(f"{'  ' * depth}  ↳ linked to span {link.context.span_id:016x}")
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)


agent = Agent(name="concierge", model=FunctionModel(model), tools=[get_weather, get_time])
agent.run("Weather and time in Paris?", session_id="trip-42")
print("A run with two tool calls:")
print_tree(list(exporter.get_finished_spans()))
exporter.clear()

booking = Agent(name="concierge", model=FunctionModel(model), tools=[book_table])
paused = booking.run("Please book dinner", session_id="trip-42")
print(f"\nPaused ({paused.status.value}); its span context is kept on the run:")
print(f"  {paused.trace_context}")
paused.tools[0].confirmed = True
booking.continue_run(paused)
print("The paused run and its continuation:")
print_tree(list(exporter.get_finished_spans()))

print("\nMetrics:")
data = reader.get_metrics_data()
for resource in data.resource_metrics if data else ():
    for scope in resource.scope_metrics:
        for metric in scope.metrics:
            for point in metric.data.data_points:
                kind = dict(point.attributes).get("gen_ai.token.type", "")
                print(f"  {metric.name} {kind}: count={point.count} sum={point.sum:.4g}")

observe.uninstrument()
