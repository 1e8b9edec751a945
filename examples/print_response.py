"""Render a run in the terminal while it streams (development helper)."""

from pilothouse import Agent
from pilothouse.models.test import TestModel


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny in {city}"


agent = Agent(model=TestModel(text="**Sunny** in Paris today."), tools=[get_weather], markdown=True)
agent.print_response("What is the weather in Paris?", stream=True)
