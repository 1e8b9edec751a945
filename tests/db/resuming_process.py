"""A separate process running a two-step run that fails or hangs (test_resume_runs)."""

from __future__ import annotations

import sys
import time

from pilothouse import Agent
from pilothouse.db import PostgresDb, SessionStore, SqliteDb
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel

# Set per process: "fail" (the model fails after step 1), "hang" (step 2 never returns), "ok".
MODE = "ok"
LOG_PATH = ""


def step(n: int) -> str:
    """Do step n of the job (each start and end is logged to a file)."""
    _log(f"start {n}")
    if MODE == "hang" and n == 2:
        time.sleep(600)
    _log(f"end {n}")
    return f"step {n} done"


def _log(line: str) -> None:
    with open(LOG_PATH, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def decide(messages: list[Message], tools: object) -> object:
    """Step 1, then step 2, then the answer."""
    last = messages[-1]
    if last.role == "user":
        return ToolCall(name="step", arguments={"n": 1})
    if last.content == "step 1 done":
        if MODE == "fail":
            raise ModelProviderError("the provider rejected the request", status_code=400)
        return ToolCall(name="step", arguments={"n": 2})
    return f"finished after {last.content}"


def open_store(kind: str, target: str, prefix: str) -> SessionStore:
    """The store named on the command line."""
    if kind == "sqlite":
        return SqliteDb(target)
    url, schema = target.split("#", 1)
    return PostgresDb(url, schema=schema, table_prefix=prefix)


def agent_for(store: SessionStore) -> Agent:
    """The same agent in every process: same id, tools and model."""
    return Agent(id="two-steps", model=FunctionModel(decide), tools=[step], db=store, retries=0)


if __name__ == "__main__":
    kind, target, prefix, MODE, LOG_PATH, session_id = sys.argv[1:7]
    out = agent_for(open_store(kind, target, prefix)).run("Do the job", session_id=session_id)
    print(out.status.value, out.run_id, flush=True)
