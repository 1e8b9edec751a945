"""AG-UI: an agent driven by an AG-UI client, with a tool call, state, and an approval.

Every app made by `create_app` speaks AG-UI at ``POST /agui`` (and
``/agents/{agent_id}/agui``), so AG-UI clients such as CopilotKit can use its agents, and it
serves the playground, a chat page, at ``/``. Serve this file and open http://127.0.0.1:8000/:

    pilothouse serve examples/agui.py:app

Run as a script, it starts the app on a free loopback port in-process and plays the client
with the ``ag-ui-protocol`` package's own types: a RunAgentInput in, typed events out. The
second message makes the agent call a tool that needs approval: the run ends with an
interrupt, and the next request answers it in ``resume``, continuing the same run. The model is
a FunctionModel, so no provider or network is needed.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from typing import Any

from pilothouse import Agent, tool
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.serve import create_app


def get_weather(city: str, session_state: dict[str, Any]) -> str:
    """Get the current weather for a city."""
    session_state["last_city"] = city  # clients see it as STATE_DELTA
    return f"Sunny and 21°C in {city}"


@tool(requires_confirmation=True)
def book_table(restaurant: str, people: int) -> str:
    """Book a table at a restaurant."""
    return f"Booked a table for {people} at {restaurant}."


def decide(messages: list[Message], tools: list[Any]) -> str | list[ToolCall]:
    """The model's turn: a tool for each question, then an answer from its result."""
    if messages[-1].role == "tool":
        return f"Done: {messages[-1].text()}"
    if "book" in messages[-1].text():
        return [ToolCall(name="book_table", arguments={"restaurant": "Chez Lou", "people": 2})]
    return [ToolCall(name="get_weather", arguments={"city": "Paris"})]


agent = Agent(
    id="concierge",
    name="Concierge",
    model=FunctionModel(decide),
    tools=[get_weather, book_table],
    instructions="Help with plans for the evening.",
)
app = create_app(agents=[agent])


def run(client: Any, **fields: Any) -> list[Any]:
    """POST one RunAgentInput; the AG-UI events of the answer, as the protocol's types."""
    from ag_ui.core import Event, RunAgentInput
    from pydantic import TypeAdapter

    request = RunAgentInput(run_id=uuid.uuid4().hex, tools=[], context=[], **fields)
    answer = client.post("/agui", json=request.model_dump(mode="json", by_alias=True))
    answer.raise_for_status()
    events = TypeAdapter(Event)
    parsed = []
    for frame in answer.text.split("\n\n"):
        if frame.startswith("data: "):
            parsed.append(events.validate_json(frame.removeprefix("data: ")))
    return parsed


def show(events: list[Any]) -> None:
    for event in events:
        kind = event.type.value
        if kind == "STATE_DELTA":
            detail: Any = [op.model_dump(by_alias=True) for op in event.delta]
        elif kind == "RUN_FINISHED":
            tokens = sum(u.total_tokens or 0 for u in event.usage or ())
            detail = f"outcome {event.outcome.type}, {tokens} tokens"
        else:
            detail = next(
                (
                    value
                    for name in ("delta", "tool_call_name", "content", "snapshot")
                    if (value := getattr(event, name, None))
                ),
                "",
            )
        print(f"  {kind:<22} {detail}")


def main() -> None:
    import httpx
    import uvicorn
    from ag_ui.core import ResumeEntry, UserMessage

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    print(f"the playground is at http://127.0.0.1:{port}/ while this runs")
    thread_id = "evening-plans"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        print("> What is the weather in Paris?")
        message = UserMessage(id="m1", content="What is the weather in Paris?")
        show(run(client, thread_id=thread_id, messages=[message], state={"party": 2}))

        print("> Please book a table.")
        message = UserMessage(id="m2", content="Please book a table.")
        events = run(client, thread_id=thread_id, messages=[message])
        show(events)
        outcome = events[-1].outcome
        for interrupt in outcome.interrupts:
            print(f"  interrupt {interrupt.reason}: {interrupt.message} -> approved")
        answers = [
            ResumeEntry(interrupt_id=i.id, status="resolved", payload={"approved": True})
            for i in outcome.interrupts
        ]
        resumed = run(client, thread_id=thread_id, messages=[], resume=answers)
        show(resumed)
        run_id = resumed[0].metadata["pilothouse"]["runId"]
        stored = client.get(f"/agents/concierge/runs/{run_id}").json()
        print(f"the same run {run_id[:8]}... is {stored['status']}: {stored['content']}")
    server.should_exit = True
    thread.join(10)


if __name__ == "__main__":
    main()
