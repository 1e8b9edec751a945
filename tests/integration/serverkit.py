"""Starting real servers on loopback for integration tests, and the skip-or-fail rule.

On a developer machine a missing server skips its tests with the reason; under ``CI=true`` it
fails them, so that CI can never pass without having talked to the real thing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the test (fail it under CI=true) because a server it needs is not there."""
    if IN_CI:
        pytest.fail(f"required server unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(
    command: Sequence[str],
    *,
    ready_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until ``ready_url`` answers 200, yield the process, stop it."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    unavailable(
                        f"{command[0]} exited with {process.returncode}: "
                        + log_path.read_text(errors="replace")[-2000:]
                    )
                try:
                    with urllib.request.urlopen(ready_url, timeout=2) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    unavailable(f"{command[0]} did not become ready at {ready_url} in {timeout}s")
                time.sleep(0.25)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
