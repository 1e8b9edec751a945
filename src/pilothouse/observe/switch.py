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
    """Telemetry for the global providers when the application set one, else None."""
    global _global
    tracer_provider = _global_provider("opentelemetry.trace", "TRACER")
    meter_provider = _global_provider("opentelemetry.metrics._internal", "METER")
    if tracer_provider is None and meter_provider is None:
        return None
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
# Whether a provider is named by environment variable (read once: it is startup configuration).
_from_env: dict[str, bool] = {}


def _global_provider(module_name: str, kind: str) -> Any:
    """The global OpenTelemetry tracer or meter provider (``kind``), or None when none is set.

    This runs for every run while OpenTelemetry is imported but not set up (another library
    imported it), so it reads the API's module global instead of calling its getter, which
    looks the environment up (raising and catching a KeyError) on every call. The getter
    is called when an environment variable names a provider (the getter loads it), or when
    the API has no such global (another version of it).
    """
    module = _modules.get(module_name)
    if module is None:
        return None
    value = getattr(module, f"_{kind}_PROVIDER", _UNKNOWN)
    if value is None:
        env_name = f"OTEL_PYTHON_{kind}_PROVIDER"
        named = _from_env.get(env_name)
        if named is None:
            named = _from_env[env_name] = env_name in os.environ
        if not named:
            return None
    elif value is not _UNKNOWN:
        return value
    return getattr(module, f"get_{kind.lower()}_provider")()
