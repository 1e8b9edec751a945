"""Run an agent with a tool and read its RunOutput.

Runs offline: `TestModel` calls every tool once, then answers. Replace it with a real model,
e.g. ``model="openai:gpt-5-mini"``, to talk to a provider.
"""

from pilothouse import Agent, RunOutput, RunStatus
from pilothouse.models.test import TestModel


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
    """
    return f"Sunny and 21°C in {city}"


agent = Agent(
    model=TestModel(text="It is sunny and 21°C in Paris."),
    tools=[get_weather],
    instructions="You are a concise weather assistant.",
    markdown=True,
)

response: RunOutput = agent.run("What is the weather in Paris?", user_id="ada", session_id="s1")
assert response.status == RunStatus.completed
print(response.content)
for execution in response.tools:
    print(f"tool {execution.tool_name}({execution.tool_args}) -> {execution.result}")
print(f"run {response.run_id}: {response.metrics.total_tokens} tokens")
