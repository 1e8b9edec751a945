"""Run an agent asynchronously: ``await arun()``, streaming with ``arun(stream=True)`` (awaited
first or iterated directly) and ``aprint_response()``.

The async methods take the same parameters as their sync versions and drive the same run loop;
tools may be ``async def`` too. Runs offline: `TestModel` calls the tool once and answers.
Replace it with a real model, e.g. ``model="anthropic:claude-sonnet-4-5"``.
"""

import asyncio

from pilothouse import Agent, RunOutput, RunStatus
from pilothouse.agent import AsyncRunStream, RunEvent
from pilothouse.models.test import TestModel

STORY = "Once upon a time a small agent read a story out loud."


async def fetch_story_title(topic: str) -> str:
    """Look up the title of a story about a topic.

    Args:
        topic: What the story is about.
    """
    await asyncio.sleep(0)  # e.g. an HTTP request
    return f"The {topic} that could"


agent = Agent(model=TestModel(text=STORY), tools=[fetch_story_title], markdown=True)


async def main() -> None:
    # 1. Await the whole run.
    response: RunOutput = await agent.arun("Tell me a story", user_id="ada", session_id="s1")
    print("arun:", response.content)
    assert response.status == RunStatus.completed and response.content == STORY
    assert response.tools[0].tool_name == "fetch_story_title"
    assert response.tools[0].result == "The a that could"  # TestModel made up topic="a"

    # 2. Stream: await arun(stream=True) first, then iterate (the guide's style) ...
    stream: AsyncRunStream = await agent.arun("Tell me a story", stream=True)
    pieces: list[str] = []
    async for chunk in stream:
        if chunk.event == RunEvent.run_content:
            pieces.append(chunk.content)
    print("awaited stream:", "".join(pieces))
    assert "".join(pieces) == STORY and len(pieces) > 1  # it came in several pieces
    # ... the finished run is on the stream afterwards.
    assert stream.output.status == RunStatus.completed and stream.output.content == STORY

    # 3. ... or iterate it directly, with the lifecycle events too.
    events: list[str] = []
    async for chunk in agent.arun("Tell me a story", stream=True, stream_events=True):
        events.append(chunk.event)
    print("direct stream:", " ".join(dict.fromkeys(events)))
    assert events[0] == RunEvent.run_started and events[-1] == RunEvent.run_completed
    assert RunEvent.tool_call_completed in events

    # 4. Several runs at once on one agent: each keeps its own ids.
    outputs = await asyncio.gather(
        *(agent.arun(f"Story {i}", user_id=f"user-{i}", session_id=f"s-{i}") for i in range(3))
    )
    print("gathered:", [(o.user_id, o.status.value) for o in outputs])
    assert [o.user_id for o in outputs] == ["user-0", "user-1", "user-2"]
    assert len({o.run_id for o in outputs}) == 3

    # 5. Development helper: render the run in the terminal while it streams.
    await agent.aprint_response("Tell me a story", stream=True)
    printed = await agent.aget_last_run_output()
    assert printed is not None and printed.content == STORY


asyncio.run(main())
