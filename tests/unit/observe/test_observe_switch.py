"""When runs are traced: off without OpenTelemetry (nothing imported), on with a global provider
or `instrument`. Each case runs in a fresh interpreter, since global providers can be set once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

AGENT = """
import asyncio, sys
from pilothouse import Agent
from pilothouse.models.test import TestModel

def get_weather(city: str) -> str:
    '''Get the weather.'''
    return "sunny"

agent = Agent(name="a", model=TestModel(text="done"), tools=[get_weather])
"""


def run_script(body: str, **extra_env: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra_env)
    done = subprocess.run(
        [sys.executable, "-c", AGENT + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_opentelemetry_nothing_is_imported_and_nothing_recorded() -> None:
    out = run_script(
        """
        outs = [agent.run("x"), asyncio.run(agent.arun("x"))]
        events = list(agent.run("x", stream=True))
        prefixes = ("opentelemetry", "pilothouse.observe")
        print(sorted(m for m in sys.modules if m.startswith(prefixes)))
        print([o.trace_context for o in outs], bool(events))
        """
    )
    loaded, contexts = out.strip().splitlines()
    # The loop's check lives in these light modules; no OpenTelemetry module is loaded.
    assert (
        loaded
        == "['pilothouse.observe', 'pilothouse.observe.attributes', 'pilothouse.observe.switch']"
    )
    assert contexts == "[None, None] True"


def test_a_global_tracer_provider_turns_tracing_on() -> None:
    out = run_script(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        # OpenTelemetry imported, but no provider set yet: still off.
        print(agent.run("x").trace_context)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        print(agent.run("x").trace_context is not None)
        print(sorted(s.name for s in exporter.get_finished_spans()))
        """
    )
    before, after, names = out.strip().splitlines()
    assert before == "None"
    assert after == "True"
    assert names == "['chat test', 'chat test', 'execute_tool get_weather', 'invoke_agent a']"


def test_a_provider_named_by_environment_variable_turns_tracing_on() -> None:
    out = run_script(
        """
        import opentelemetry.trace
        print(agent.run("x").trace_context is not None)
        print(type(opentelemetry.trace.get_tracer_provider()).__module__)
        """,
        OTEL_PYTHON_TRACER_PROVIDER="sdk_tracer_provider",
    )
    assert out.strip().splitlines() == ["True", "opentelemetry.sdk.trace"]


def test_a_global_meter_provider_alone_records_metrics_without_spans() -> None:
    out = run_script(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        print(agent.run("x").trace_context)
        data = reader.get_metrics_data()
        names = {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
        print(sorted(names))
        """
    )
    context, names = out.strip().splitlines()
    assert context == "None"
    assert "gen_ai.client.operation.duration" in names
    assert "gen_ai.client.token.usage" in names


def test_uninstrument_turns_explicit_tracing_off_again() -> None:
    out = run_script(
        """
        from opentelemetry.sdk.trace import TracerProvider
        from pilothouse import observe

        observe.instrument(tracer_provider=TracerProvider())
        print(agent.run("x").trace_context is not None)
        observe.uninstrument()
        print(agent.run("x").trace_context)
        """
    )
    assert out.strip().splitlines() == ["True", "None"]


def test_instrument_without_opentelemetry_says_what_to_install() -> None:
    out = run_script(
        """
        import builtins
        real_import = builtins.__import__

        def no_otel(name, *args, **kwargs):
            if name.startswith("opentelemetry"):
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)

        builtins.__import__ = no_otel
        from pilothouse import observe
        try:
            observe.instrument()
        except ImportError as exc:
            print(exc)
        with observe.continue_trace({"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}):
            print(agent.run("x").status.value)
        print(observe.inject_context())
        """
    )
    message, status, headers = out.strip().splitlines()
    assert 'pip install "pilothouse[otel]"' in message
    assert status == "COMPLETED"
    assert headers == "{}"
