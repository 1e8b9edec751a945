"""CPU instructions per run, counted by valgrind's callgrind: a figure a busy machine cannot move.

Wall-clock figures (`overhead.py`) swing by tens of percent when anything else runs on the
machine; instruction counts do not. This measures the same scenarios as `overhead.py` (agent
construction, a text run and a tool run, sync and async, on the instant `TestModel`) as the
difference between two processes that do N and 0 measured iterations after the same warm-up,
with hash randomisation off and the warm-up's garbage frozen, so that both do the same work.

Usage::

    python benchmarks/instructions.py                         # this tree
    python benchmarks/instructions.py --against ../old/src    # side by side with another tree

Needs ``valgrind`` on the PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 200
MEASURED = {"construct": 20000, "text": 1000, "tool": 500}

SCENARIO = """
import asyncio, gc, sys
from pilothouse import Agent
from pilothouse.models.test import TestModel

kind, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def get_weather(city: str) -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"sunny in {city}"


model = TestModel(text="done")  # calls every tool the agent has, once


def settle():
    # What the warm-up left behind is not collected during the measured iterations.
    gc.collect()
    gc.freeze()


if kind == "construct":
    for _ in range(WARMUP):
        Agent(model=model, tools=[get_weather])
    settle()
    for _ in range(n):
        Agent(model=model, tools=[get_weather])
    raise SystemExit
agent = Agent(model=model, tools=[get_weather] if kind == "tool" else None)
if mode == "sync":
    for _ in range(WARMUP):
        agent.run("What is the weather in Paris?")
    settle()
    for _ in range(n):
        agent.run("What is the weather in Paris?")
else:
    async def main():
        for _ in range(WARMUP):
            await agent.arun("What is the weather in Paris?")
        settle()
        for _ in range(n):
            await agent.arun("What is the weather in Paris?")
    asyncio.run(main())
""".replace("WARMUP", str(WARMUP))

SCENARIOS = [
    ("construct", "sync", "Agent construction, one tool"),
    ("text", "sync", "Text run, sync"),
    ("text", "async", "Text run, async"),
    ("tool", "sync", "Tool call + answer, sync"),
    ("tool", "async", "Tool call + answer, async"),
]


def _total(src: Path, kind: str, mode: str, n: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-c", SCENARIO, kind, mode, str(n)]
    # Once without valgrind, so that compiling bytecode is never part of a measurement.
    subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in: {done.stderr[-500:]}")
    return int(found.group(1))


def per_iteration(src: Path, kind: str, mode: str) -> int:
    """Instructions one measured iteration costs with the sources in ``src``."""
    n = MEASURED[kind]
    return (_total(src, kind, mode, n) - _total(src, kind, mode, 0)) // n


def main() -> int:
    """Print instructions per iteration for this tree (and another, side by side)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the src/ directory of another tree")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on the PATH")
    trees = [("this tree", ROOT / "src")]
    if args.against is not None:
        trees.insert(0, (str(args.against), args.against.resolve()))
    header = f"| Scenario | {' | '.join(name for name, _ in trees)} |"
    if len(trees) == 2:
        header += " change |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for kind, mode, label in SCENARIOS:
        counts = [per_iteration(src, kind, mode) for _, src in trees]
        row = f"| {label} | {' | '.join(f'{c:,}' for c in counts)} |"
        if len(counts) == 2:
            row += f" {100 * (counts[1] - counts[0]) / counts[0]:+.1f} % |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
