"""OpenTelemetry traces and metrics of agent runs, following the GenAI semantic conventions.

With the ``otel`` extra (``pip install "pilothouse[otel]"``) every run emits an
``invoke_agent {agent}`` span, a ``chat {model}`` span per model request and an
``execute_tool {tool}`` span per tool call, and records the ``gen_ai.client.token.usage``,
``gen_ai.client.operation.duration`` and ``gen_ai.client.operation.time_to_first_chunk``
histograms, as soon as the application sets a global tracer or meter provider, or calls
`instrument`. Messages, tool arguments and tool results are recorded only on request
(``capture_content=True``). Without OpenTelemetry configured, runs import nothing of it and
pay a dictionary lookup per run. See docs/observability.md.

This package imports OpenTelemetry only inside the functions that need it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pilothouse.observe import switch

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["continue_trace", "extract_context", "inject_context", "instrument", "uninstrument"]

_MISSING = (
    'pilothouse.observe needs OpenTelemetry: pip install "pilothouse[otel]" '
    "(opentelemetry-api and opentelemetry-sdk)"
)


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
) -> None:
    """Trace every run from now on, into these providers.

    Args:
        tracer_provider: Where the spans go; None for the global one
            (``opentelemetry.trace.set_tracer_provider``), also when it is set later.
        meter_provider: Where the metrics go; None for the global one.
        capture_content: Record messages, tool definitions, tool arguments and tool results
            on the spans. They may hold personal data and can be large, so this is off unless
            asked for; None reads ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            (``true`` turns it on).

    Without `instrument`, runs are traced anyway when the application sets a global tracer or
    meter provider (content capture then follows the environment variable).

    Raises:
        ImportError: OpenTelemetry is not installed.
        TypeError: capture_content is not a bool or None.
    """
    if capture_content is not None and not isinstance(capture_content, bool):
        raise TypeError(
            f"instrument(): capture_content must be True, False or None, not {capture_content!r}."
        )
    try:
        from pilothouse.observe.telemetry import Telemetry
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    capture = switch.capture_from_env() if capture_content is None else capture_content
    switch.configure(Telemetry(tracer_provider, meter_provider, capture_content=capture))


def uninstrument() -> None:
    """Undo `instrument`: runs are traced again only if a global provider is set."""
    switch.configure(None)


def extract_context(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Context:
    """The trace context that incoming request headers carry (W3C ``traceparent`` and
    ``tracestate``, and ``baggage``: whatever the configured propagators read).

    Header names may be in any case. Make it current around a run with `continue_trace`, or
    with ``opentelemetry.context.attach``.

    Raises:
        ImportError: OpenTelemetry is not installed.
    """
    try:
        from opentelemetry import propagate
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return propagate.extract({str(k).lower(): v for k, v in pairs})


@contextmanager
def continue_trace(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> Iterator[None]:
    """Run the block inside the trace that incoming request headers carry.

    A run started in the block (``agent.run``, ``await agent.arun``, or the first step of a
    stream iterated in the block) puts its ``invoke_agent`` span under the caller's span named
    by the ``traceparent`` header. Does nothing when telemetry is off (OpenTelemetry not
    imported and `instrument` not called) or when the headers carry no trace context, so a
    server can always call it::

        with continue_trace(request.headers):
            response = await agent.arun(message)
    """
    if headers is None or not _telemetry_may_be_on():
        yield
        return
    from opentelemetry import context

    token = context.attach(extract_context(headers))
    try:
        yield
    finally:
        context.detach(token)


def inject_context(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Add the current trace context (``traceparent``, ...) to outgoing request headers.

    For a tool that calls another service: its call then continues the tool's
    ``execute_tool`` span there. Returns ``headers`` (a new dict when None); unchanged when
    telemetry is off.
    """
    if headers is None:
        headers = {}
    if _telemetry_may_be_on():
        from opentelemetry import propagate

        propagate.inject(headers)
    return headers


def _telemetry_may_be_on() -> bool:
    """Whether OpenTelemetry is in use in this process (cheap: no import)."""
    return switch.is_explicit() or "opentelemetry.context" in sys.modules
