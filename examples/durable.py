"""Durable runs on DBOS: a run that survives the death of its process.

`DBOSAgent` makes each run of an agent a DBOS workflow and each model request and tool call a
DBOS step, recorded in DBOS's system database (here SQLite, in a temporary directory; use
PostgreSQL to share runs between machines). This script:

1. starts a copy of itself that begins a run and is killed (SIGKILL) in the middle of a tool
   call, after the model request and the first tool call have finished;
2. launches DBOS here, which executes the interrupted run again: the finished model request
   and tool call come back from DBOS's records instead of running again, the interrupted tool
   call runs again, and the run is stored once in the agent's db;
3. runs a tool that needs a person's confirmation: the run pauses, waits durably, and goes on
   when the answer is sent with ``continue_run`` (which any process could do);
4. streams a run's answer as it is generated.

Offline: the model is a `FunctionModel` that follows a script. Needs the ``durable`` extra.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dbos import DBOS

from pilothouse import Agent, RunStatus, tool
from pilothouse.db import SqliteDb
from pilothouse.durable import DBOSAgent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel

RUN_ID = "order-1042"


def log(workdir: Path, name: str) -> int:
    """Note one more call in workdir/name; return how many there were."""
    path = workdir / name
    with path.open("a") as f:
        f.write("x\n")
    return len(path.read_text().splitlines())


def build(workdir: Path) -> tuple[DBOSAgent, DBOSAgent, DBOSAgent]:
    """The application: the same agents and DBOS configuration in every process."""

    def shop_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        log(workdir, "model_requests")
        done = [m.name for m in messages if m.role == "tool"]
        if not done:
            return [ToolCall(name="reserve_stock", arguments={"item": "kettle"})]
        if done == ["reserve_stock"]:
            return [ToolCall(name="ship", arguments={"item": "kettle"})]
        return "Your kettle is reserved and on its way."

    def reserve_stock(item: str) -> str:
        """Reserve an item in the warehouse."""
        log(workdir, "reservations")
        return f"{item} reserved"

    def ship(item: str) -> str:
        """Hand an item to the carrier."""
        if log(workdir, "shipments") == 1:
            time.sleep(60)  # the first process is killed here, mid-call
        return f"{item} shipped"

    @tool(requires_confirmation=True)
    def refund(order: str) -> str:
        """Refund an order."""
        return f"{order} refunded"

    def support_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        if messages[-1].role == "tool":
            return f"Done: {messages[-1].content}."
        return [ToolCall(name="refund", arguments={"order": "1042"})]

    async def words(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        for word in ["Thanks", "for", "shopping", "with", "us,", "see", "you", "soon!"]:
            await asyncio.sleep(0.05)
            yield word + " "

    db = SqliteDb(str(workdir / "agents.db"))
    shop = DBOSAgent(
        Agent(name="shop", model=FunctionModel(shop_model), tools=[reserve_stock, ship], db=db)
    )
    support = DBOSAgent(
        Agent(name="support", model=FunctionModel(support_model), tools=[refund], db=db)
    )
    writer = DBOSAgent(Agent(name="writer", model=FunctionModel(stream_function=words)))
    DBOS(
        config={
            "name": "durable-example",
            "system_database_url": f"sqlite:///{workdir / 'dbos.sqlite'}",
            # The restarted process recovers the runs of its own executor id.
            "executor_id": "example",
            "log_level": "WARNING",
            # How often a SQLite system database is polled for messages and events.
            "notification_listener_polling_interval_sec": 0.05,
        }
    )
    return shop, support, writer


def doomed_process(workdir: Path) -> None:
    """Begin the run; this process is killed before it ends."""
    shop, _, _ = build(workdir)
    DBOS.launch()
    shop.run("Send me a kettle", run_id=RUN_ID, session_id="customer-7")


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pilothouse-durable-"))

    print("1. A process begins the run and is killed in the middle of a tool call.")
    doomed = subprocess.Popen([sys.executable, __file__, "--doomed", str(workdir)])
    deadline = time.monotonic() + 60
    while not (workdir / "shipments").exists():
        if doomed.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the first process did not reach the tool call")
        time.sleep(0.05)
    doomed.kill()
    doomed.wait()
    print("   killed; model requests so far:", log_count(workdir, "model_requests"))

    print("2. This process launches DBOS, which executes the interrupted run again.")
    shop, support, writer = build(workdir)
    DBOS.launch()
    out = shop.wait_run_output(RUN_ID, timeout=60)
    print(f"   {out.status.value}: {out.content}")
    print("   model requests in all:", log_count(workdir, "model_requests"), "(not 2 + 3)")
    print("   reserve_stock ran", log_count(workdir, "reservations"), "time(s)")
    print("   ship ran", log_count(workdir, "shipments"), "time(s) (it was interrupted once)")
    stored = shop.agent.get_run_output(RUN_ID)
    assert stored is not None and stored.status is RunStatus.completed
    print("   stored in the agent's db as", stored.status.value)

    print("3. A run pauses for a person and continues when the answer is sent.")
    paused = support.run("Refund order 1042", session_id="customer-7")
    print(f"   {paused.status.value}: {paused.content}")
    for execution in paused.tools_requiring_confirmation:
        execution.confirmed = True
    done = support.continue_run(paused)
    print(f"   {done.status.value}: {done.content}")

    print("4. Streaming: the answer arrives word by word while its model step runs.")
    print("   ", end="")
    for event in writer.run("Say goodbye", stream=True):
        print(event.content, end="", flush=True)
    print()
    DBOS.destroy()


def log_count(workdir: Path, name: str) -> int:
    path = workdir / name
    return len(path.read_text().splitlines()) if path.exists() else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--doomed":
        doomed_process(Path(sys.argv[2]))
    else:
        main()
