"""Every script in examples/ runs to completion offline, and the README lists it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# Runs the example as __main__ with every connection that leaves the machine refused, so an
# example that quietly needs the network fails here.
_OFFLINE_RUNNER = """
import ipaddress, runpy, socket, sys

_connect = socket.socket.connect

def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            raise OSError(f"example tried to reach {host}: examples must run offline")
    return _connect(self, address)

socket.socket.connect = _loopback_only
script = sys.argv[1]
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_RUNNER, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "an example should show what it did"


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_says_what_it_shows_and_is_listed_in_the_readme(script: Path) -> None:
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert docstring, f"{script.name} needs a module docstring saying what it shows"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"(examples/{script.name})" in readme, f"list {script.name} in README.md"


def test_the_offline_runner_refuses_the_network(tmp_path: Path) -> None:
    script = tmp_path / "online.py"
    script.write_text(
        "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=5)\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_RUNNER, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert re.search(r"example tried to reach 192\.0\.2\.1", done.stderr)
