"""OpenAI models through the official ``openai`` SDK: `OpenAIChat`, and `OpenAILike` for any
server that speaks the Chat Completions API (llama.cpp, vLLM, Ollama, LM Studio, ...).

A streamed run streams its calls (``stream=True``, asking for usage in the last chunk); a run
that does not stream asks for whole responses, which every server reports token usage for.
``streaming=False`` asks for whole responses always, for servers that cannot stream every kind
of answer.

``timeout`` is a deadline on the whole request, streamed answer included, and ``idle_timeout``
bounds the silence between two chunks of a stream; see `pilothouse.models.deadline`.

Structured output (``output_schema``) is asked for with a JSON-schema response format; servers
that reject it (llama-cpp-python's answers 500) get JSON mode with the schema in the system
prompt, then a forced answer tool, and the model remembers what worked (``output_mode``).

The SDK is imported, and its client created, in a worker thread on the first call, so that
neither blocks an event loop; there is one client per event loop, since an HTTP client must not
be shared between loops.

The SDK's own retries are off by default (``max_retries=0``): the run loop retries failed
calls itself (``Agent(retries=...)``), with backoff and the provider's ``retry-after``, and two
layers of retries would multiply the attempts.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from pilothouse.exceptions import ModelProviderError
from pilothouse.models import pricing
from pilothouse.models.base import Model, ModelDelta, ModelRequest
from pilothouse.models.deadline import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
    RequestClock,
    check_timeout,
)
from pilothouse.models.errors import is_retryable_status, provider_error
from pilothouse.models.message import Message
from pilothouse.models.openai_wire import (
    ChunkTranslator,
    answer_as_content,
    answer_tool_param,
    completion_delta,
    json_mode_messages,
    json_mode_param,
    messages_param,
    response_format_param,
    tool_choice_param,
    tools_param,
)
from pilothouse.run.metrics import Usage
from pilothouse.utils.loop_resources import release_with_loop

__all__ = ["OpenAIChat", "OpenAILike", "OutputMode"]

# How a structured answer is asked for: "native" a JSON-schema response format, "prompted"
# JSON mode with the schema in the system prompt, "tool" a forced tool whose arguments are the
# answer, "auto" native first and the others when a server rejects it.
OutputMode = Literal["auto", "native", "prompted", "tool"]
_OUTPUT_MODES = ("auto", "native", "prompted", "tool")
_FALLBACKS = ("native", "prompted", "tool")

logger = logging.getLogger("pilothouse")

if importlib.util.find_spec("openai") is None:
    # Checked without importing it (that takes most of a second), so that a missing SDK is
    # reported when the model is chosen, not at its first call.
    raise ModuleNotFoundError(
        "OpenAIChat needs the openai package: pip install 'pilothouse[openai]'", name="openai"
    )

_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Request fields the adapter owns: overriding them through request_params would break it.
_RESERVED = frozenset({"model", "messages", "stream", "stream_options", "tools", "tool_choice"})

_sdk_module: Any = None
_sdk_lock = threading.Lock()


def _sdk() -> Any:
    """The ``openai`` module, imported on first use (it takes most of a second)."""
    global _sdk_module
    if _sdk_module is None:
        with _sdk_lock:
            if _sdk_module is None:
                import openai
                from openai.types.chat import ChatCompletionChunk  # noqa: F401 (warm import)

                _sdk_module = openai
    return _sdk_module


class OpenAIChat(Model):
    """An OpenAI model through the Chat Completions API.

    The API key and base URL come from the arguments or, when not given, from the SDK's
    environment variables ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``, so pointing the SDK at
    another OpenAI-compatible endpoint works exactly as it does for the SDK itself.

    Args:
        id: The model id, e.g. ``"gpt-5-mini"``.
        api_key: The API key; default ``OPENAI_API_KEY``.
        base_url: The API base URL; default ``OPENAI_BASE_URL``, else OpenAI's.
        organization: The OpenAI organization id; default ``OPENAI_ORG_ID``.
        project: The OpenAI project id; default ``OPENAI_PROJECT_ID``.
        temperature: Sampling temperature; the provider's default when None.
        max_tokens: The most tokens to generate: sent as ``max_completion_tokens`` to OpenAI
            (its current models reject ``max_tokens``) and as ``max_tokens`` to any other
            base URL (the field OpenAI-compatible servers know).
        top_p: Nucleus sampling probability mass.
        seed: Sampling seed, for reproducible answers where the provider supports it.
        stop: A stop sequence or a list of them.
        timeout: Seconds for a whole request, from sending it to the last chunk of the
            answer (default 600); a request still running then fails with a (retryable)
            error naming the limit. None for no deadline.
        idle_timeout: Seconds a streamed answer may go without a chunk once it has started
            (default 60): a server that stalls mid-answer fails then, keep-alives or not.
            None for no bound.
        max_retries: Retries inside the SDK. 0 by default, because the run loop retries (see
            ``Agent(retries=...)``); raising it multiplies the attempts.
        request_params: Extra fields merged into the request body, for parameters this
            class has no argument for (``reasoning_effort``, ``parallel_tool_calls``,
            ``frequency_penalty``, a server's own fields such as ``top_k``).
        client_params: Extra keyword arguments for ``openai.AsyncOpenAI`` (e.g.
            ``default_headers``, or ``http_client``, which is then used on every event loop).
        streaming: True (default) to stream the calls of streamed runs (runs that do not
            stream always ask for whole responses). False to ask for whole responses always,
            each then yielded as one delta: for OpenAI-compatible servers that refuse to
            stream some answers. Runs still stream events, but the whole answer arrives at
            once, so the time to first token is the time of the whole call.
        output_mode: How a run's ``output_schema`` is asked for: ``"native"`` (a JSON-schema
            response format), ``"prompted"`` (JSON mode, the schema in the system prompt and,
            off OpenAI, in the response format's ``schema`` field, which servers such as
            llama-cpp-python turn into a grammar),
            ``"tool"`` (a forced tool whose arguments are the answer), or ``"auto"`` (default):
            native first, then the others in that order when the server rejects a mode; the
            mode that worked is used for the model's later requests.
    """

    provider = "openai"

    def __init__(
        self,
        id: str = "gpt-5-mini",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_retries: int = 0,
        request_params: Mapping[str, Any] | None = None,
        client_params: Mapping[str, Any] | None = None,
        streaming: bool = True,
        output_mode: OutputMode = "auto",
    ) -> None:
        cls = type(self).__name__
        if output_mode not in _OUTPUT_MODES:
            raise ValueError(
                f"{cls}(): output_mode must be one of {', '.join(map(repr, _OUTPUT_MODES))}, "
                f"not {output_mode!r}."
            )
        if not isinstance(id, str) or not id.strip():
            raise ValueError(f"{cls}(): id must be a model id such as 'gpt-5-mini', not {id!r}.")
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError(f"{cls}(): max_retries must be a whole number >= 0.")
        reserved = sorted(_RESERVED.intersection(request_params or ()))
        if reserved:
            raise ValueError(
                f"{cls}(): request_params may not set {', '.join(reserved)}: the adapter sends "
                "those itself (use the run's tools and tool_choice)."
            )
        self.id = id
        self.api_key = api_key
        self.base_url = base_url
        self.organization = organization
        self.project = project
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.top_p = top_p
        self.seed = seed
        self.stop = stop
        self.timeout = check_timeout(timeout, "timeout", f"{cls}()")
        self.idle_timeout = check_timeout(idle_timeout, "idle_timeout", f"{cls}()")
        self.max_retries = max_retries
        self.request_params = dict(request_params) if request_params else {}
        self.client_params = dict(client_params) if client_params else {}
        self.streaming = bool(streaming)
        self.output_mode: OutputMode = output_mode
        # The structured-output mode found to work in "auto" mode, once one has.
        self._found_mode: str | None = None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._clients_lock = threading.Lock()

    # ---- client ------------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        return self.api_key

    def _client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_retries": self.max_retries}
        # Arguments left as None are not passed, so that the SDK reads its env variables.
        api_key = self._api_key()
        if api_key is not None:
            kwargs["api_key"] = api_key
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        if self.organization is not None:
            kwargs["organization"] = self.organization
        if self.project is not None:
            kwargs["project"] = self.project
        # The SDK bounds each read, which keep-alives defeat: the deadline is enforced around
        # the request instead (RequestClock); the SDK only bounds opening the connection.
        connect = DEFAULT_CONNECT_TIMEOUT
        if self.timeout is not None:
            connect = min(connect, self.timeout)
        kwargs["timeout"] = _sdk().Timeout(self.timeout, connect=connect)
        kwargs.update(self.client_params)
        return kwargs

    def _new_client(self) -> Any:
        # Runs in a worker thread: the SDK import, the client's TLS setup and the lazily
        # imported resource modules all take long enough to stall an event loop.
        sdk = _sdk()
        client = sdk.AsyncOpenAI(**self._client_kwargs())
        client.chat.completions  # noqa: B018 (imports the resource module here)
        if self._pricing_provider() is not None:
            pricing.preload()
        return client

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None:
            return client
        try:
            client = await asyncio.to_thread(self._new_client)
        except Exception as exc:
            raise self._error(exc) from exc
        with self._clients_lock:
            # A client holds its loop alive through its connections, so the weak key alone
            # would not drop clients of closed loops (e.g. one per asyncio.run()).
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            kept = self._clients.setdefault(loop, client)
        if kept is client and "http_client" not in self.client_params:
            # Closed with its loop, before the loop closes (a caller's http_client is theirs).
            release_with_loop(self.aclose)
        return kept

    async def aclose(self) -> None:
        """Close the HTTP client this model uses on the running event loop, if any."""
        with self._clients_lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    # ---- request -----------------------------------------------------------------------------

    def request_body(
        self,
        messages: Sequence[Message],
        request: ModelRequest,
        *,
        output_mode: str | None = None,
    ) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for this call.

        ``output_mode`` says how an output schema is asked for (see ``output_mode`` in the
        class docs); by default the first mode `stream` would try.
        Raises ValueError for input the API cannot take (e.g. video).
        """
        wire = messages_param(messages)
        params: dict[str, Any] = {"model": self.id, "messages": wire}
        if self.streaming and request.stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        if request.tools:
            params["tools"] = tools_param(request.tools)
            if request.tool_choice is not None:
                params["tool_choice"] = tool_choice_param(request.tool_choice)
        schema = request.output_schema
        if schema is not None:
            mode = output_mode or self._output_modes(request)[0]
            if mode == "native":
                params["response_format"] = response_format_param(schema)
            elif mode == "prompted":
                params["response_format"] = json_mode_param(schema, self._calls_openai())
                params["messages"] = json_mode_messages(wire, schema)
            else:
                self._add_answer_tool(params, request)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params[self._max_tokens_field()] = self.max_tokens
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.seed is not None:
            params["seed"] = self.seed
        if self.stop is not None:
            params["stop"] = self.stop if isinstance(self.stop, str) else list(self.stop)
        if self.request_params:
            # extra_body rather than keyword arguments: it takes any field, including ones a
            # given SDK version does not know.
            params["extra_body"] = self.request_params
        return params

    def _output_modes(self, request: ModelRequest) -> tuple[str, ...]:
        """The structured-output modes to try for this request, in order."""
        if request.output_schema is None:
            return ("",)
        if self.output_mode != "auto":
            return (self.output_mode,)
        if self._found_mode is not None:
            return (self._found_mode,)
        return _FALLBACKS

    @staticmethod
    def _answer_name(request: ModelRequest) -> str:
        return answer_tool_param(request.output_schema, [t.name for t in request.tools])[0]

    def _add_answer_tool(self, params: dict[str, Any], request: ModelRequest) -> None:
        name, tool = answer_tool_param(request.output_schema, [t.name for t in request.tools])
        params["tools"] = [*params.get("tools", ()), tool]
        choice = request.tool_choice
        if not request.tools or choice in (None, "none", "auto"):
            # Without tools of its own (or none left to call) the model must answer now;
            # with tools it may call them first, and any call then works on the answer or is it.
            forced: Any = {"type": "function", "function": {"name": name}}
            params["tool_choice"] = forced if not request.tools or choice == "none" else "required"

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Send the messages and yield the answer chunk by chunk, as the server sends it."""
        modes = self._output_modes(request)
        try:
            params = self.request_body(messages, request, output_mode=modes[0])
        except (ValueError, TypeError) as exc:
            raise provider_error(str(exc), model=self, retryable=False) from exc
        client = await self._client()
        clock = RequestClock(self, self.timeout, self.idle_timeout, self._where())
        response, mode = await self._send(client, clock, params, messages, request, modes)
        answer = self._answer_name(request) if mode == "tool" else None
        if "stream" not in params:
            whole, finish_reason = completion_delta(response)
            if answer is not None:
                whole = answer_as_content(whole, answer, set())
            self._check_finish(finish_reason)
            yield whole
            return
        translator = ChunkTranslator()
        answer_calls: set[int] = set()
        received = False
        try:
            async with response:
                chunks = response.__aiter__()
                while True:
                    # Each chunk within the request's deadline and idle timeout.
                    try:
                        chunk = await clock.next(chunks, first=not received)
                    except StopAsyncIteration:
                        break
                    received = True
                    delta = translator.delta(chunk)
                    if delta is not None:
                        if answer is not None:
                            delta = answer_as_content(delta, answer, answer_calls)
                        yield delta
        except Exception as exc:
            if isinstance(exc, _sdk().OpenAIError):
                raise self._error(exc) from exc
            raise
        finally:
            clock.stop()
        if not received:
            # A server that fails after sending its headers may just close the stream: an
            # answer without a single chunk is that, not an empty answer.
            raise provider_error(
                f"{self.name}: {self._where()} ended the stream for model {self.id!r} without "
                "sending anything (the server may have failed; see its log).",
                model=self,
            )
        self._check_finish(translator.finish_reason)

    async def _send(
        self,
        client: Any,
        clock: RequestClock,
        params: dict[str, Any],
        messages: Sequence[Message],
        request: ModelRequest,
        modes: tuple[str, ...],
    ) -> tuple[Any, str]:
        """Send the request; return the response (a stream or a whole completion) and the
        structured-output mode it was sent in: the next of ``modes`` each time the server
        rejects one."""
        sdk = _sdk()
        for attempt, mode in enumerate(modes):
            if attempt:
                params.clear()
                params.update(self.request_body(messages, request, output_mode=mode))
            try:
                response = await clock.wait(client.chat.completions.create(**params))
            except sdk.OpenAIError as exc:
                error = self._error(exc)
                if attempt + 1 == len(modes) or not _rejects_output_format(error):
                    raise error from exc
                logger.debug(
                    "%s %r: the server rejected structured output mode %r (%s); trying %r",
                    self.name,
                    self.id,
                    mode,
                    error,
                    modes[attempt + 1],
                )
                continue
            if len(modes) > 1:
                self._found_mode = mode
                logger.debug("%s %r: structured output mode %r works", self.name, self.id, mode)
            return response, mode
        raise AssertionError("unreachable: the last mode's failure is raised")

    def _check_finish(self, finish_reason: str | None) -> None:
        if finish_reason == "length":
            logger.warning(
                "%s %r stopped at the token limit: the answer is cut short", self.name, self.id
            )
        elif finish_reason is None:
            logger.warning(
                "%s %r: the answer ended without a finish reason; it may be incomplete",
                self.name,
                self.id,
            )

    # ---- errors ------------------------------------------------------------------------------

    def _where(self) -> str:
        return str(
            self.base_url
            or self.client_params.get("base_url")
            or os.environ.get("OPENAI_BASE_URL")
            or _DEFAULT_BASE_URL
        )

    def _key_hint(self) -> str:
        return "Set the OPENAI_API_KEY environment variable or pass OpenAIChat(api_key=...)."

    def _error(self, exc: Exception) -> ModelProviderError:
        """Translate an SDK exception into a `ModelProviderError`."""
        if isinstance(exc, ModelProviderError):
            return exc
        sdk = _sdk()
        name, where = self.name, self._where()
        if isinstance(exc, sdk.APITimeoutError):
            return provider_error(
                f"{name}: the request for model {self.id!r} to {where} timed out.", model=self
            )
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f" ({cause})" if cause is not None and str(cause) else ""
            return provider_error(f"{name}: could not connect to {where}{detail}.", model=self)
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            detail = _server_message(exc)
            if status == 401:
                message = f"{name}: the API key was refused (401: {detail}). {self._key_hint()}"
            elif status == 403:
                message = f"{name}: permission denied for model {self.id!r} (403: {detail})."
            elif status == 404:
                message = (
                    f"{name}: model {self.id!r} was not found at {where} (404: {detail}). "
                    "Check the model id and the base URL."
                )
            elif status == 429:
                message = f"{name}: rate limited on model {self.id!r} (429: {detail})."
            elif status >= 500:
                message = f"{name}: server error on model {self.id!r} ({status}: {detail})."
            else:
                param = f" (parameter {exc.param!r})" if getattr(exc, "param", None) else ""
                message = (
                    f"{name}: the request for model {self.id!r} was rejected "
                    f"({status}: {detail}){param}."
                )
            return provider_error(message, status, exc.response.headers, model=self)
        if isinstance(exc, sdk.APIError):
            # An error event inside an otherwise successful (200) stream.
            body = exc.body if isinstance(exc.body, dict) else {}
            code = body.get("code")
            status = code if isinstance(code, int) and 400 <= code < 600 else None
            kind = str(body.get("type") or "")
            retryable = (
                is_retryable_status(status)
                if status is not None
                else any(word in kind for word in ("server", "overload", "unavailable"))
            )
            return provider_error(
                f"{name}: the stream for model {self.id!r} failed: {exc.message}",
                status,
                model=self,
                retryable=retryable,
            )
        message = f"{name}: {exc}"
        if "api_key" in str(exc) or "credentials" in str(exc).lower():
            message = f"{name}: no API key. {self._key_hint()}"
        return provider_error(message, model=self, retryable=False)

    # ---- price -------------------------------------------------------------------------------

    def _calls_openai(self) -> bool:
        """Whether calls go to OpenAI itself rather than another OpenAI-compatible server."""
        base = self.base_url or self.client_params.get("base_url")
        if base is None:
            base = os.environ.get("OPENAI_BASE_URL")
        if not base:
            return True
        host = urlsplit(str(base)).hostname or ""
        return host == "api.openai.com" or host.endswith(".api.openai.com")

    def _max_tokens_field(self) -> str:
        return "max_completion_tokens" if self._calls_openai() else "max_tokens"

    def _pricing_provider(self) -> str | None:
        # A model served elsewhere under an OpenAI name (a proxy, a local server) does not
        # cost OpenAI's rates.
        return "openai" if self._calls_openai() else None

    def price(self, usage: Usage) -> float | None:
        """The cost in USD of a call with this usage (genai-prices data), or None if unknown."""
        provider = self._pricing_provider()
        if provider is None:
            return None
        return pricing.price(provider, self.id, usage)


def _rejects_output_format(error: ModelProviderError) -> bool:
    """Whether a failed request looks refused for the way it asked for structured output: a
    client error that names it, or a plain 500 (llama-cpp-python's answer to a JSON-schema
    response format). Overload and gateway errors (502-504, 429) are not."""
    status = error.status_code
    if status == 500:
        return True
    if status is None or not 400 <= status < 500 or status in (408, 429):
        return False
    text = str(error).lower()
    return any(word in text for word in ("response_format", "json_schema", "json_object"))


def _server_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    elif isinstance(body, str) and body:
        return body
    return str(exc.message)


class OpenAILike(OpenAIChat):
    """Any server that speaks the OpenAI Chat Completions API: llama.cpp, vLLM, Ollama, ...

    Unlike `OpenAIChat`, it never reads ``OPENAI_API_KEY`` (so an OpenAI key is not sent to
    another server) and needs no key at all: servers without authentication get a
    placeholder, since the SDK requires some key.

    Args:
        id: The model id the server knows.
        base_url: The server's API base URL, e.g. ``"http://127.0.0.1:8080/v1"``.
        api_key: The key the server expects, if any.
        provider: The provider name reported in run outputs. When it is a provider id that
            genai-prices knows (e.g. ``"groq"``, ``"together"``), calls are priced at its rates;
            with the default ``"openai-like"`` the cost stays unknown (None).
        **kwargs: The sampling, timeout and request options of `OpenAIChat`. ``max_tokens`` is
            sent as ``max_tokens``, the field OpenAI-compatible servers know.
    """

    def __init__(
        self,
        id: str,
        base_url: str,
        api_key: str | None = None,
        *,
        provider: str = "openai-like",
        **kwargs: Any,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.strip():
            raise ValueError(
                "OpenAILike(): base_url must be the server's API URL, e.g. "
                "'http://127.0.0.1:8080/v1'."
            )
        if not isinstance(provider, str) or not provider:
            raise ValueError("OpenAILike(): provider must be a non-empty name.")
        super().__init__(id, api_key=api_key, base_url=base_url, **kwargs)
        self.provider = provider

    def _api_key(self) -> str:
        return self.api_key or "not-needed"

    def _key_hint(self) -> str:
        return f"Pass OpenAILike(api_key=...) with the key the server at {self._where()} expects."

    def _calls_openai(self) -> bool:
        return False

    def _pricing_provider(self) -> str | None:
        if self.provider == "openai-like" or not pricing.known_provider(self.provider):
            return None
        return self.provider
