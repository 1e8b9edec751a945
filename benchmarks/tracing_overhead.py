"""What OpenTelemetry tracing costs a run: nothing when off, and how much when on.

Usage::

    python benchmarks/tracing_overhead.py                  # wall clock, µs per run
    python benchmarks/tracing_overhead.py --quick          # the same, smoke-test precision
    python benchmarks/tracing_overhead.py --instructions --base-src /path/to/other/src

Wall clock: four scenarios (text run async; tool call + answer sync, async, and streamed with
all events), each in four setups, every setup in its own fresh interpreter: ``off`` (no
OpenTelemetry imported: what every run pays when the extra is not used), ``imported``
(OpenTelemetry imported but no provider set: what a run pays when another library imports it),
``on`` (an SDK tracer provider with the in-memory span exporter behind a simple span processor,
and an SDK meter provider with the in-memory metric reader, through
``pilothouse.observe.instrument``) and ``on+content`` (the same, capturing message content).

``--instructions`` counts CPU instructions with valgrind's callgrind instead of timing, which a
loaded machine cannot disturb: a process doing N iterations and one doing 2N (each iteration:
a sync tool run, an async text run, an async tool run and a streamed tool run), the difference
divided by N, for this tree and for ``--base-src`` (another checkout's ``src``, e.g. the
commit before tracing), with tracing off. Every model is a fake that answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SETUPS = ("off", "imported", "on", "on+content")
SCENARIOS = ("text_async", "tool_sync", "tool_async", "tool_stream")


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_harness", HERE / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------- the worker


def _agents() -> tuple[Any, Any, list[int]]:
    """A text agent and a tool agent on instant fake models, and the tool-call counter."""
    from pilothouse import Agent
    from pilothouse.models import ModelResponse, ToolCall
    from pilothouse.models.test import FunctionModel
    from pilothouse.run.metrics import Usage

    calls = [0]

    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        calls[0] += 1
        return f"Sunny in {city}"

    def answer_text(messages: Any, tools: Any) -> Any:
        return ModelResponse(content="Hello!", usage=Usage(10, 5))

    def answer_tool(messages: Any, tools: Any) -> Any:
        if messages[-1].role == "tool":
            return ModelResponse(content="It is sunny in Paris.", usage=Usage(10, 5))
        call = ToolCall(name="get_weather", arguments={"city": "Paris"})
        return ModelResponse(tool_calls=[call], usage=Usage(10, 5))

    text = Agent(name="bench", model=FunctionModel(answer_text), tools=[get_weather])
    tool = Agent(name="bench", model=FunctionModel(answer_tool), tools=[get_weather])
    return text, tool, calls


def _setup(name: str) -> Any:
    """Put the process in one of the SETUPS; return what keeps the spans (or None)."""
    if name == "off":
        return None
    os.environ.pop("OTEL_SDK_DISABLED", None)
    import opentelemetry.metrics
    import opentelemetry.trace  # noqa: F401  (imported, as another library would)

    if name == "imported":
        return None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pilothouse import observe

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    observe.instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=name == "on+content",
    )
    return exporter


def _scenarios(text: Any, tool: Any, calls: list[int]) -> dict[str, Any]:
    async def text_async() -> None:
        assert (await text.arun("Say hello.")).content == "Hello!"

    def tool_sync() -> None:
        before = calls[0]
        assert tool.run("Weather?").content == "It is sunny in Paris."
        assert calls[0] == before + 1

    async def tool_async() -> None:
        before = calls[0]
        assert (await tool.arun("Weather?")).content == "It is sunny in Paris."
        assert calls[0] == before + 1

    async def tool_stream() -> None:
        before = calls[0]
        final = None
        async for event in tool.arun("Weather?", stream=True, stream_events=True):
            if event.event == "RunCompleted":
                final = event.content
        assert final == "It is sunny in Paris." and calls[0] == before + 1

    return {
        "text_async": text_async,
        "tool_sync": tool_sync,
        "tool_async": tool_async,
        "tool_stream": tool_stream,
    }


def worker(setup: str, runs: int | None, quick: bool) -> None:
    """Time the scenarios (print JSON), or do ``runs`` iterations of all of them."""
    h = _load_harness()
    h.apply_quiet_env()
    h.block_network()
    exporter = _setup(setup)
    text, tool, calls = _agents()
    scenarios = _scenarios(text, tool, calls)
    if runs is not None:
        loop = asyncio.new_event_loop()

        async def async_mix() -> None:
            await scenarios["text_async"]()
            await scenarios["tool_async"]()
            await scenarios["tool_stream"]()

        for _ in range(runs):
            scenarios["tool_sync"]()
            loop.run_until_complete(async_mix())
        loop.close()
        return
    settings = h.Settings.from_argv(["--quick"] if quick else [])
    results: dict[str, Any] = {}
    for name, fn in scenarios.items():
        if asyncio.iscoroutinefunction(fn):
            results[name] = h.run_async(h.time_async(fn, settings))
        else:
            results[name] = h.time_sync(fn, settings)
    if exporter is not None:
        spans = exporter.get_finished_spans()
        assert spans and spans[-1].name.startswith("invoke_agent"), "no spans were recorded"
    print(json.dumps({"setup": setup, "results": results}))


# ---------------------------------------------------------------------------- the runner


def _run_worker(setup: str, src: Path, extra: list[str], wrapper: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    cmd = [*wrapper, sys.executable, __file__, "--worker", setup, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"worker {setup} failed:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def wall_clock(quick: bool) -> str:
    """The µs-per-run table, one fresh interpreter per setup."""
    results = {}
    for setup in SETUPS:
        print(f"[tracing] {setup} ...", file=sys.stderr, flush=True)
        out = _run_worker(setup, SRC, ["--quick"] if quick else [], [])
        line = next(x for x in out.splitlines() if x.startswith("{"))
        results[setup] = json.loads(line)["results"]
    lines = [
        "| Scenario (µs per run, median) | " + " | ".join(SETUPS) + " | on − off |",
        "|---" * (len(SETUPS) + 2) + "|",
    ]
    for name in SCENARIOS:
        cells = [results[s][name]["median_us"] for s in SETUPS]
        row = " | ".join(f"{c:,.1f}" for c in cells)
        lines.append(f"| {name} | {row} | {cells[2] - cells[0]:+,.1f} |")
    load = os.getloadavg()[0]
    lines.append("")
    lines.append(f"1-minute load average at the end: {load:.2f}.")
    return "\n".join(lines)


def _instructions(setup: str, src: Path, runs: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out"]
        out = _run_worker(setup, src, ["--runs", str(runs)], wrapper)
    found = re.search(r"Collected : (\d+)", out)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1))


def instructions(base_src: Path | None, runs: int, setups: list[str]) -> str:
    """Instructions per iteration: (count with 2N iterations − count with N) / N."""
    trees = [("this tree", SRC)]
    if base_src is not None:
        trees.insert(0, ("base", base_src))
    lines = [
        f"| Tree | setup | Ir, {runs} iterations | Ir, {2 * runs} iterations | "
        "Ir per iteration (4 runs) |",
        "|---|---|---|---|---|",
    ]
    for label, src in trees:
        # The base tree may predate tracing: only the setups without it apply there.
        for setup in [x for x in setups if label != "base" or x in ("off", "imported")]:
            print(f"[tracing] callgrind {label} {setup} ...", file=sys.stderr, flush=True)
            one = _instructions(setup, src, runs)
            two = _instructions(setup, src, 2 * runs)
            per = (two - one) / runs
            lines.append(f"| {label} | {setup} | {one:,} | {two:,} | {per:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    """Run the wall-clock table, the instruction counts, or one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--base-src", type=Path, help="another tree's src/ to compare with")
    parser.add_argument("--iterations", type=int, default=200, help="N for --instructions")
    parser.add_argument(
        "--setups",
        default="off,imported,on",
        help="comma-separated setups for --instructions (default: off,imported,on)",
    )
    parser.add_argument("--worker", choices=SETUPS, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.runs, args.quick)
        return 0
    if args.instructions:
        setups = [x.strip() for x in args.setups.split(",") if x.strip()]
        unknown = set(setups) - set(SETUPS)
        if unknown:
            parser.error(f"unknown setup(s): {', '.join(sorted(unknown))}")
        print(instructions(args.base_src, args.iterations, setups))
    else:
        print(wall_clock(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
