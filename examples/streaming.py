"""Stream an answer, with lifecycle events, synchronously and asynchronously."""

import asyncio

from pilothouse import Agent
from pilothouse.agent import RunEvent, ToolCallCompletedEvent, ToolCallStartedEvent
from pilothouse.models.test import TestModel


def top_stories(count: int = 3) -> list[str]:
    """Return the titles of the top stories."""
    return [f"Story {i}" for i in range(1, count + 1)]


agent = Agent(model=TestModel(text="Here are today's top stories."), tools=[top_stories])

# Content only.
for event in agent.run("What's new?", stream=True):
    if event.event == RunEvent.run_content:
        print(event.content, end="", flush=True)
print()

# Every event: started, tool calls, content, completed.
for event in agent.run("What's new?", stream=True, stream_events=True):
    if isinstance(event, ToolCallStartedEvent) and event.tool:
        print(f"-> {event.tool.tool_name}({event.tool.tool_args})")
    elif isinstance(event, ToolCallCompletedEvent) and event.tool:
        print(f"<- {event.tool.result}")
    else:
        print(event.event)


async def main() -> None:
    stream = await agent.arun("What's new?", stream=True)
    async for event in stream:
        if event.event == RunEvent.run_content:
            print(event.content, end="")
    print()


asyncio.run(main())
