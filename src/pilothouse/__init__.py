"""Pilothouse: build and run LLM agents.

from pilothouse import Agent

agent = Agent(model="openai:gpt-5-mini", tools=[get_weather], instructions="Be brief.")
print(agent.run("What is the weather in Paris?").content)
"""

import logging

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

# The library logs, never prints: without this, warnings would reach stderr through logging's
# last-resort handler in applications that did not configure logging.
logging.getLogger("pilothouse").addHandler(logging.NullHandler())

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
