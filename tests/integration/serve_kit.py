"""Running ``pilothouse serve`` on loopback for the serve tests, and reading its SSE streams."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from serverkit import free_port, unavailable

SERVED = Path(__file__).with_name("served_agents.py")
PG_URL = os.environ.get("PILOTHOUSE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
KEY = "test-key-" + uuid.uuid4().hex
JWT_SECRET = "jwt-secret-" + uuid.uuid4().hex
ALL_SCOPES = "agents:read agents:run sessions:read sessions:write memories:read memories:write"


@dataclass
class Server:
    """One ``pilothouse serve`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, token: str | None = KEY, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server, authenticated with ``token`` (None: without)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")


def token(user: str, scopes: str = ALL_SCOPES, *, expires_in: float = 600) -> str:
    """An HS256 JWT for ``user`` with ``scopes``."""
    import jwt

    claims = {"sub": user, "scope": scopes, "exp": int(time.time() + expires_in)}
    return str(jwt.encode(claims, JWT_SECRET, algorithm="HS256"))


def base_env(db: str, **settings: str) -> dict[str, str]:
    """The environment of a served app on ``db`` with auth on."""
    return {
        "SERVE_TEST_DB": db,
        "SERVE_TEST_AUTH": "1",
        "SERVE_TEST_KEY": KEY,
        "SERVE_TEST_JWT_SECRET": JWT_SECRET,
        **settings,
    }


def _start(env: dict[str, str], log_path: Path, workers: int, drain: float) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "pilothouse.cli",
        "serve",
        f"{SERVED}:app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--drain-timeout",
        str(drain),
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process below
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}
    )
    log.close()
    return Server(f"http://127.0.0.1:{port}", process, log_path)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            unavailable(
                f"pilothouse serve exited with {server.process.returncode}: " + server.log()[-3000:]
            )
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            unavailable(f"pilothouse serve did not start in {timeout}s: " + server.log()[-3000:])
        time.sleep(0.1)


def stop(server: Server, timeout: float = 30) -> int:
    """SIGTERM the server and wait for it; its exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextlib.contextmanager
def servers(
    env: dict[str, str], tmp_path: Path, count: int = 1, *, workers: int = 1, drain: float = 10
) -> Iterator[list[Server]]:
    """``count`` servers of the same app and database, started together."""
    started = [
        _start(env, tmp_path / f"server-{i}-{uuid.uuid4().hex[:6]}.log", workers, drain)
        for i in range(count)
    ]
    try:
        for server in started:
            _wait_ready(server, 60)
        yield started
    finally:
        for server in started:
            stop(server)


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a test dependency
        unavailable(f"psycopg is not installed: {exc}")
    schema = "serve_" + uuid.uuid4().hex[:10]
    try:
        with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {PG_URL} is not reachable: {str(exc).strip()}")
    try:
        yield schema
    finally:
        with psycopg.connect(PG_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def db_spec(kind: str, tmp_path: Path, schema: str | None = None) -> str:
    """``SERVE_TEST_DB`` for a fresh database of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'serve.db'}"
    assert schema is not None
    return f"postgres:{PG_URL}|{schema}|t{uuid.uuid4().hex[:8]}_"


@dataclass
class Frame:
    """One SSE frame."""

    id: int
    event: str
    data: dict[str, Any] = field(default_factory=dict)


class SseReader:
    """Reads frames from a streaming httpx response, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next(self) -> Frame | None:
        """The next frame (keep-alive comments skipped); None at the end of the stream."""
        fields: dict[str, str] = {}
        for line in self._lines:
            if not line:
                if "event" in fields:
                    return Frame(int(fields["id"]), fields["event"], json.loads(fields["data"]))
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        return None

    def rest(self) -> list[Frame]:
        """Every frame until the stream ends."""
        frames = []
        while (frame := self.next()) is not None:
            frames.append(frame)
        return frames


def wait_for_status(
    client: httpx.Client, path: str, statuses: set[str], timeout: float = 15
) -> dict[str, Any]:
    """Poll ``GET path`` until the run's status is one of ``statuses``; the run."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path)
        run: dict[str, Any] = answer.json()
        if answer.status_code == 200 and run.get("status") in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} stayed {run.get('status')!r}, wanted {statuses}")
        time.sleep(0.05)
