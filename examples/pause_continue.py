"""Human in the loop: tools that pause a run until a person (or another system) answers.

Runs offline on `TestModel`, which calls the agent's tools once, with arguments made up from
their schemas (so the table is called "a"), and then answers.

- ``requires_confirmation``: the run pauses before the tool runs; confirm or reject it.
- ``requires_user_input``: the run pauses for the values a person must fill in.
- ``external_execution``: the caller runs the tool itself and hands back the result.

Then ``continue_run`` resumes the same run (same run_id). With a session store the paused run
is stored, and any process can continue it by run_id.
"""

import tempfile
from pathlib import Path

from pilothouse import Agent, RunStatus, tool
from pilothouse.db import SqliteDb
from pilothouse.models.test import TestModel


@tool(requires_confirmation=True)
def delete_records(table: str) -> str:
    """Delete every record of a table.

    Args:
        table: The table to empty.
    """
    return f"deleted all records of {table}"


@tool(requires_user_input=True, user_input_fields=["recipient"])
def send_invoice(amount: float, recipient: str) -> str:
    """Send an invoice.

    Args:
        amount: The amount in euros.
        recipient: The email address to send it to.
    """
    return f"invoice of {amount:.2f} EUR sent to {recipient}"


@tool(external_execution=True)
def restart_service(name: str) -> str:
    """Restart a service on the production host.

    Args:
        name: The service to restart.
    """
    raise RuntimeError("never called: the caller runs this tool")


# 1. Confirmation, as in the guide: run, see that it paused, answer, continue.
agent = Agent(model=TestModel(text="Done."), tools=[delete_records])
response = agent.run("Empty the logs table")
if response.status == RunStatus.paused:
    print(response.content)
    for execution in response.tools_requiring_confirmation:
        print(f"  confirm {execution.tool_name}({execution.tool_args})? yes")
        execution.confirmed = True
    continued = agent.continue_run(run_response=response)
    assert continued.status == RunStatus.completed and continued.run_id == response.run_id
    print(f"  -> {continued.tools[0].result}; answer: {continued.content}")

# A rejection is reported to the model, and the tool never runs.
response = agent.run("Empty the users table")
response.tools[0].confirmed = False
response.tools[0].confirmation_note = "never the users table"
rejected = agent.continue_run(response)
print(f"  rejected -> {rejected.tools[0].result}")
assert "rejected" in rejected.tools[0].result

# 2. User input: fill in the fields the tool asks for.
agent = Agent(model=TestModel(text="Invoice sent."), tools=[send_invoice])
response = agent.run("Invoice 120 euros")
for execution in response.tools_requiring_user_input:
    for field in execution.user_input_schema or []:
        print(f"  {execution.tool_name} needs {field.name} ({field.description})")
        field.value = "billing@example.com"
continued = agent.continue_run(response)
print(f"  -> {continued.tools[0].result}")
assert "billing@example.com" in continued.tools[0].result

# 3. External execution, across processes: the paused run is stored; a later process (here, a
# second agent on the same file) continues it by run_id with the result it got elsewhere.
with tempfile.TemporaryDirectory() as tmp:
    db_file = Path(tmp) / "agents.db"
    ops = Agent(
        id="ops", model=TestModel(text="Restarted."), tools=[restart_service], db=SqliteDb(db_file)
    )
    paused = ops.run("Restart the web service", session_id="ops-1")
    print(f"stored run {paused.run_id[:8]}… is {paused.status.value}")

    later = Agent(
        id="ops", model=TestModel(text="Restarted."), tools=[restart_service], db=SqliteDb(db_file)
    )
    stored = later.get_run_output(paused.run_id)
    assert stored is not None and stored.is_paused
    [pending] = stored.tools_awaiting_external_execution
    pending.result = "web: active (running) since 12:00"
    finished = later.continue_run(run_id=paused.run_id, updated_tools=[pending], session_id="ops-1")
    assert finished.status == RunStatus.completed
    print(f"  -> {finished.tools[0].result}; answer: {finished.content}")
