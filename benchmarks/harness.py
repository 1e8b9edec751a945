"""Shared timing helpers for the framework overhead benchmarks.

Every script in ``benchmarks/frameworks/`` loads this module by path, and those scripts run under
different interpreters (the project's venv for Pilothouse, ``benchmarks/.venv-others`` for the
other frameworks), so this module must stay standard-library only and import no framework.

Method, the same for every framework:

* Timings are the median over batches of the per-call time (batch wall time / batch size), after a
  warm-up and a short probe that picks the batch size. The garbage collector stays enabled,
  because the cyclic garbage a framework leaves behind is part of what it costs a real
  application, but a full collection runs before each measurement so one measurement does not
  pay for the previous one.
* Retained memory is measured with ``tracemalloc``: bytes still allocated while ``count`` objects
  are kept alive, divided by ``count``, after one untimed construction has filled any caches.
  A factory that is very slow under ``tracemalloc`` stops early (see ``memory_per_object``).
* Import time is the median wall time of ``python -c "<statement>"`` minus the median wall time of
  ``python -c "pass"`` with the same interpreter, both in fresh subprocesses after one untimed
  run that warms the bytecode and OS file caches.
* Concurrency is the wall time of n concurrent runs (``asyncio.gather``) against a model that
  awaits a fixed latency, divided by the wall time of one such run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# Environment that switches off telemetry, tracing exporters and first-run banners in the
# frameworks measured here (Pilothouse has none to switch off). The runner passes it to each
# subprocess, and each framework script also applies it to itself before importing its
# framework, so a script run by hand is safe too.
QUIET_ENV: dict[str, str] = {
    "AGNO_TELEMETRY": "false",
    "OPENAI_AGENTS_DISABLE_TRACING": "1",
    "OPENAI_AGENTS_DONT_LOG_MODEL_DATA": "1",
    "OPENAI_AGENTS_DONT_LOG_TOOL_DATA": "1",
    "PYDANTIC_AI_NO_BANNER": "1",
    "LOGFIRE_SEND_TO_LOGFIRE": "false",
    "OTEL_SDK_DISABLED": "true",
    "DO_NOT_TRACK": "1",
}

TEXT_PROMPT = "Say hello."
TOOL_PROMPT = "What is the weather in Paris?"
TEXT_ANSWER = "Hello! How can I help?"
TOOL_ANSWER = "It is sunny in Paris."
TOOL_RESULT = "Sunny in Paris"


@dataclass(frozen=True)
class Settings:
    """Iteration counts for one benchmark run; ``quick`` trades precision for speed."""

    quick: bool
    warmup_s: float
    batch_s: float
    batches: int
    memory_count: int
    concurrency: int
    concurrency_repeats: int
    latency_s: float
    import_repeats: int

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> Settings:
        """Build the settings from ``--quick`` on the command line."""
        args = sys.argv[1:] if argv is None else argv
        if "--quick" in args:
            return cls(
                quick=True,
                warmup_s=0.03,
                batch_s=0.005,
                batches=5,
                memory_count=200,
                concurrency=200,
                concurrency_repeats=1,
                latency_s=0.05,
                import_repeats=1,
            )
        return cls(
            quick=False,
            warmup_s=0.25,
            batch_s=0.03,
            batches=25,
            memory_count=1000,
            concurrency=1000,
            concurrency_repeats=3,
            latency_s=0.05,
            import_repeats=5,
        )


def apply_quiet_env() -> None:
    """Set the telemetry-off variables in this process, keeping any value already set."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


class NetworkAttemptError(OSError):
    """Raised when benchmark code tries to open a connection outside this machine."""


_network_attempts: list[str] = []


def _is_local(address: Any) -> bool:
    """Whether a socket address stays on this machine (Unix socket or loopback)."""
    if isinstance(address, str | bytes):
        return True  # AF_UNIX path
    host = str(address[0]) if isinstance(address, tuple) and address else ""
    return host in ("localhost", "::1", "") or host.startswith("127.")


def block_network() -> None:
    """Make every non-local connection or name lookup fail and record it.

    The benchmarks use fake models only, so any outbound connection would be telemetry or a
    provider client that should not exist; failing loudly and reporting it keeps the numbers
    honest and guarantees the run sends nothing anywhere.
    """
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_local(address):
            _network_attempts.append(f"connect {address!r}")
            raise NetworkAttemptError(f"benchmark blocked a connection to {address!r}")
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_local(address):
            _network_attempts.append(f"connect_ex {address!r}")
            raise NetworkAttemptError(f"benchmark blocked a connection to {address!r}")
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # A host of None asks for a local wildcard address (for binding), not a lookup.
        if host is not None and not _is_local((host,)):
            _network_attempts.append(f"getaddrinfo {host!r}")
            raise NetworkAttemptError(f"benchmark blocked a name lookup of {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def network_attempts() -> list[str]:
    """The connections and lookups that ``block_network`` refused so far."""
    return list(_network_attempts)


def _summary(per_call_s: list[float], batch_size: int) -> dict[str, Any]:
    """Median and spread, in microseconds per call, of per-batch measurements."""
    ordered = sorted(per_call_s)
    n = len(ordered)
    return {
        "median_us": statistics.median(ordered) * 1e6,
        "min_us": ordered[0] * 1e6,
        "p90_us": ordered[min(n - 1, int(n * 0.9))] * 1e6,
        "batches": n,
        "batch_size": batch_size,
    }


def _batch_size(per_call_s: float, batch_s: float) -> int:
    """Calls per batch so that one batch lasts about ``batch_s``."""
    return max(1, round(batch_s / per_call_s)) if per_call_s > 0 else 1000


def time_sync(fn: Callable[[], object], settings: Settings) -> dict[str, Any]:
    """Median time per call of ``fn`` over batches, after a warm-up and a batch-size probe."""
    gc.collect()
    calls = 0
    start = time.perf_counter()
    # At least a few calls even for slow callables, so lazy imports and caches are filled.
    while calls < 3 or time.perf_counter() - start < settings.warmup_s:
        fn()
        calls += 1
    # The batch size comes from a probe after the warm-up, so a slow first call (lazy imports,
    # a first event loop) cannot shrink the batches of a fast callable.
    probe, elapsed = 1, 0.0
    while elapsed < settings.batch_s / 4:
        probe *= 2
        t0 = time.perf_counter()
        for _ in range(probe):
            fn()
        elapsed = time.perf_counter() - t0
    size = _batch_size(elapsed / probe, settings.batch_s)
    per_call: list[float] = []
    for _ in range(settings.batches):
        t0 = time.perf_counter()
        for _ in range(size):
            fn()
        per_call.append((time.perf_counter() - t0) / size)
    return _summary(per_call, size)


async def time_async(fn: Callable[[], Awaitable[object]], settings: Settings) -> dict[str, Any]:
    """Like ``time_sync`` for a coroutine function, awaited in the running event loop."""
    gc.collect()
    calls = 0
    start = time.perf_counter()
    while calls < 3 or time.perf_counter() - start < settings.warmup_s:
        await fn()
        calls += 1
    probe, elapsed = 1, 0.0
    while elapsed < settings.batch_s / 4:
        probe *= 2
        t0 = time.perf_counter()
        for _ in range(probe):
            await fn()
        elapsed = time.perf_counter() - t0
    size = _batch_size(elapsed / probe, settings.batch_s)
    per_call: list[float] = []
    for _ in range(settings.batches):
        t0 = time.perf_counter()
        for _ in range(size):
            await fn()
        per_call.append((time.perf_counter() - t0) / size)
    return _summary(per_call, size)


def memory_per_object(
    factory: Callable[[], object], count: int, budget_s: float = 5.0
) -> dict[str, Any]:
    """Retained KiB per object while up to ``count`` objects made by ``factory`` are alive.

    Construction under ``tracemalloc`` can be 10x slower than without it, so a slow factory
    stops early once ``budget_s`` has passed (after at least 50 objects): the per-object
    figure is already stable by then, and the report says how many objects it is from.
    """
    factory()  # fills import-time and first-use caches, which are not per-object cost
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = []
        start = time.perf_counter()
        while len(kept) < count and (len(kept) < 50 or time.perf_counter() - start < budget_s):
            kept.append(factory())
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    made = len(kept)
    del kept
    return {"kib": (after - before) / made / 1024, "objects": made}


async def concurrency_ratio(
    run_once: Callable[[], Awaitable[object]], n: int, repeats: int, budget_s: float = 8.0
) -> dict[str, Any]:
    """Wall time of ``n`` concurrent runs divided by the wall time of one run.

    ``run_once`` must run one agent against a model that waits (asynchronously) for a fixed
    latency, so the ideal ratio is 1.0: every run waits at the same time. The single-run time is
    the median of several sequential runs; the concurrent time is the median of up to
    ``repeats`` (fewer once they have taken ``budget_s`` in all).
    """
    for _ in range(3):
        await run_once()  # warm-up: lazy imports, caches, first-run paths
    gc.collect()
    singles = []
    for _ in range(5):
        t0 = time.perf_counter()
        await run_once()
        singles.append(time.perf_counter() - t0)
    single = statistics.median(singles)
    walls: list[float] = []
    # Further repeats only while they are cheap: a framework that needs seconds for the n runs
    # is measured precisely enough by one or two, and the whole benchmark must stay short.
    while len(walls) < repeats and sum(walls) < budget_s:
        gc.collect()
        t0 = time.perf_counter()
        await asyncio.gather(*(run_once() for _ in range(n)))
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    return {
        "ratio": wall / single,
        "single_ms": single * 1e3,
        "wall_ms": wall * 1e3,
        "n": n,
        "repeats": len(walls),
    }


def import_time_ms(
    statement: str, repeats: int, python: str | None = None, warm: bool = True
) -> dict[str, Any]:
    """Median wall time of ``statement`` in a fresh interpreter, minus bare interpreter startup.

    ``warm`` first runs both commands once untimed; only ``--quick`` skips that, since the
    script itself has just imported the same modules and so warmed the file cache already.
    """
    exe = python or sys.executable
    env = {**os.environ, **QUIET_ENV}

    def wall(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([exe, "-c", code], check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    if warm:
        wall(statement)  # warms .pyc files and the OS file cache
        wall("pass")
    # Interleaved so that a slow period of the machine affects both series alike.
    with_import, bare = [], []
    for _ in range(repeats):
        with_import.append(wall(statement))
        bare.append(wall("pass"))
    ms = (statistics.median(with_import) - statistics.median(bare)) * 1e3
    return {"ms": ms, "statement": statement, "repeats": repeats}


@dataclass(frozen=True)
class Scenarios:
    """One framework's implementation of every scenario, for ``run_scenarios``.

    The ``*_sync`` callables do one run; the others are coroutine functions doing one run. Each
    must check its own output (final text, tool executed once) so that a broken run fails
    instead of being timed.
    """

    construct: Callable[[], object]
    construct_prepared: Callable[[], object]
    text_sync: Callable[[], object]
    tool_sync: Callable[[], object]
    text_async: Callable[[], Awaitable[object]]
    tool_async: Callable[[], Awaitable[object]]
    text_stream: Callable[[], Awaitable[object]]
    tool_stream: Callable[[], Awaitable[object]]
    slow_run: Callable[[], Awaitable[object]]
    import_statement: str


def run_arun_scenarios(
    *,
    text_agent: Any,
    tool_agent: Any,
    slow_agent: Any,
    tool_calls: list[int],
    construct: Callable[[], object],
    construct_prepared: Callable[[], object],
    import_statement: str,
) -> Scenarios:
    """The scenarios of a framework whose agents have ``run()`` / ``arun(stream=...,
    stream_events=True)`` returning outputs with ``content`` and a ``RunCompletedEvent``
    (Pilothouse and agno share this API). ``tool_calls[0]`` counts tool executions."""

    def check_tool(before: int) -> None:
        assert tool_calls[0] == before + 1

    def text_sync() -> None:
        assert text_agent.run(TEXT_PROMPT).content == TEXT_ANSWER

    def tool_sync() -> None:
        before = tool_calls[0]
        assert tool_agent.run(TOOL_PROMPT).content == TOOL_ANSWER
        check_tool(before)

    async def text_async() -> None:
        assert (await text_agent.arun(TEXT_PROMPT)).content == TEXT_ANSWER

    async def tool_async() -> None:
        before = tool_calls[0]
        assert (await tool_agent.arun(TOOL_PROMPT)).content == TOOL_ANSWER
        check_tool(before)

    async def stream(agent: Any, prompt: str, answer: str, expected_calls: int) -> None:
        before = tool_calls[0]
        final = None
        events = 0
        async for event in agent.arun(prompt, stream=True, stream_events=True):
            events += 1
            if type(event).__name__ == "RunCompletedEvent":
                final = event.content
        assert final == answer and events > 1
        assert tool_calls[0] == before + expected_calls

    async def text_stream() -> None:
        await stream(text_agent, TEXT_PROMPT, TEXT_ANSWER, 0)

    async def tool_stream() -> None:
        await stream(tool_agent, TOOL_PROMPT, TOOL_ANSWER, 1)

    async def slow_run() -> None:
        assert (await slow_agent.arun(TEXT_PROMPT)).content == TEXT_ANSWER

    return Scenarios(
        construct=construct,
        construct_prepared=construct_prepared,
        text_sync=text_sync,
        tool_sync=tool_sync,
        text_async=text_async,
        tool_async=tool_async,
        text_stream=text_stream,
        tool_stream=tool_stream,
        slow_run=slow_run,
        import_statement=import_statement,
    )


def run_scenarios(sc: Scenarios, settings: Settings) -> dict[str, Any]:
    """Measure every scenario in a fixed order and return the results by key.

    How long each measurement took goes to stderr, to help keep the whole run short.
    """
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("construct", lambda: time_sync(sc.construct, settings)),
        ("construct_prepared", lambda: time_sync(sc.construct_prepared, settings)),
        ("memory", lambda: memory_per_object(sc.construct, settings.memory_count)),
        ("text_sync", lambda: time_sync(sc.text_sync, settings)),
        ("tool_sync", lambda: time_sync(sc.tool_sync, settings)),
        ("text_async", lambda: run_async(time_async(sc.text_async, settings))),
        ("tool_async", lambda: run_async(time_async(sc.tool_async, settings))),
        ("text_stream", lambda: run_async(time_async(sc.text_stream, settings))),
        ("tool_stream", lambda: run_async(time_async(sc.tool_stream, settings))),
        (
            "concurrency",
            lambda: run_async(
                concurrency_ratio(sc.slow_run, settings.concurrency, settings.concurrency_repeats)
            ),
        ),
        (
            "import",
            lambda: import_time_ms(
                sc.import_statement, settings.import_repeats, warm=not settings.quick
            ),
        ),
    ]
    if not __debug__:
        # The scenario checks are assert statements, which -O would remove.
        raise SystemExit("run the benchmarks without -O / PYTHONOPTIMIZE")
    results: dict[str, Any] = {}
    for key, step in steps:
        t0 = time.perf_counter()
        results[key] = step()
        print(f"  {key}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return results


def run_async(coro: Awaitable[Any]) -> Any:
    """Run a coroutine in a fresh event loop (one loop per measurement)."""
    return asyncio.run(coro)  # type: ignore[arg-type]


def environment() -> dict[str, Any]:
    """Interpreter facts recorded with each framework's results."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def emit(result: dict[str, Any]) -> None:
    """Print one framework's results as a single JSON object on stdout."""
    result.setdefault("network_attempts", network_attempts())
    result.setdefault("env", environment())
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
