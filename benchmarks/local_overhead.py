"""What Pilothouse adds to a local llama.cpp generation.

The same prompt, with the same sampling (temperature 0, a fixed seed, the same max_tokens), goes
through ``Agent(model=LlamaCpp(...)).run(...)`` and straight through
``llama_cpp.Llama.create_chat_completion(..., stream=True)`` on the same loaded model, in the
same process, alternately. Before every generation the model's context is emptied, so both
evaluate the whole prompt. Prints each wall time, the medians, Pilothouse's overhead as a share
of its wall time, and tokens per second.

    .venv/bin/python benchmarks/local_overhead.py              # SmolLM2-135M, 8 repetitions
    .venv/bin/python benchmarks/local_overhead.py --reps 12 --max-tokens 64 --stream
    .venv/bin/python benchmarks/local_overhead.py --bridges    # thread-to-loop hand-off costs

Needs ``pip install 'pilothouse[local]'``. On a busy machine the wall times wander; the paired
differences (each Pilothouse run against the direct run next to it) are the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from pilothouse import Agent
from pilothouse.models.llama_cpp import LlamaCpp

PROMPT = "Write a short poem about the sea."


def direct_run(model: LlamaCpp, llama: Any, max_tokens: int, seed: int) -> tuple[float, float, str]:
    with model.lock:
        llama.reset()  # evaluate the whole prompt, as after a different conversation
        cpu = time.process_time()
        started = time.perf_counter()
        pieces = []
        for chunk in llama.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            temperature=0.0,
            seed=seed,
            max_tokens=max_tokens,
        ):
            content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            if content:
                pieces.append(content)
        wall = time.perf_counter() - started
        return wall, time.process_time() - cpu, "".join(pieces)


def pilothouse_run(
    model: LlamaCpp, llama: Any, agent: Agent, stream: bool
) -> tuple[float, float, str, int]:
    with model.lock:
        llama.reset()
    cpu = time.process_time()
    started = time.perf_counter()
    if stream:
        for _ in agent.run(PROMPT, stream=True):
            pass
        out = agent.get_last_run_output()
        assert out is not None
    else:
        out = agent.run(PROMPT)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    assert out.status.value == "COMPLETED", out.content
    return elapsed, cpu, str(out.content), out.metrics.output_tokens


def overhead(args: argparse.Namespace) -> None:
    # The direct side's sampling and messages: no repetition penalty, no system message (the
    # repetition guard and the context fitting stay on: they are part of what is measured).
    model = LlamaCpp(
        temperature=0,
        seed=args.seed,
        max_tokens=args.max_tokens,
        repeat_penalty=1.0,
        system_prompt=None,
    )
    started = time.perf_counter()
    llama = model.load()
    print(f"model: {model.id}, loaded in {time.perf_counter() - started:.2f} s")
    agent = Agent(model=model)
    # Warm-up: first-call costs (imports, grammar and thread start) are not what is measured.
    direct_run(model, llama, args.max_tokens, args.seed)
    pilothouse_run(model, llama, agent, args.stream)

    direct_times: list[float] = []
    framework_times: list[float] = []
    direct_cpu: list[float] = []
    framework_cpu: list[float] = []
    tokens = 0
    same = True
    mode = "run(stream=True)" if args.stream else "run()"
    print(
        f"{'rep':>3}  {'direct s':>9}  {'pilothouse s':>12}  {'diff ms':>8}  "
        f"{'direct cpu s':>12}  {'pilothouse cpu s':>16}"
    )
    for rep in range(args.reps):
        # Alternate the order so that drift in the machine's load hits both sides alike.
        if rep % 2:
            p_time, p_cpu, p_text, tokens = pilothouse_run(model, llama, agent, args.stream)
            d_time, d_cpu, d_text = direct_run(model, llama, args.max_tokens, args.seed)
        else:
            d_time, d_cpu, d_text = direct_run(model, llama, args.max_tokens, args.seed)
            p_time, p_cpu, p_text, tokens = pilothouse_run(model, llama, agent, args.stream)
        same = same and d_text == p_text
        direct_times.append(d_time)
        framework_times.append(p_time)
        direct_cpu.append(d_cpu)
        framework_cpu.append(p_cpu)
        print(
            f"{rep:>3}  {d_time:>9.3f}  {p_time:>12.3f}  {(p_time - d_time) * 1000:>8.1f}  "
            f"{d_cpu:>12.3f}  {p_cpu:>16.3f}"
        )

    d_med = statistics.median(direct_times)
    p_med = statistics.median(framework_times)
    paired = statistics.median(p - d for p, d in zip(framework_times, direct_times, strict=True))
    print()
    print(f"prompt: {PROMPT!r}; {tokens} output tokens per run; Pilothouse via agent.{mode}")
    print(f"same text both ways: {same}")
    print(f"median wall time: direct {d_med:.3f} s, Pilothouse {p_med:.3f} s")
    print(f"tokens/s: direct {tokens / d_med:.1f}, Pilothouse {tokens / p_med:.1f}")
    d_min, p_min = min(direct_times), min(framework_times)
    print(
        f"Pilothouse overhead: {(p_med - d_med) * 1000:.1f} ms = {(p_med - d_med) / p_med:.2%} "
        f"of its wall time (medians); paired median {paired * 1000:.1f} ms = "
        f"{paired / p_med:.2%}; best runs {(p_min - d_min) * 1000:.1f} ms = "
        f"{(p_min - d_min) / p_min:.2%}"
    )
    d_cpu_med, p_cpu_med = statistics.median(direct_cpu), statistics.median(framework_cpu)
    print(
        f"CPU time (whole process, median): direct {d_cpu_med:.3f} s, Pilothouse "
        f"{p_cpu_med:.3f} s: {(p_cpu_med - d_cpu_med) * 1000:.1f} ms more = "
        f"{(p_cpu_med - d_cpu_med) / p_cpu_med:.2%}"
    )
    replay(model, llama, args, p_med)


# ---------------------------------------------------------------------------- replay


def replay(model: LlamaCpp, llama: Any, args: argparse.Namespace, real_wall: float) -> None:
    """Pilothouse's own cost per run, measured without the model's noise.

    The chunks of one real generation are recorded, then served again instantly, both to a
    plain loop over them and to ``agent.run``: the difference is what Pilothouse spends per
    run (run bookkeeping, the hand-off from the worker thread, chunk translation, events),
    compared with the real run's wall time.
    """
    kwargs = {"temperature": 0.0, "seed": args.seed, "max_tokens": args.max_tokens}
    messages = [{"role": "user", "content": PROMPT}]
    with model.lock:
        llama.reset()
        recorded = list(llama.create_chat_completion(messages=messages, stream=True, **kwargs))
    tokens = sum(1 for c in recorded if c["choices"] and c["choices"][0]["delta"].get("content"))

    def served(**_: Any) -> Iterator[dict[str, Any]]:
        counts = llama.pilothouse_counts
        if counts is not None:
            counts.prompt, counts.completion = 10, tokens
        return iter(recorded)

    def direct_once() -> None:
        pieces = []
        for chunk in served():
            content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            if content:
                pieces.append(content)
        "".join(pieces)

    agent = Agent(model=model)
    llama.create_chat_completion = served  # this instance only, until the end of replay
    try:
        n = args.replays
        for _ in range(20):
            agent.run(PROMPT)
        started = time.perf_counter()
        for _ in range(n):
            direct_once()
        direct = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for _ in range(n):
            if args.stream:
                for _event in agent.run(PROMPT, stream=True):
                    pass
            else:
                agent.run(PROMPT)
        framework = (time.perf_counter() - started) / n
    finally:
        del llama.create_chat_completion
    cost = framework - direct
    print()
    print(
        f"replay of {len(recorded)} recorded chunks ({tokens} with text), {n} runs each: "
        f"direct {direct * 1e6:.0f} µs, Pilothouse {framework * 1e6:.0f} µs per run"
    )
    print(
        f"Pilothouse's own cost: {cost * 1000:.2f} ms per run = {cost / real_wall:.2%} of a "
        f"real run's wall time ({real_wall:.3f} s)"
    )


# ---------------------------------------------------------------------------- bridges


def _chunks(count: int, every: float) -> Iterator[int]:
    for i in range(count):
        if every:
            time.sleep(every)
        yield i


async def _via_queue(count: int, every: float) -> int:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    def produce() -> None:
        for item in _chunks(count, every):
            loop.call_soon_threadsafe(queue.put_nowait, item)
        loop.call_soon_threadsafe(queue.put_nowait, end)

    threading.Thread(target=produce).start()
    received = 0
    while (await queue.get()) is not end:
        received += 1
    return received


async def _via_to_thread(count: int, every: float) -> int:
    iterator = _chunks(count, every)
    end = object()
    received = 0
    while (await asyncio.to_thread(next, iterator, end)) is not end:
        received += 1
    return received


def bridges(args: argparse.Namespace) -> None:
    """Cost per chunk of the two ways to hand chunks from a worker thread to the event loop."""
    for every in (0.0, 0.005):
        count = 20_000 if every == 0 else 400
        for name, bridge in (("queue", _via_queue), ("to_thread", _via_to_thread)):
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                assert asyncio.run(bridge(count, every)) == count
                runs.append(time.perf_counter() - started)
            per_chunk = (statistics.median(runs) - count * every) / count
            print(
                f"chunk every {every * 1000:.0f} ms: {name:>9}: {per_chunk * 1e6:7.1f} µs "
                "per chunk beyond the producer's own time"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stream", action="store_true", help="time agent.run(stream=True)")
    parser.add_argument("--replays", type=int, default=300, help="runs of the replay")
    parser.add_argument("--bridges", action="store_true", help="only compare hand-off methods")
    args = parser.parse_args()
    if args.bridges:
        bridges(args)
    else:
        overhead(args)


if __name__ == "__main__":
    sys.exit(main())
