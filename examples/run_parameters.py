"""The parameters of a run: input types, dependencies, context, metadata, retries, debug mode.

- input: a str, a list (joined into one message), a dict or a pydantic model (sent to the
  model as JSON); with ``input_schema`` dict input is validated first, and a bad field is a
  clear error before any model call.
- dependencies: values or callables resolved on every run, filling ``{name}`` placeholders in
  the instructions, shown to the model with ``add_dependencies_to_context``.
- session_state with ``add_session_state_to_context``; metadata recorded on the output.
- retries: provider failures (429, 5xx, timeouts) retried; debug_mode logs the run.

Runs offline: a `FunctionModel` records what it is sent, so every parameter's effect on the
model's context can be checked. Replace it with a real model, e.g. ``model="local"``.
"""

import logging
from typing import Any

from pydantic import BaseModel

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunContext
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import Message, ToolDefinition
from pilothouse.models.test import FunctionModel

seen: list[list[Message]] = []


def recorder(messages: list[Message], tools: list[ToolDefinition]) -> str:
    """Remember the messages of each call and answer with the user's last message."""
    seen.append(messages)
    return f"You said: {messages[-1].text()}"


def system_text() -> str:
    first = seen[-1][0]
    return first.text() if first.role == "system" else ""


# ---- input types -------------------------------------------------------------------------
agent = Agent(model=FunctionModel(recorder))

out = agent.run(input="Tell me a joke")
assert out.content == "You said: Tell me a joke"

out = agent.run(input=["Instruction 1", "Instruction 2"])
assert out.content == "You said: Instruction 1\nInstruction 2"

out = agent.run(input={"task": "summarize", "text": "..."})
print("dict input reaches the model as:", seen[-1][-1].text())
assert seen[-1][-1].text() == '{\n  "task": "summarize",\n  "text": "..."\n}'
assert out.input is not None and out.input.input_content == {"task": "summarize", "text": "..."}


class Query(BaseModel):
    question: str
    max_words: int = 50


out = agent.run(input=Query(question="What is AI?"))
print("model input reaches the model as:", seen[-1][-1].text())
assert '"question": "What is AI?"' in seen[-1][-1].text()
assert isinstance(out.input.input_content, Query)  # type: ignore[union-attr]

# With input_schema, dict input is validated into the model before anything is sent.
checked = Agent(model=FunctionModel(recorder), input_schema=Query)
out = checked.run(input={"question": "What is AI?", "max_words": "20"})
assert out.input is not None
assert out.input.input_content == Query(question="What is AI?", max_words=20)
assert '"max_words": 20' in seen[-1][-1].text()
calls_before = len(seen)
try:
    checked.run(input={"question": "What is AI?", "max_words": "many"})
except ValueError as error:
    print("bad input:", error)
    assert "max_words" in str(error)
else:
    raise AssertionError("invalid input was accepted")
assert len(seen) == calls_before  # the model was never called


# ---- dependencies, placeholders and context ----------------------------------------------
def shift_for(run_context: RunContext) -> str:
    """A dependency resolved on every run; it may take the run's context."""
    return "night" if run_context.user_id == "owl" else "day"


async def open_tickets() -> int:
    """Callables may be async (e.g. a database query)."""
    return 3


helper = Agent(
    model=FunctionModel(recorder),
    instructions="You help {user_name} on the {shift} shift.",
    dependencies={"user_name": "Ada", "shift": shift_for, "tickets": open_tickets},
)
helper.run("Hi", user_id="lark")
print("instructions:", system_text())
assert system_text() == "You help Ada on the day shift."
helper.run("Hi", user_id="owl")  # resolved again for this run
assert system_text() == "You help Ada on the night shift."
# Per-run dependencies are merged over the agent's; add_dependencies_to_context shows them.
helper.run("Hi", dependencies={"user_name": "Grace"}, add_dependencies_to_context=True)
print("with dependencies in context:", system_text().replace("\n", " "))
assert system_text().startswith("You help Grace on the day shift.")
assert '"tickets": 3' in system_text() and '"user_name": "Grace"' in system_text()

# Session state, shown to the model when asked, and fills placeholders too.
out = helper.run(
    "Hi",
    session_id="session_123",
    user_id="user_456",
    session_state={"key": "value"},
    add_session_state_to_context=True,
)
assert '"key": "value"' in system_text() and out.session_state == {"key": "value"}

# Metadata is recorded on the output (and stored with the run when the agent has a db).
out = helper.run("Hi", metadata={"source": "api"})
print("metadata:", out.metadata)
assert out.metadata == {"source": "api"}


# ---- retries --------------------------------------------------------------------------
attempts: list[int] = []


def flaky(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    attempts.append(1)
    if len(attempts) < 3:
        raise ModelProviderError("overloaded", status_code=503)
    return "third time lucky"


# Connection errors, timeouts, 429 and 5xx are retried 3 times by default, with exponential
# backoff and jitter from delay_between_retries (here 0, to keep the example quick).
flaky_agent = Agent(model=FunctionModel(flaky), delay_between_retries=0)
out = flaky_agent.run("Hi")
print(f"retries: {out.content!r} after {len(attempts)} attempts")
assert out.status == RunStatus.completed and len(attempts) == 3
attempts.clear()
out = flaky_agent.run("Hi", retries=0)  # retries off for this run
assert out.status == RunStatus.error and out.content == "overloaded"


# ---- debug mode: the run's messages logged at DEBUG level --------------------------------
# They go to stderr, or to the handlers the application gave the "pilothouse" logger (here
# one that collects them).
class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


collect = Collect()
logging.getLogger("pilothouse").addHandler(collect)
agent.run("Log me", debug_mode=True)
print(f"debug_mode logged {len(collect.lines)} lines")
assert any("user: Log me" in line for line in collect.lines)
