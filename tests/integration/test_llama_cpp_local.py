"""The embedded local model for real: llama.cpp in process with SmolLM2-135M-Instruct.

SmolLM2-135M is tiny, so these tests check the protocol (streaming, a tool call with well-formed
arguments executed and its result sent back, usage, timing, sharing, serialising, cancelling),
not the wisdom of the answers. Sampling is greedy with a fixed seed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from serverkit import unavailable

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunContentEvent
from pilothouse.models import Message, ModelRequest
from pilothouse.models.llama_cpp import (
    DEFAULT_SYSTEM_PROMPT,
    LlamaCpp,
    render_answer_prompt,
    render_chatml,
    to_chat_messages,
)
from pilothouse.models.repetition import find_repetition
from ptyterm import Terminal

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
    # prompt (with the default system message) and greedy answer agrees.
    llama = model.load()
    prompt = render_chatml(
        [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "Say hello to Ada."},
        ],
        [],
    )
    sampling = model.call_arguments(ModelRequest())
    with model.lock:
        reference = llama.create_completion(
            prompt,
            max_tokens=MAX_TOKENS,
            temperature=0,
            seed=7,
            stop=["<|im_end|>"],
            top_p=sampling["top_p"],
            min_p=sampling["min_p"],
            top_k=sampling["top_k"],
            repeat_penalty=sampling["repeat_penalty"],
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
    # (an answer is written from the conversation without the calling protocol).
    system = {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    second_prompt = render_answer_prompt([system, *to_chat_messages(out.messages[:-1])])
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


# ---------------------------------------------------------------------------- as users meet it


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to look up.
    """
    return f"Sunny and 21°C in {city}."


def repeats_itself(text: str) -> bool:
    """A unit three times in a row, or the same five words three times anywhere."""
    words = re.findall(r"\w+", text.lower())
    grams = Counter(tuple(words[i : i + 5]) for i in range(len(words) - 4))
    return find_repetition(text) is not None or any(n >= 3 for n in grams.values())


def test_the_quickstart_agent_answers_from_its_tool(gguf: Path) -> None:
    # Exactly as the README's quickstart writes it: no model, no tool_choice, no limits.
    out = Agent(tools=[get_weather]).run("What is the weather in Paris?")
    assert out.status is RunStatus.completed, out.content
    assert [(t.tool_name, t.tool_args) for t in out.tools] == [("get_weather", {"city": "Paris"})]
    assert out.metrics.model_calls == 2  # the call, then the answer
    answer = out.get_content_as_string()
    assert "21" in answer and not repeats_itself(answer)
    print(f"\nanswer: {answer}\ntool: {out.tools[0].result}\nmetrics: {out.metrics.to_dict()}")


_SPINNER = re.compile(r"\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] thinking…|\r\x1b\[K")


def test_a_two_turn_chat_in_a_terminal(gguf: Path, tmp_path: Path) -> None:
    # The run log (--debug) goes to a file: the screen shows what a user sees.
    log = tmp_path / "runs.log"
    chat = f'exec "{sys.executable}" -m pilothouse.cli chat --debug 2>"{log}"'
    terminal = Terminal(["/bin/sh", "-c", chat])
    terminal.read_until("you> ", timeout=60)
    terminal.type("My name is Ada.\r")
    terminal.read_until("you> ", timeout=180, count=2)
    # The first answer streamed: part of it was on the screen before it was complete.
    partial = [
        s
        for s in terminal.snapshots
        if s.count("you> ") == 1 and re.search(r"pilothouse> \S+", _SPINNER.sub("", s))
    ]
    assert partial, terminal.output
    terminal.type("What is my name?\r")
    terminal.read_until("you> ", timeout=180, count=3)
    terminal.type("\r")
    assert terminal.exit_code() == 0, terminal.output
    screen = _SPINNER.sub("", terminal.output).replace("\r\n", "\n")
    answers = re.findall(r"pilothouse> (.*?)\nyou> ", screen, flags=re.S)
    assert len(answers) == 2, screen
    assert not any(repeats_itself(answer) for answer in answers), answers
    # The second turn saw the first: its run was sent the whole conversation.
    runs = log.read_text().split(" ended COMPLETED")
    assert len(runs) == 3, runs
    second = runs[2]
    assert "user: My name is Ada." in second and "user: What is my name?" in second
    assert f"assistant: {answers[0].strip()[:40]}" in second
    print("\n" + screen)


def test_a_request_is_fitted_to_the_context_window(
    gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pilothouse")
    model = local(gguf, n_ctx=256)
    # A long conversation loses its oldest turns, with a debug line, and is answered.
    history = []
    for turn in range(8):
        history.append(Message(role="user", content=f"Tell me fact number {turn} about owls."))
        history.append(Message(role="assistant", content="Owls can turn their heads far. " * 4))
    history.append(Message(role="user", content="Say hi."))
    out = Agent(model=model).run(history)
    assert out.status is RunStatus.completed, out.content
    assert 0 < out.metrics.input_tokens <= 256 - MAX_TOKENS
    assert any("did not fit the context" in r.getMessage() for r in caplog.records)
    # A question that cannot fit is refused before anything is generated.
    out = Agent(model=model).run("owl " * 400)
    assert out.status is RunStatus.error
    assert "does not fit the context" in str(out.content) and out.metrics.output_tokens == 0
    # The default context is the one recorded in the GGUF file (8192 tokens for SmolLM2).
    assert LlamaCpp(gguf).load().n_ctx() == 8192
