"""The shared test kit of the session store conformance suite: store factories, the
PostgreSQL skip-or-fail rule, and run builders."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

from pilothouse.db import SessionStore
from pilothouse.run.output import RunOutput, RunStatus

#: Opens another store object on the same database (the same object for InMemoryDb).
StoreFactory = Callable[[], SessionStore]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("PILOTHOUSE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


def new_id(prefix: str = "") -> str:
    """A fresh unique id."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def make_run(
    session_id: str,
    run_id: str | None = None,
    *,
    status: RunStatus = RunStatus.running,
    content: Any = None,
    user_id: str | None = "user-1",
    agent_id: str | None = "agent-1",
    created_at: int | None = None,
) -> dict[str, Any]:
    """A run dict as the run loop stores it: ``RunOutput.to_dict()``."""
    run = RunOutput(
        run_id=run_id or new_id("run-"),
        session_id=session_id,
        user_id=user_id,
        agent_id=agent_id,
        agent_name="kit",
        content=content,
        status=status,
        metadata={"note": "conformance", "nested": {"list": [1, 2.5, "three", None]}},
    )
    if created_at is not None:
        run.created_at = created_at
    return run.to_dict()


def finished(
    run: dict[str, Any], content: Any, status: RunStatus = RunStatus.completed
) -> dict[str, Any]:
    """The same run as the loop finalises it."""
    return {**run, "content": content, "status": status.value}


#: Text a store must keep exactly: a NUL, lone surrogates (an undecodable file name from
#: os.listdir, json.loads('"\\ud800"')), the stores' own escape character and what its escapes
#: look like, and a backslash before "u0000".
ODD_TEXT = "a\x00b\ud800c\udfffd\udcff.txt \ufdd0 \ufdd00 \ufdd0sd800 \\u0000 \x01 ok"


def odd_value() -> dict[str, Any]:
    """A JSON value with `ODD_TEXT` in keys, values and nested lists."""
    return {
        "text": ODD_TEXT,
        f"key {ODD_TEXT}": [ODD_TEXT, 1, None, {"deep": ODD_TEXT}],
        "\x00": "\ud800",
    }
