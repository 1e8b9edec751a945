"""The GenAI client metrics: token usage, operation duration, time to first chunk."""

from __future__ import annotations

from typing import Any

import pytest
from otel_recorder import Recorded

from pilothouse import Agent
from pilothouse.exceptions import ModelProviderError
from pilothouse.models import ModelResponse, ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.run.metrics import Usage

pytestmark = pytest.mark.timeout(30)

BASE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "function",
    "gen_ai.request.model": "fake-2",
    "gen_ai.response.model": "fake-2",
}


def lookup(city: str) -> str:
    """Look something up."""
    return "found"


def one_tool_then_answer(messages: list[Message], tools: Any) -> ModelResponse:
    if messages[-1].role == "tool":
        return ModelResponse(content="done", usage=Usage(input_tokens=40, output_tokens=2))
    call = ToolCall(name="lookup", arguments={"city": "Oslo"})
    return ModelResponse(tool_calls=[call], usage=Usage(input_tokens=25, output_tokens=7))


def by_attributes(points: list[Any]) -> dict[frozenset[Any], Any]:
    return {frozenset(dict(p.attributes).items()): p for p in points}


def test_token_usage_and_durations_are_recorded_per_model_request(otel: Recorded) -> None:
    agent = Agent(model=FunctionModel(one_tool_then_answer, model_id="fake-2"), tools=[lookup])
    out = agent.run("Look it up")

    tokens = by_attributes(otel.points("gen_ai.client.token.usage"))
    assert set(tokens) == {
        frozenset({**BASE, "gen_ai.token.type": "input"}.items()),
        frozenset({**BASE, "gen_ai.token.type": "output"}.items()),
    }
    inputs = tokens[frozenset({**BASE, "gen_ai.token.type": "input"}.items())]
    outputs = tokens[frozenset({**BASE, "gen_ai.token.type": "output"}.items())]
    assert (inputs.count, inputs.sum) == (2, 65)
    assert (outputs.count, outputs.sum) == (2, 9)
    # The conventions' bucket boundaries.
    assert list(inputs.explicit_bounds)[:3] == [1, 4, 16]

    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == BASE
    assert duration.count == 2
    assert 0 < duration.sum <= (out.metrics.duration or 0)
    assert list(duration.explicit_bounds)[:2] == [0.01, 0.02]

    (first_chunk,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.count == 2
    assert first_chunk.sum <= duration.sum


def test_a_failed_request_is_measured_with_its_error_type(otel: Recorded) -> None:
    def down(messages: list[Message], tools: Any) -> str:
        raise ModelProviderError("down", status_code=502, retryable=False)

    Agent(model=FunctionModel(down, model_id="fake-2"), retries=0).run("Hello")
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "function",
        "gen_ai.request.model": "fake-2",
        "error.type": "502",
    }
    assert duration.count == 1
    # No usage was reported, so no token counts are made up.
    assert otel.points("gen_ai.client.token.usage") == []
