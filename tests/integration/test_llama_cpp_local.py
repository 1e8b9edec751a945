"""The embedded local model for real: llama.cpp in process with SmolLM2-135M-Instruct.

SmolLM2-135M is tiny, so these tests check the protocol (streaming, a tool call with well-formed
arguments executed and its result sent back, usage, timing, sharing, serialising, cancelling),
not the wisdom of the answers. Sampling is greedy with a fixed seed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest
from serverkit import unavailable

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunContentEvent
from pilothouse.models.llama_cpp import LlamaCpp, render_chatml, to_chat_messages

pytestmark = pytest.mark.integration

MAX_TOKENS = 24


@pytest.fixture(scope="module")
def gguf(smollm2_path: Path) -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        unavailable("llama-cpp-python is not installed: pip install 'pilothouse[local]'")
    return smollm2_path


def local(path: Path, **settings: Any) -> LlamaCpp:
    return LlamaCpp(path, **{"temperature": 0, "seed": 7, "max_tokens": MAX_TOKENS, **settings})


def test_non_streaming_run_answers_with_usage_and_timing(gguf: Path) -> None:
    model = local(gguf)
    out = Agent(model=model).run("Say hello to Ada.")
    assert out.status is RunStatus.completed, out.content
    assert isinstance(out.content, str) and out.content.strip()
    assert out.model == "SmolLM2-135M-Instruct.Q4_1" and out.model_provider == "local"
    metrics = out.metrics
    assert metrics.model_calls == 1 and metrics.cost == 0.0
    assert 0 < metrics.output_tokens <= MAX_TOKENS
    assert metrics.time_to_first_token is not None
    assert metrics.duration is not None and 0 < metrics.time_to_first_token <= metrics.duration

    # The counts are the tokenizer's: llama-cpp-python's own non-streaming count of the same
    # prompt and greedy answer agrees.
    llama = model.load()
    prompt = render_chatml([{"role": "user", "content": "Say hello to Ada."}], [])
    with model.lock:
        reference = llama.create_completion(
            prompt, max_tokens=MAX_TOKENS, temperature=0, seed=7, stop=["<|im_end|>"]
        )
    assert metrics.input_tokens == reference["usage"]["prompt_tokens"]
    assert metrics.output_tokens == reference["usage"]["completion_tokens"]
    assert reference["choices"][0]["text"] == out.content


def test_streaming_run_yields_several_pieces(gguf: Path) -> None:
    agent = Agent(model=local(gguf))
    pieces = [
        event.content
        for event in agent.run("Name three colours.", stream=True)
        if isinstance(event, RunContentEvent) and event.content
    ]
    assert len(pieces) >= 3
    output = agent.get_last_run_output()
    assert output is not None and output.status is RunStatus.completed
    assert "".join(pieces) == output.content
    assert output.metrics.time_to_first_token is not None
    assert output.metrics.time_to_first_token < (output.metrics.duration or 0)


def test_tool_call_round_trip(gguf: Path) -> None:
    cities: list[Any] = []

    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: The city's name.
        """
        cities.append(city)
        return f"Sunny and 21 degrees in {city}."

    model = local(gguf)
    agent = Agent(model=model, tools=[get_weather], tool_choice="get_weather", tool_call_limit=1)
    out = agent.run("What is the weather in Paris?")
    assert out.status is RunStatus.completed, out.content
    assert len(out.tools) == 1
    execution = out.tools[0]
    assert execution.tool_name == "get_weather" and not execution.tool_call_error
    assert isinstance(execution.tool_args["city"], str) and execution.tool_args["city"]
    assert cities == [execution.tool_args["city"]]  # it really ran
    tool_messages = [m for m in out.messages if m.role == "tool"]
    assert tool_messages[0].content == f"Sunny and 21 degrees in {cities[0]}."
    assert isinstance(out.content, str) and out.content.strip()
    assert out.metrics.model_calls == 2
    calls = [m.metrics for m in out.messages if m.role == "assistant"]
    assert all(c.input_tokens > 0 and c.output_tokens > 0 for c in calls)
    # The result went back in: the second prompt, tool result included, is what was counted
    # (tool_choice is "none" after the one allowed call, so the tools are not listed).
    second_prompt = render_chatml(to_chat_messages(out.messages[:-1]), [])
    assert tool_messages[0].content in second_prompt
    llama = model.load()
    with model.lock:
        expected = len(llama.tokenize(second_prompt.encode(), add_bos=True, special=True))
    assert calls[1].input_tokens == expected


def test_weights_load_once_for_two_agents(gguf: Path) -> None:
    first, second = local(gguf), local(gguf, temperature=0.5, seed=1, max_tokens=8)
    assert first.load() is second.load()
    assert Agent(model=first).run("Hi").status is RunStatus.completed
    assert Agent(model=second).run("Hi").status is RunStatus.completed
    assert first.load() is second.load()
    assert local(gguf, n_ctx=1024).load() is not first.load()


async def test_two_concurrent_runs_both_complete(gguf: Path) -> None:
    agent = Agent(model=local(gguf))
    started = time.perf_counter()
    first, second = await asyncio.gather(
        agent.arun("Say one word."), agent.arun("Say another word.")
    )
    assert first.status is RunStatus.completed and second.status is RunStatus.completed
    assert first.content and second.content
    # Served one after the other by the one context: together they took about their sum.
    total = (first.metrics.duration or 0) + (second.metrics.duration or 0)
    assert time.perf_counter() - started >= 0.5 * total


async def test_cancel_run_stops_generation_and_frees_the_model(gguf: Path) -> None:
    model = local(gguf, max_tokens=400)
    agent = Agent(model=model)
    stream = agent.arun("Write a long story about a lighthouse keeper.", stream=True)
    pieces = 0
    async for event in stream:
        if isinstance(event, RunContentEvent):
            pieces += 1
            if pieces == 2:
                agent.cancel_run(stream.run_id, reason="enough")
    assert stream.output.status is RunStatus.cancelled
    deadline = time.monotonic() + 30
    while not model.lock.acquire(blocking=False):
        assert time.monotonic() < deadline, "the model was not released"
        await asyncio.sleep(0.05)
    model.lock.release()
    again = await agent.arun("Say hi.")
    assert again.status is RunStatus.completed


def test_agent_without_a_model_answers(gguf: Path) -> None:
    agent = Agent()
    assert agent.model is None  # the default is chosen at run time
    out = agent.run("Reply with the single word: yes")
    assert out.status is RunStatus.completed, out.content
    assert out.model_provider == "local" and out.model == gguf.stem
    assert isinstance(out.content, str) and out.content.strip()
