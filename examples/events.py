"""Handle the different events of a streamed run: content, tool calls, lifecycle and errors.

``stream=True`` alone yields the answer as RunContent events; ``stream_events=True`` adds the
lifecycle events (RunStarted, ToolCallStarted/Completed, RunContentCompleted, RunCompleted, or
RunError when the run fails). Match events by class with ``isinstance`` or by name with
``event.event == RunEvent...``; both are shown.

Runs offline: a `FunctionModel` plays the model, first asking for a tool, then streaming its
answer word by word. Replace it with a real model, e.g. ``model="openai:gpt-5-mini"``.
"""

from collections.abc import Iterator
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.agent import (
    RunCompletedEvent,
    RunContentEvent,
    RunErrorEvent,
    RunEvent,
    RunStartedEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


def get_headlines(country: str, count: int = 2) -> list[str]:
    """Get today's headlines for a country.

    Args:
        country: The country to look up.
        count: How many headlines to return.
    """
    return [f"{country} headline {i}" for i in range(1, count + 1)]


def newsroom(messages: list[Message], tools: list[ToolDefinition]) -> Iterator[Any]:
    """One model turn: ask for the headlines, then stream an answer built on the result."""
    if messages[-1].role == "tool":
        for word in f"Here is the news: {messages[-1].content}".split(" "):
            yield word + " "
    else:
        yield ToolCall(name="get_headlines", arguments={"country": "USA", "count": 2})


agent = Agent(model=FunctionModel(stream_function=newsroom), tools=[get_headlines])

# 1. The guide's pattern: match the events you care about by class.
content = ""
tool_names: list[str] = []
results: list[Any] = []
seen: list[str] = []
for chunk in agent.run("What's happening in USA?", stream=True, stream_events=True):
    seen.append(chunk.event)
    if isinstance(chunk, RunStartedEvent):
        print(f"[started run {chunk.run_id} on {chunk.model}]")
    elif isinstance(chunk, RunContentEvent):
        content += chunk.content
        print(f"Content: {chunk.content!r}")
    elif isinstance(chunk, ToolCallStartedEvent) and chunk.tool is not None:
        tool_names.append(chunk.tool.tool_name)
        print(f"Tool: {chunk.tool.tool_name}")
        print(f"Args: {chunk.tool.tool_args}")
    elif isinstance(chunk, ToolCallCompletedEvent) and chunk.tool is not None:
        results.append(chunk.tool.result)
        print(f"Result: {chunk.tool.result}")
    elif isinstance(chunk, RunCompletedEvent) and chunk.metrics is not None:
        print(f"[completed: {chunk.metrics.total_tokens} tokens]")

assert seen[0] == RunEvent.run_started and seen[-1] == RunEvent.run_completed
assert seen.index(RunEvent.tool_call_started) < seen.index(RunEvent.tool_call_completed)
assert seen.index(RunEvent.tool_call_completed) < seen.index(RunEvent.run_content)
assert RunEvent.run_content_completed in seen
assert tool_names == ["get_headlines"]
assert results == ['["USA headline 1", "USA headline 2"]']  # a list comes back as JSON text
assert content.strip() == 'Here is the news: ["USA headline 1", "USA headline 2"]'

# 2. Without stream_events only the answer's content is streamed.
names = {chunk.event for chunk in agent.run("What's happening in USA?", stream=True)}
print("events with stream=True alone:", sorted(names))
assert names == {RunEvent.run_content}


# 3. A failing run ends with a RunError event rather than an exception.
def unavailable(messages: list[Message], tools: list[ToolDefinition]) -> str:
    raise ModelProviderError("service unavailable", status_code=503)


failing = Agent(model=FunctionModel(unavailable))
last = None
for chunk in failing.run("Anything new?", stream=True, stream_events=True):
    if chunk.event == RunEvent.run_error:
        assert isinstance(chunk, RunErrorEvent)
        print(f"Error ({chunk.error_type}): {chunk.content}")
    last = chunk
assert isinstance(last, RunErrorEvent) and last.content == "service unavailable"
output = failing.get_last_run_output()
assert output is not None and output.status == RunStatus.error
print("the failed run's status:", output.status.value)
