"""One process of the durable-run tests: a DBOS application with two durable agents.

Usage: ``python durable_process.py ROLE SYSTEM_DB AGENT_DB WORKDIR [ARGS...]``

* ``SYSTEM_DB``: DBOS's system database URL (``sqlite:///...`` or ``postgresql://...``).
* ``AGENT_DB``: the agents' session store: a file path (SqliteDb) or ``postgresql://...``.
* ``WORKDIR``: where the fake model and the tools note what they do, one line per call, so
  that the test can count model requests and tool calls across processes.

Roles:

* ``start RUN_ID``: run the ``crashy`` agent as run RUN_ID (its second tool blocks on its
  first call, for the test to kill the process there).
* ``recover RUN_ID``: launch DBOS (which executes the interrupted run again) and print the
  run's output when it stops.
* ``worker NAME``: execute runs from the queue ``agents`` until killed.
* ``client N``: enqueue N runs of the ``queued`` agent, print each one's output.
* ``ask RUN_ID``: enqueue run RUN_ID of the ``approval`` agent; print its output when it
  pauses.
* ``answer RUN_ID``: confirm the paused run's tool call and print its output at its end.

Outputs are printed as one JSON line starting with ``RESULT``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dbos import DBOS

from pilothouse import Agent, RunOutput
from pilothouse.db import PostgresDb, SqliteDb
from pilothouse.durable import DBOSAgent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel
from pilothouse.tools import tool

ROLE, SYSTEM_DB, AGENT_DB, WORKDIR = sys.argv[1:5]
ARGS = sys.argv[5:]
WORK = Path(WORKDIR)


def note(name: str, text: str) -> int:
    """Append a line to WORKDIR/name; return how many lines it has now."""
    path = WORK / name
    with path.open("a") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    return len(path.read_text().splitlines())


# ---- the crashy agent: model -> fast tool -> model -> slow tool -> model -> answer ----


def crashy_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    done = [m.name for m in messages if m.role == "tool"]
    note("model_calls", f"{os.getpid()} after {done}")
    if not done:
        return [ToolCall(name="remember", arguments={"fact": "blue"})]
    if done == ["remember"]:
        return [ToolCall(name="slow_lookup", arguments={"key": "answer"})]
    return f"Done: {messages[-1].content}"


def remember(fact: str, session_state: dict[str, Any]) -> str:
    """Remember a fact in the session."""
    note("remember_calls", str(os.getpid()))
    session_state["fact"] = fact
    return f"remembered {fact}"


def slow_lookup(key: str) -> str:
    """Look a key up (slowly)."""
    calls = note("slow_calls", str(os.getpid()))
    if calls == 1:
        time.sleep(60)  # the test kills the process here
    return f"{key}=42"


# ---- the queued agent: one tool call that says which process ran it ----


def queued_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"ran in {messages[-1].content}"
    return [ToolCall(name="which_process", arguments={})]


def which_process() -> str:
    """Say which process runs this."""
    time.sleep(0.3)
    return str(os.getpid())


# ---- the approval agent: a tool that needs a person's confirmation ----


def approval_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"result: {messages[-1].content}"
    return [ToolCall(name="delete_logs", arguments={"table": "logs"})]


@tool(requires_confirmation=True)
def delete_logs(table: str) -> str:
    """Delete a table's rows."""
    note("delete_calls", str(os.getpid()))
    return f"deleted {table} in {os.getpid()}"


def make_store() -> Any:
    if AGENT_DB.startswith("postgresql://"):
        return PostgresDb(AGENT_DB, table_prefix="agents_")
    return SqliteDb(AGENT_DB)


store = make_store()
crashy = DBOSAgent(
    Agent(
        name="crashy",
        id="crashy-agent",
        model=FunctionModel(crashy_model),
        tools=[remember, slow_lookup],
        db=store,
    )
)
queued = DBOSAgent(
    Agent(
        name="queued", id="queued-agent", model=FunctionModel(queued_model), tools=[which_process]
    )
)
approval = DBOSAgent(
    Agent(
        name="approval",
        id="approval-agent",
        model=FunctionModel(approval_model),
        tools=[delete_logs],
        db=store,
    )
)


def result(value: Any) -> None:
    print("RESULT " + json.dumps(value), flush=True)


def summary(out: RunOutput) -> dict[str, Any]:
    return {
        "run_id": out.run_id,
        "status": out.status.value,
        "content": out.content,
        "session_state": out.session_state,
        "tools": [(t.tool_name, t.result) for t in out.tools],
    }


# A restarted process recovers the runs of its own executor id: "recover" is "start" again.
_EXECUTORS = {"start": "crash", "recover": "crash"}
config: dict[str, Any] = {
    "name": "pilothouse-durable-test",
    "system_database_url": SYSTEM_DB,
    "executor_id": _EXECUTORS.get(ROLE, ROLE) if ROLE != "worker" else f"worker-{ARGS[0]}",
    "notification_listener_polling_interval_sec": 0.05,
}
DBOS(config=config)  # type: ignore[arg-type]
if ROLE in ("client", "ask", "answer"):
    DBOS.listen_queues([])  # these enqueue and answer; the workers execute
DBOS.launch()
if ROLE in ("worker", "client", "ask"):
    DBOS.register_queue("agents", worker_concurrency=1, polling_interval_sec=0.1)

if ROLE == "start":
    crashy.run("Look it up", run_id=ARGS[0], session_id="crash-session")
    result({"error": "the run finished, it should have been killed"})
elif ROLE == "recover":
    result(summary(crashy.wait_run_output(ARGS[0], timeout=60)))
elif ROLE == "worker":
    # DBOS's queue thread looks for new queues every second: be sure it listens to ours.
    time.sleep(1.5)
    print("READY", flush=True)
    time.sleep(120)
elif ROLE == "client":
    run_ids = [queued.enqueue(f"job {i}", queue="agents") for i in range(int(ARGS[0]))]
    result([summary(queued.wait_run_output(run_id, timeout=60)) for run_id in run_ids])
elif ROLE == "ask":
    approval.enqueue("Empty the logs", queue="agents", run_id=ARGS[0], session_id="approvals")
    result(summary(approval.wait_run_output(ARGS[0], timeout=60)))
elif ROLE == "answer":
    paused = approval.get_run_output(ARGS[0])
    assert paused is not None, "no such run"
    for execution in paused.tools_requiring_confirmation:
        execution.confirmed = True
    result(summary(approval.continue_run(paused, timeout=60)))
DBOS.destroy()
