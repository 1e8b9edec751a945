"""Pilothouse: build and run LLM agents.

    from pilothouse import Agent

    agent = Agent(model="openai:gpt-5-mini", tools=[get_weather], instructions="Be brief.")
    print(agent.run("What is the weather in Paris?").content)
"""

from pilothouse.agent import (
    Agent,
    RunContext,
    RunEvent,
    RunOutput,
    RunOutputEvent,
    RunStatus,
)
from pilothouse.tools import Function, Toolkit, tool

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Function",
    "RunContext",
    "RunEvent",
    "RunOutput",
    "RunOutputEvent",
    "RunStatus",
    "Toolkit",
    "__version__",
    "tool",
]
