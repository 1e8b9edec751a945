"""Structured output on real servers: the adapters' native ways of asking for JSON.

OpenAIChat sends a JSON-schema response format, which llama-server turns into a grammar; the
embedded LlamaCpp applies a JSON grammar in process. (Claude's forced answer tool is checked
against recorded requests in tests/unit/models: llama-server's Messages API does not honour a
forced tool choice, and llama-cpp-python's server takes no ``json_schema`` response format.)
The model is tiny, so the tests check that the answer arrives, streamed, as a valid object of
the schema, not that its facts are right.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from pilothouse import Agent, RunStatus
from pilothouse.models.llama_cpp import LlamaCpp
from pilothouse.models.openai import OpenAIChat
from pilothouse.run.events import RunCompletedEvent, RunContentEvent

pytestmark = pytest.mark.integration


class City(BaseModel):
    name: str
    country: str


PROMPT = "Describe the city of Paris as JSON."


def check(agent: Agent) -> None:
    events = list(agent.run(PROMPT, stream=True, stream_events=True, output_schema=City))
    completed = events[-1]
    assert isinstance(completed, RunCompletedEvent), completed
    assert isinstance(completed.content, City)
    assert completed.content_type == "City"
    pieces = [e.content for e in events if isinstance(e, RunContentEvent) and e.content]
    out = agent.get_last_run_output()
    assert out is not None and out.status is RunStatus.completed
    assert City.model_validate_json("".join(pieces)) == out.content


def test_openai_chat_json_schema_on_llama_server(llama_server: str) -> None:
    model = OpenAIChat(
        id="smollm2",
        base_url=f"{llama_server}/v1",
        api_key="sk-local",
        max_tokens=64,
        temperature=0.0,
        seed=7,
    )
    check(Agent(model=model, retries=2, delay_between_retries=0.5))


def test_local_model_json_grammar(smollm2_path: Path) -> None:
    model = LlamaCpp(smollm2_path, temperature=0, seed=7, max_tokens=64)
    check(Agent(model=model))
