"""One Agent serving many users at once: each run keeps its own ids, state and messages."""

import asyncio
from typing import Any

from pilothouse import Agent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


async def slow_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    await asyncio.sleep(0.05)  # pretend to be a remote model
    if messages[-1].role == "tool":
        return f"Noted: {messages[-1].content}"
    return [ToolCall(name="remember", arguments={"fact": messages[-1].text()})]


def remember(fact: str, session_state: dict[str, Any]) -> str:
    """Remember a fact for this session."""
    session_state.setdefault("facts", []).append(fact)
    return fact


agent = Agent(model=FunctionModel(slow_model), tools=[remember])


async def main() -> None:
    outputs = await asyncio.gather(
        *(agent.arun(f"fact {i}", user_id=f"user-{i}", session_id=f"s-{i}") for i in range(100))
    )
    for out in outputs[:3]:
        print(out.user_id, out.content, out.session_state)
    print(f"{len(outputs)} runs, all completed:", all(o.status == "COMPLETED" for o in outputs))


asyncio.run(main())
