"""Test your own agent without a provider: FunctionModel decides each model turn."""

from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


def convert(amount: float, currency: str) -> str:
    """Convert an amount of euros into another currency."""
    rates = {"USD": 1.1, "GBP": 0.85}
    return f"{amount * rates[currency]:.2f} {currency}"


def decide(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"That is {messages[-1].content}."
    return [ToolCall(name="convert", arguments={"amount": 10, "currency": "USD"})]


agent = Agent(model=FunctionModel(decide), tools=[convert])
response = agent.run("How much is 10 EUR in dollars?")
assert response.content == "That is 11.00 USD."
assert response.tools[0].tool_args == {"amount": 10, "currency": "USD"}


# A provider failure ends the run with status error, instead of raising.
def unavailable(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    raise ModelProviderError("service unavailable", status_code=503)


failed = Agent(model=FunctionModel(unavailable), retries=1, delay_between_retries=0).run("hi")
assert failed.status == RunStatus.error
print("ok:", response.content, "/", failed.status.value, failed.content)
