"""Whether a run is traced: decided once per run, for almost nothing when telemetry is off.

Telemetry is on when `pilothouse.observe.instrument` was called, or when the application set
a global OpenTelemetry tracer or meter provider. Without OpenTelemetry imported (the extra is
not installed, or nothing imported it) the decision is two dictionary lookups and nothing is
imported; with OpenTelemetry imported but no provider set, it is a look at the API's two
global provider variables. The run loop then checks ``state.tracer`` (None when off) at its
step boundaries. This module imports nothing from OpenTelemetry itself.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from pilothouse.observe import attributes as attr

if TYPE_CHECKING:
    from pilothouse.observe.run_tracer import RunTracer
    from pilothouse.observe.telemetry import Telemetry
    from pilothouse.run.state import RunState

__all__ = ["capture_from_env", "configure", "is_explicit", "run_tracer"]

_modules = sys.modules
# Set by `instrument()`: the telemetry every run records into, whatever the global providers.
_explicit: Telemetry | None = None
# The global providers last seen, and the telemetry built for them (None: they are defaults).
_global: tuple[Any, Any, Telemetry | None] | None = None
# `RunTracer`, once telemetry was on (its module imports OpenTelemetry).
_RunTracer: type[RunTracer] | None = None


def run_tracer(state: RunState) -> RunTracer | None:
    """The tracer of a run that starts now (its ``invoke_agent`` span open), or None when
    telemetry is off."""
    telemetry = _explicit
    if telemetry is None:
        if "opentelemetry.trace" not in _modules and "opentelemetry.metrics" not in _modules:
            return None
        telemetry = _global_telemetry()
        if telemetry is None:
            return None
    return _run_tracer_class()(telemetry, state)


def _run_tracer_class() -> type[RunTracer]:
    global _RunTracer
    if _RunTracer is None:
        from pilothouse.observe.run_tracer import RunTracer

        _RunTracer = RunTracer
    return _RunTracer


def configure(telemetry: Telemetry | None) -> None:
    """Record into ``telemetry`` from now on (None: back to following the global providers)."""
    global _explicit
    _explicit = telemetry


def is_explicit() -> bool:
    """Whether `instrument` set the telemetry runs record into."""
    return _explicit is not None


def capture_from_env() -> bool:
    """The content-capture default: the environment variable the GenAI instrumentations share."""
    return os.environ.get(attr.CAPTURE_CONTENT_ENV, "").strip().lower() in ("true", "1", "yes")


def _global_telemetry() -> Telemetry | None:
    """Telemetry for the global providers when the application set one, else None.

    This runs for every run while OpenTelemetry is imported but not set up (another library
    imported it), so its way to None reads the API's module globals instead of calling its
    getters, which look the environment up (raising and catching a KeyError) on every call.
    The getters are called once a provider is set, when an environment variable names one
    (the getter loads it), or when the API has no such globals (another version of it).
    """
    global _global
    trace_api = _modules.get("opentelemetry.trace")
    metrics_api = _modules.get("opentelemetry.metrics._internal")
    if (
        (trace_api is None or getattr(trace_api, "_TRACER_PROVIDER", _UNKNOWN) is None)
        and (metrics_api is None or getattr(metrics_api, "_METER_PROVIDER", _UNKNOWN) is None)
        and not _providers_named_by_env()
    ):
        return None
    tracer_provider = trace_api.get_tracer_provider() if trace_api is not None else None
    meter_provider = metrics_api.get_meter_provider() if metrics_api is not None else None
    seen = _global
    if seen is not None and seen[0] is tracer_provider and seen[1] is meter_provider:
        return seen[2]
    from opentelemetry import trace
    from opentelemetry.metrics import NoOpMeterProvider

    from pilothouse.observe.telemetry import Telemetry, is_configured

    tracing, metering = is_configured(tracer_provider, meter_provider)
    telemetry = None
    if tracing or metering:
        telemetry = Telemetry(
            tracer_provider if tracing else trace.NoOpTracerProvider(),
            meter_provider if metering else NoOpMeterProvider(),
            capture_content=capture_from_env(),
        )
    _global = (tracer_provider, meter_provider, telemetry)
    return telemetry


_UNKNOWN = object()
# Whether an environment variable names a provider (read once: it is startup configuration).
_named_by_env: bool | None = None


def _providers_named_by_env() -> bool:
    global _named_by_env
    if _named_by_env is None:
        _named_by_env = any(
            name in os.environ
            for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
        )
    return _named_by_env
