"""`Telemetry`: the tracer and the metric instruments runs record into.

Built once per pair of providers (the ones given to `pilothouse.observe.instrument`, or the
global ones) and shared by every run; this module imports OpenTelemetry, so it is only imported
once telemetry is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from pilothouse.observe import attributes as attr

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Telemetry"]

_SCOPE = "pilothouse"


def _version() -> str:
    from pilothouse import __version__

    return __version__


class Telemetry:
    """The tracer, the GenAI client histograms and the content-capture switch of a setup."""

    __slots__ = ("capture_content", "duration", "time_to_first_chunk", "token_usage", "tracer")

    def __init__(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        *,
        capture_content: bool,
    ) -> None:
        version = _version()
        # None means the global providers: their proxies follow a provider set later on.
        self.tracer = (
            tracer_provider.get_tracer(_SCOPE, version)
            if tracer_provider is not None
            else trace.get_tracer(_SCOPE, version)
        )
        meter = (
            meter_provider.get_meter(_SCOPE, version)
            if meter_provider is not None
            else metrics.get_meter(_SCOPE, version)
        )
        self.token_usage: Histogram = meter.create_histogram(
            attr.TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=attr.TOKEN_BUCKETS,
        )
        self.duration: Histogram = meter.create_histogram(
            attr.OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=attr.SECONDS_BUCKETS,
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            attr.TIME_TO_FIRST_CHUNK,
            unit="s",
            description=(
                "Time to receive the first chunk, measured from when the client issues the "
                "generation request to when the first chunk is received in the response stream."
            ),
            explicit_bucket_boundaries_advisory=attr.SECONDS_BUCKETS,
        )
        self.capture_content = capture_content


def is_configured(tracer_provider: Any, meter_provider: Any) -> tuple[bool, bool]:
    """Whether each global provider is one the user set (not the default proxy or a no-op)."""
    tracing = tracer_provider is not None and not isinstance(
        tracer_provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )
    # The default meter provider's class is private: recognise it by name.
    metering = meter_provider is not None and type(meter_provider).__name__ not in (
        "_ProxyMeterProvider",
        "NoOpMeterProvider",
    )
    return tracing, metering
