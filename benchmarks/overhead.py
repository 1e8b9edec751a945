"""Framework overhead, side by side: Pilothouse, agno, pydantic-ai and openai-agents.

Usage::

    python benchmarks/overhead.py            # full run, a few minutes
    python benchmarks/overhead.py --quick    # smoke test, about a minute
    python benchmarks/overhead.py --json     # raw results as JSON instead of the table

Pilothouse is measured with this interpreter (the project's venv, with ``src/`` put first on
``PYTHONPATH`` so the working tree is what gets measured). The other frameworks are measured
with ``benchmarks/.venv-others/bin/python``, made by ``benchmarks/setup_others.sh``; without it
only Pilothouse's column is filled. Each framework runs in its own subprocess, one after the
other, so they never share an interpreter or compete for the CPU. Every model is a fake that
answers instantly, telemetry is off, and any attempt at a network connection fails the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OTHERS_PYTHON = HERE / ".venv-others" / "bin" / "python"

MISSING_OTHERS = (
    "benchmarks/.venv-others is missing, so only Pilothouse was measured: run "
    "benchmarks/setup_others.sh to compare with agno, pydantic-ai and openai-agents."
)

# (name, script, runs under the project's interpreter)
FRAMEWORKS = [
    ("pilothouse", "pilothouse_bench.py", True),
    ("agno", "agno_bench.py", False),
    ("pydantic-ai", "pydantic_ai_bench.py", False),
    ("openai-agents", "openai_agents_bench.py", False),
]

# (result key, row label, unit, Pilothouse target or None, how to read the value)
ROWS: list[tuple[str, str, str, float | None, str]] = [
    ("construct", "Agent construction, one tool from a plain function", "µs", 3, "median_us"),
    ("construct_prepared", "Agent construction, tool object made once", "µs", None, "median_us"),
    ("memory", "Retained memory per agent", "KiB", 3, "kib"),
    ("text_sync", "Text run, sync", "µs", 50, "median_us"),
    ("text_async", "Text run, async", "µs", 50, "median_us"),
    ("text_stream", "Text run, stream with all events", "µs", 50, "median_us"),
    ("tool_sync", "Tool call + answer, sync", "µs", 200, "median_us"),
    ("tool_async", "Tool call + answer, async", "µs", 200, "median_us"),
    ("tool_stream", "Tool call + answer, stream with all events", "µs", 200, "median_us"),
    ("concurrency", "Concurrent runs at 50 ms latency, wall / one run", "×", 1.5, "ratio"),
    ("import", "Import time", "ms", 150, "ms"),
]


def _load_harness() -> ModuleType:
    """Import ``benchmarks/harness.py`` by path, like the framework scripts do."""
    spec = importlib.util.spec_from_file_location("bench_harness", HERE / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: keep what platform reports
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_1min_at_start": load_average(),
    }


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine inflates every timing."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def run_framework(name: str, script: str, python: str, quick: bool) -> dict[str, Any]:
    """Run one framework's script and return its JSON result, or an ``error`` entry."""
    env = {**os.environ, **harness.QUIET_ENV}
    if name == "pilothouse":
        # Measure the working tree, whether or not the venv has Pilothouse installed.
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])
        )
    cmd = [python, str(HERE / "frameworks" / script), *(["--quick"] if quick else [])]
    print(f"[overhead] {name}: running ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    except subprocess.TimeoutExpired:
        return {"framework": name, "error": "timed out after 900 s"}
    took = time.perf_counter() - t0
    print(f"[overhead] {name}: done in {took:.0f} s", file=sys.stderr, flush=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        print(f"[overhead] {name} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
        return {"framework": name, "error": f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(lines[-1])
    if result.get("network_attempts"):
        # The fakes never need the network: an attempt means the numbers include something else.
        return {"framework": name, "error": f"network attempts: {result['network_attempts']}"}
    result["seconds"] = took
    return result


def value(result: dict[str, Any], key: str, field: str) -> float | None:
    """One measurement from a framework's result, or None when it was not measured."""
    entry = result.get("results", {}).get(key)
    if entry is None:
        return None
    return float(entry[field])


def fmt(x: float | None, unit: str) -> str:
    """A measurement for the table: whole numbers from 100, else one or two decimals."""
    if x is None:
        return "n/a"
    if unit == "×":
        return f"{x:.2f}"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def table(
    results: list[dict[str, Any]], info: dict[str, Any], quick: bool, others_missing: bool
) -> str:
    """The markdown report: one row per measurement, one column per framework."""
    heads = []
    for r in results:
        label = f"{r['framework']} {r.get('version', '')}".strip()
        heads.append(f"{label} (failed: {r['error']})" if "error" in r else label)
    lines = [
        "| Measurement | " + " | ".join(heads) + " | Pilothouse target |",
        "|---" * (len(heads) + 2) + "|",
    ]
    pilothouse = next((r for r in results if r["framework"] == "pilothouse"), {})
    for key, label, unit, target, field in ROWS:
        n = ""
        if key == "concurrency":
            counts = {value(r, key, "n") for r in results if "error" not in r}
            n = f" (n = {', '.join(f'{c:,.0f}' for c in sorted(c for c in counts if c))})"
        cells = [fmt(value(r, key, field), unit) for r in results]
        if key == "memory":
            # A framework that is slow under tracemalloc stops early: say from how many agents.
            made = [value(r, key, "objects") for r in results]
            most = max((m for m in made if m), default=0)
            cells = [
                f"{c} (n = {m:,.0f})" if m and m < most else c
                for c, m in zip(cells, made, strict=True)
            ]
        goal = "-"
        if target is not None:
            mine = value(pilothouse, key, field)
            verdict = "" if mine is None else (" ✓" if mine <= target else " ✗")
            goal = f"≤ {target:g}{verdict}"
        lines.append(f"| {label}{n} ({unit}) | " + " | ".join(cells) + f" | {goal} |")
    lines.append("")
    if others_missing:
        lines.append(MISSING_OTHERS)
        lines.append("")
    lines.append("Stream mode per framework:")
    for r in results:
        if "stream_api" in r:
            lines.append(f"- {r['framework']}: {r['stream_api']}")
    lines.append("")
    loads = [info["load_1min_at_start"], info.get("load_1min_at_end")]
    load = "/".join("n/a" if x is None else f"{x:.2f}" for x in loads)
    pythons = sorted({r["env"]["python"] for r in results if "env" in r} or {info["python"]})
    lines.append(
        f"Machine: {info['cpu']}, {info['cores']} cores, Python {', '.join(pythons)}, "
        f"{info['platform']}; {info['date']}; 1-min load average at start/end {load}"
        f"{'; --quick (smoke-test precision)' if quick else ''}."
    )
    lines.append(
        "Method: µs are the median over batches of per-call wall time after warm-up, GC on; "
        "memory is tracemalloc growth per live agent; the concurrency ratio is the wall time of "
        "n concurrent async runs over that of one run, with the model awaiting 50 ms; import "
        "time is `python -c 'from <framework> import Agent'` minus `python -c pass`, medians "
        "over fresh subprocesses. Every model is a fake that answers at once; each run is "
        "checked for the final text and exactly one tool execution."
    )
    return "\n".join(lines)


def main() -> int:
    """Run every framework and print the table (or the JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated frameworks to run (default: all), e.g. pilothouse,agno",
    )
    args = parser.parse_args()
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = wanted - {name for name, _, _ in FRAMEWORKS}
    if unknown:
        parser.error(f"unknown framework(s): {', '.join(sorted(unknown))}")

    info = machine()
    results = []
    others_missing = not OTHERS_PYTHON.exists()
    if others_missing:
        print(f"[overhead] {MISSING_OTHERS}", file=sys.stderr)
    for name, script, own in FRAMEWORKS:
        if wanted and name not in wanted:
            continue
        if not own and others_missing:
            continue
        python = sys.executable if own else str(OTHERS_PYTHON)
        results.append(run_framework(name, script, python, args.quick))

    info["load_1min_at_end"] = load_average()
    if args.json:
        raw = {"machine": info, "quick": args.quick, "frameworks": results}
        json.dump(raw, sys.stdout)
        print()
    else:
        print(table(results, info, args.quick, others_missing))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
