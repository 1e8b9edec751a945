"""The HTTP service, side by side with agno's AgentOS: what serving a run costs.

Usage::

    benchmarks/setup_others.sh                  # once: agno 3.1.10 + its server in .venv-others
    .venv/bin/python benchmarks/serve.py         # full run, about 4 minutes on 2 cores
    .venv/bin/python benchmarks/serve.py --quick
    .venv/bin/python benchmarks/serve.py --only pilothouse --json

Each framework's app (``benchmarks/frameworks/*_serve_app.py``: one agent, the fake model of
``overhead.py``, answering with one chunk) runs under uvicorn in its own process and
interpreter (Pilothouse through ``pilothouse serve``, agno through ``uvicorn``; both with
httptools and uvloop, access log off). This script is the client: a minimal HTTP/1.1 client on
asyncio streams, the same for both, so that the client costs little and the same.

- **Overhead**: median latency of a non-streamed run over one keep-alive connection (form body
  ``message=...&stream=false``), minus the median of ``await agent.arun(...)`` on the same
  agent in a process of its own; and the same in CPU time (the server process's CPU seconds
  per request, against the CPU time of a direct run), which a busy machine disturbs less.
  Instant model, in-memory store (agno: none; its InMemoryDb costs more than the whole
  request).
- **Concurrency**: 1,000 streamed runs at once on one worker (one connection each, opened
  beforehand) against a model that waits 50 ms: the wall time until every stream has ended,
  divided by the wall time of one streamed run. 1.0 is ideal; the client shares the machine.
- **Throughput**: non-streamed runs per second with PostgreSQL as the store, 1 and 4 workers,
  32 client connections each sending runs back to back.
- **Memory per open stream**: the server's RSS growth with 500 streams open (each run waiting
  on its model), divided by 500.

Every response is checked (status, the answer's text, the stream's last event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS_DIR = ROOT / "benchmarks" / "frameworks"
OTHERS_PYTHON = ROOT / "benchmarks" / ".venv-others" / "bin" / "python"
ANSWER = b"Hello! How can I help?"
PROMPT = "Say hello."


@dataclass(frozen=True)
class Settings:
    """Counts for one run of the benchmark."""

    requests: int
    concurrency: int
    repeats: int
    clients: int
    seconds: float
    streams: int

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(requests=300, concurrency=200, repeats=1, clients=16, seconds=3, streams=100)
        return cls(requests=2000, concurrency=1000, repeats=3, clients=32, seconds=10, streams=500)


# --- a small HTTP/1.1 client ------------------------------------------------------------------


class Http:
    """One keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Http:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    def send_form(self, path: str, fields: dict[str, str]) -> None:
        body = urllib.parse.urlencode(fields).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)

    async def head(self) -> tuple[int, dict[str, str]]:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def chunks(self, headers: dict[str, str]) -> Any:
        """The body, as it arrives (chunked) or at once (Content-Length)."""
        if "content-length" in headers:
            yield await self.reader.readexactly(int(headers["content-length"]))
            return
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return
            yield (await self.reader.readexactly(size + 2))[:-2]

    async def run(self, path: str, fields: dict[str, str]) -> tuple[int, bytes]:
        self.send_form(path, fields)
        status, headers = await self.head()
        body = b"".join([chunk async for chunk in self.chunks(headers)])
        return status, body


def _check(status: int, body: bytes, streamed: bool) -> None:
    if status != 200 or ANSWER not in body or (streamed and b"RunCompleted" not in body):
        raise AssertionError(f"bad answer {status}: {body[:300]!r}")


# --- servers ------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command(framework: str, port: int, workers: int) -> list[str]:
    if framework == "pilothouse":
        target = f"{FRAMEWORKS_DIR / 'pilothouse_serve_app.py'}:app"
        return [
            sys.executable,
            "-m",
            "pilothouse.cli",
            "serve",
            target,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
    return [
        str(OTHERS_PYTHON),
        "-m",
        "uvicorn",
        "agno_serve_app:app",
        "--app-dir",
        str(FRAMEWORKS_DIR),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


@contextmanager
def server(framework: str, env: dict[str, str], workers: int = 1) -> Iterator[tuple[int, int]]:
    """Start the framework's app; yield (port, pid); stop it."""
    import urllib.request

    port = _free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "AGNO_TELEMETRY": "false", **env}
    process = subprocess.Popen(
        _command(framework, port, workers),
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{framework} server exited: {process.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as ok:
                    if ok.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{framework} server did not start")
            time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- scenarios ----------------------------------------------------------------------------------

RUN_PATH = "/agents/bench/runs"
PLAIN = {"message": PROMPT, "stream": "false"}
STREAMED = {"message": PROMPT, "stream": "true"}


def direct_run(framework: str, requests: int) -> dict[str, float]:
    python = sys.executable if framework == "pilothouse" else str(OTHERS_PYTHON)
    script = FRAMEWORKS_DIR / f"{framework}_serve_app.py"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "AGNO_TELEMETRY": "false",
        "BENCH_DB": "memory",
        "BENCH_LATENCY_S": "0",
    }
    done = subprocess.run(
        [python, str(script), "--direct", str(requests)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def http_latency(port: int, pid: int, requests: int) -> dict[str, float]:
    """Wall latency per request, and the server's CPU time per request (steadier than wall
    time on a busy machine)."""
    conn = await Http.open(port)
    for _ in range(max(50, requests // 5)):
        _check(*await conn.run(RUN_PATH, PLAIN), streamed=False)
    times = []
    cpu_before = _cpu_s(pid)
    for _ in range(requests):
        started = time.perf_counter()
        status, body = await conn.run(RUN_PATH, PLAIN)
        times.append(time.perf_counter() - started)
        _check(status, body, streamed=False)
    cpu_us = (_cpu_s(pid) - cpu_before) / requests * 1e6
    conn.close()
    times.sort()
    return {
        "p50_us": statistics.median(times) * 1e6,
        "p90_us": times[int(len(times) * 0.9)] * 1e6,
        "cpu_us": cpu_us,
    }


async def _streamed_run(conn: Http) -> None:
    status, body = await conn.run(RUN_PATH, STREAMED)
    _check(status, body, streamed=True)


async def concurrency(port: int, pid: int, n: int, repeats: int) -> dict[str, float]:
    """Wall time of ``n`` concurrent streamed runs over that of one; with the CPU seconds the
    server and this client spent on them (on 2 cores, CPU time bounds the wall time)."""
    singles = []
    for _ in range(5):
        conn = await Http.open(port)
        started = time.perf_counter()
        await _streamed_run(conn)
        singles.append(time.perf_counter() - started)
        conn.close()
    one = statistics.median(singles)
    walls, server_cpu, client_cpu = [], [], []
    for _ in range(repeats):
        conns = []
        for start in range(0, n, 100):
            conns += await asyncio.gather(*(Http.open(port) for _ in range(min(100, n - start))))
        started, cpu, mine = time.perf_counter(), _cpu_s(pid), time.process_time()
        await asyncio.gather(*(_streamed_run(c) for c in conns))
        walls.append(time.perf_counter() - started)
        server_cpu.append(_cpu_s(pid) - cpu)
        client_cpu.append(time.process_time() - mine)
        for conn in conns:
            conn.close()
        await asyncio.sleep(0.5)
        if walls[-1] > 8:
            break
    wall = statistics.median(walls)
    return {
        "one_s": one,
        "all_s": wall,
        "ratio": wall / one,
        "server_cpu_s": statistics.median(server_cpu),
        "client_cpu_s": statistics.median(client_cpu),
    }


async def throughput(port: int, clients: int, seconds: float) -> dict[str, float]:
    conns = [await Http.open(port) for _ in range(clients)]
    counts = {"ok": 0, "failed": 0}
    measuring = False
    stop_at = time.monotonic() + 2 + seconds

    async def client(conn: Http) -> None:
        while time.monotonic() < stop_at:
            status, body = await conn.run(RUN_PATH, PLAIN)
            ok = status == 200 and ANSWER in body
            if measuring:
                counts["ok" if ok else "failed"] += 1

    async def clock() -> None:
        nonlocal measuring
        await asyncio.sleep(2)  # warm-up: connections, pools, tables
        measuring = True

    await asyncio.gather(clock(), *(client(c) for c in conns))
    for conn in conns:
        conn.close()
    return {"per_s": counts["ok"] / seconds, "failed": counts["failed"]}


async def memory_per_stream(port: int, pid: int, n: int) -> dict[str, float]:
    async def open_stream() -> Http:
        conn = await Http.open(port)
        conn.send_form(RUN_PATH, STREAMED)
        status, headers = await conn.head()
        assert status == 200, status
        await anext(aiter(conn.chunks(headers)))  # the first frame: the run is under way
        return conn

    warm = await asyncio.gather(*(open_stream() for _ in range(20)))
    for conn in warm:
        conn.close()
    await asyncio.sleep(5)  # their runs are cancelled and released
    before = _rss_kib(pid)
    conns = []
    for start in range(0, n, 100):
        conns += await asyncio.gather(*(open_stream() for _ in range(min(100, n - start))))
    await asyncio.sleep(1)
    during = _rss_kib(pid)
    for conn in conns:
        conn.close()
    return {"kib_per_stream": (during - before) / n, "rss_before_mib": before / 1024}


# --- PostgreSQL ---------------------------------------------------------------------------------


@contextmanager
def pg_schema(url: str) -> Iterator[str | None]:
    try:
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        print(f"PostgreSQL unavailable ({exc}); skipping throughput", file=sys.stderr)
        yield None
        return
    try:
        yield schema
    finally:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# --- runner -------------------------------------------------------------------------------------


def measure(framework: str, s: Settings, pg_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    memory = {"BENCH_DB": "memory", "BENCH_LATENCY_S": "0"}
    direct = direct_run(framework, s.requests)
    with server(framework, memory) as (port, pid):
        http = asyncio.run(http_latency(port, pid, s.requests))
    results["overhead"] = {
        **http,
        "direct_p50_us": direct["p50_us"],
        "direct_cpu_us": direct["cpu_us"],
        "overhead_p50_us": http["p50_us"] - direct["p50_us"],
        "overhead_cpu_us": http["cpu_us"] - direct["cpu_us"],
    }
    with server(framework, {**memory, "BENCH_LATENCY_S": "0.05"}) as (port, pid):
        results["concurrency"] = asyncio.run(concurrency(port, pid, s.concurrency, s.repeats))
    for workers in (1, 4):
        with pg_schema(pg_url) as schema:
            if schema is None:
                break
            env = {
                "BENCH_DB": "postgres",
                "BENCH_PG_URL": pg_url,
                "BENCH_PG_SCHEMA": schema,
                "BENCH_LATENCY_S": "0",
            }
            with server(framework, env, workers) as (port, _):
                results[f"throughput_{workers}"] = asyncio.run(
                    throughput(port, s.clients, s.seconds)
                )
    with server(framework, {**memory, "BENCH_LATENCY_S": "120"}) as (port, pid):
        results["memory"] = asyncio.run(memory_per_stream(port, pid, s.streams))
    return results


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: dict[str, dict[str, Any]], s: Settings) -> str:
    names = list(results)
    rows = [
        ("Non-streamed run over HTTP, p50 (µs)", lambda r: _fmt(r["overhead"]["p50_us"]), "-"),
        (
            "Direct `await agent.arun()`, p50 (µs)",
            lambda r: _fmt(r["overhead"]["direct_p50_us"]),
            "-",
        ),
        (
            "**Per-request overhead, p50 (µs)**",
            lambda r: _fmt(r["overhead"]["overhead_p50_us"]),
            "≤ 1,000",
        ),
        ("Non-streamed run over HTTP, p90 (µs)", lambda r: _fmt(r["overhead"]["p90_us"]), "-"),
        (
            "Server CPU per non-streamed run over HTTP (µs)",
            lambda r: _fmt(r["overhead"]["cpu_us"]),
            "-",
        ),
        ("CPU per direct `arun()` (µs)", lambda r: _fmt(r["overhead"]["direct_cpu_us"]), "-"),
        (
            "**Per-request overhead, CPU (µs)**",
            lambda r: _fmt(r["overhead"]["overhead_cpu_us"]),
            "≤ 1,000",
        ),
        (
            "One streamed run at 50 ms (ms)",
            lambda r: _fmt(r["concurrency"]["one_s"] * 1e3, 1),
            "-",
        ),
        (
            f"{s.concurrency:,} concurrent streamed runs at 50 ms (s)",
            lambda r: _fmt(r["concurrency"]["all_s"], 2),
            "-",
        ),
        (
            f"**{s.concurrency:,} concurrent streams, wall / one run (×)**",
            lambda r: _fmt(r["concurrency"]["ratio"], 2),
            "≤ 1.5",
        ),
        (
            "Server / client CPU during them (s)",
            lambda r: (
                _fmt(r["concurrency"]["server_cpu_s"], 2)
                + " / "
                + _fmt(r["concurrency"]["client_cpu_s"], 2)
            ),
            "-",
        ),
        (
            "Runs/s, PostgreSQL, 1 worker",
            lambda r: _fmt(r.get("throughput_1", {}).get("per_s")),
            "-",
        ),
        (
            "Runs/s, PostgreSQL, 4 workers",
            lambda r: _fmt(r.get("throughput_4", {}).get("per_s")),
            "-",
        ),
        ("Memory per open stream (KiB)", lambda r: _fmt(r["memory"]["kib_per_stream"], 1), "-"),
    ]
    lines = [
        "| Measurement | " + " | ".join(names) + " | Pilothouse target |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for label, get, target in rows:
        lines.append(
            f"| {label} | " + " | ".join(get(results[n]) for n in names) + f" | {target} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["pilothouse", "agno"])
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    s = Settings.make(args.quick)
    frameworks = [args.only] if args.only else ["pilothouse", "agno"]
    if "agno" in frameworks and not OTHERS_PYTHON.exists():
        print(
            "benchmarks/.venv-others is missing (benchmarks/setup_others.sh): agno skipped",
            file=sys.stderr,
        )
        frameworks.remove("agno")
    load_start = os.getloadavg()[0]
    results = {}
    for framework in frameworks:
        print(f"measuring {framework}...", file=sys.stderr)
        results[framework] = measure(framework, s, args.pg_url)
    load_end = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"settings": s.__dict__, "results": results}, indent=2))
        return
    print(table(results, s))
    print(
        f"\n1-min load average at start/end: {load_start:.2f}/{load_end:.2f}; "
        f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
    )


if __name__ == "__main__":
    main()
