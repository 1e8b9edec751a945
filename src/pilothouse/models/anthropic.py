"""Claude, through the Anthropic Messages API and the official ``anthropic`` SDK.

Works with Anthropic's service and with any server that speaks the Messages API (llama.cpp's
``llama-server`` does, at ``/v1/messages``): point ``base_url=`` or ``ANTHROPIC_BASE_URL`` at
it. The SDK is imported on the first call, in a worker thread, never at import time::

    from pilothouse import Agent
    from pilothouse.models.anthropic import Claude

    agent = Agent(model=Claude(id="claude-sonnet-4-6"))
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pilothouse.exceptions import ModelProviderError
from pilothouse.models import pricing
from pilothouse.models.anthropic_wire import StreamTranslator, build_request
from pilothouse.models.base import Model, ModelDelta, ModelRequest
from pilothouse.models.deadline import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
    RequestClock,
    check_timeout,
)
from pilothouse.models.errors import provider_error
from pilothouse.models.message import Message
from pilothouse.run.metrics import Usage
from pilothouse.utils.loop_resources import release_with_loop

__all__ = ["Claude"]

logger = logging.getLogger("pilothouse")

# Request fields the adapter owns: overriding them through request_params would break it.
_RESERVED = frozenset({"model", "messages", "stream", "tools", "tool_choice"})

# How many assistant turns' signed thinking blocks a model object remembers, to send them back
# with the tool results (see `Claude._remember_thinking`).
_THINKING_MEMORY = 512

# The `type` of a Messages API error object → the HTTP status it stands for. An `error` event in
# the middle of a stream arrives on a 200 response, so its status has to come from its type.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class Claude(Model):
    """An Anthropic model (or any Messages API server), called through the ``anthropic`` SDK.

    Answers are always streamed from the API, so time to first token is measured even when the
    run itself is not streamed. ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` are read by
    the SDK when ``api_key`` / ``base_url`` are not given.

    Args:
        id: The model id, e.g. ``"claude-sonnet-4-6"`` (the default) or
            ``"claude-haiku-4-5"``.
        api_key: The API key; default ``ANTHROPIC_API_KEY``.
        base_url: The API's base URL (without ``/v1``); default ``ANTHROPIC_BASE_URL``, else
            Anthropic's service.
        max_tokens: The most tokens one answer may have (the API requires a limit).
        temperature: Sampling temperature; sent only when given.
        top_p: Nucleus sampling; sent only when given.
        top_k: Top-k sampling; sent only when given.
        stop_sequences: Texts that end the answer when the model writes them.
        timeout: Seconds for a whole request, from sending it to the end of the streamed
            answer (default 600); a request still running then fails with a (retryable)
            error naming the limit. None for no deadline.
        idle_timeout: Seconds the answer's stream may go without an event once it has
            started (default 60; the API's keep-alive pings do not count). None for no bound.
        max_retries: Retries inside the SDK. 0 by default, because the run loop retries (see
            ``Agent(retries=...)``, which honours ``retry-after``); raising it multiplies the
            attempts.
        thinking: Extended thinking, as the API's ``thinking`` object, e.g.
            ``{"type": "enabled", "budget_tokens": 2048}`` or ``{"type": "adaptive"}``.
            The thinking text arrives as reasoning content.
        cache_system_prompt: Mark the system prompt for prompt caching
            (``cache_control: ephemeral``); cache reads and writes show in the metrics.
        request_params: More fields for every request body (``metadata``, ``service_tier``,
            or anything a compatible server accepts); they win over the settings above. The
            fields the adapter owns (model, messages, stream, tools, tool_choice) are refused.
        client_params: More arguments for ``anthropic.AsyncAnthropic`` (``default_headers``,
            ``http_client``, ...). An ``http_client`` given here is used as is, on every event
            loop.
    """

    provider = "anthropic"

    def __init__(
        self,
        id: str = "claude-sonnet-4-6",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 8192,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop_sequences: Sequence[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_retries: int = 0,
        thinking: Mapping[str, Any] | None = None,
        cache_system_prompt: bool = False,
        request_params: Mapping[str, Any] | None = None,
        client_params: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(id, str) or not id:
            raise ValueError(
                f"Claude(): id must be a model id such as 'claude-sonnet-4-6', not {id!r}."
            )
        if type(max_tokens) is not int or max_tokens < 1:
            raise ValueError(
                f"Claude(): max_tokens must be a whole number >= 1, not {max_tokens!r}."
            )
        if isinstance(stop_sequences, str):
            raise TypeError("Claude(): stop_sequences must be a list of strings, not a string.")
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError(
                f"Claude(): max_retries must be a whole number >= 0, not {max_retries!r}."
            )
        reserved = sorted(_RESERVED.intersection(request_params or ()))
        if reserved:
            raise ValueError(
                f"Claude(): request_params may not set {', '.join(reserved)}: the adapter sends "
                "those itself (use the run's tools and tool_choice)."
            )
        self.id = id
        self.api_key = api_key
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.stop_sequences = list(stop_sequences) if stop_sequences is not None else None
        self.timeout = check_timeout(timeout, "timeout", "Claude()")
        self.idle_timeout = check_timeout(idle_timeout, "idle_timeout", "Claude()")
        self.max_retries = max_retries
        self.thinking = dict(thinking) if thinking is not None else None
        self.cache_system_prompt = cache_system_prompt
        self.request_params = dict(request_params or {})
        self.client_params = dict(client_params or {})
        # One SDK client per event loop: an HTTP client must not be shared across loops, and
        # sync runs drive their own loop per thread.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._thinking: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    # -- the SDK client -----------------------------------------------------------------------

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is not None:
            return client
        # The SDK import takes seconds, the client's TLS setup and the price data a moment:
        # never on the event loop.
        client = await asyncio.to_thread(self._new_client)
        with self._lock:
            # A client keeps its loop alive through its connections, so the weak key alone
            # would not drop the clients of closed loops (one per asyncio.run(), say).
            for old in [old for old in self._clients if old.is_closed()]:
                del self._clients[old]
            kept = self._clients.setdefault(loop, client)
        if kept is client and "http_client" not in self.client_params:
            # Closed with its loop, before the loop closes (a caller's http_client is theirs).
            release_with_loop(self.aclose)
        return kept

    def _new_client(self) -> Any:
        try:
            import anthropic
        except ModuleNotFoundError as exc:
            raise ModelProviderError(
                "Claude needs the anthropic package: pip install 'pilothouse[anthropic]'",
                retryable=False,
                model_name=self.name,
                model_id=self.id,
            ) from exc
        params: dict[str, Any] = {"max_retries": self.max_retries}
        if self.api_key is not None:
            params["api_key"] = self.api_key
        if self.base_url is not None:
            params["base_url"] = self.base_url
        # The SDK bounds each read, which keep-alive pings defeat: the deadline is enforced
        # around the request instead (RequestClock); the SDK only bounds the connecting.
        connect = DEFAULT_CONNECT_TIMEOUT
        if self.timeout is not None:
            connect = min(connect, self.timeout)
        params["timeout"] = anthropic.Timeout(self.timeout, connect=connect)
        params.update(self.client_params)
        client = anthropic.AsyncAnthropic(**params)
        client.messages  # noqa: B018 (imports the resource module here, off the loop)
        _create_parameters()
        pricing.preload()
        return client

    async def aclose(self) -> None:
        """Close the HTTP client this model uses on the running event loop, if any."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    # -- one call -----------------------------------------------------------------------------

    def request_body(self, messages: Sequence[Message], request: ModelRequest) -> dict[str, Any]:
        """The request body `stream` sends for these messages (without ``stream``)."""
        return self._request(messages, request)[0]

    def _request(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> tuple[dict[str, Any], str | None]:
        with self._lock:
            remembered = dict(self._thinking)
        body, answer = build_request(
            messages,
            request,
            thinking=self.thinking,
            cache_system_prompt=self.cache_system_prompt,
            thinking_blocks=remembered,
        )
        body = {"model": self.id, "max_tokens": self.max_tokens, **body}
        if self.stop_sequences:
            body["stop_sequences"] = self.stop_sequences
        # Sampling settings only when set: some models refuse some of them (temperature with
        # thinking, for one), and the SDK's create() no longer names them.
        for name in ("temperature", "top_p", "top_k"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        body.update(self.request_params)
        return body, answer.name if answer is not None else None

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Send the messages to the Messages API and yield the answer as it streams in."""
        try:
            body, answer_name = self._request(messages, request)
        except ModelProviderError as exc:
            exc.model_id = self.id
            raise
        translator = StreamTranslator(answer_name)
        try:
            client = await self._client()
            clock = RequestClock(self, self.timeout, self.idle_timeout, self._where())
            kwargs, extra_body = _split_body(body)
            if extra_body:
                kwargs["extra_body"] = extra_body
            events = await clock.wait(client.messages.create(stream=True, **kwargs))
        except Exception as exc:
            raise self._error(exc) from exc
        try:
            async with events:
                iterator = events.__aiter__()
                first = True
                while True:
                    try:
                        event = await clock.next(iterator, first=first)
                    except StopAsyncIteration:
                        break
                    first = False
                    delta = translator.feed(event)
                    if delta is not None:
                        yield delta
        except Exception as exc:
            raise self._error(exc) from exc
        finally:
            clock.stop()
        last = translator.finish()
        if last is not None:
            yield last
        if translator.thinking_blocks and translator.tool_ids:
            self._remember_thinking(translator.tool_ids[0], translator.thinking_blocks)
        if translator.stop_reason == "max_tokens":
            logger.warning(
                "Claude %s stopped at max_tokens=%d: the answer may be cut short",
                self.id,
                self.max_tokens,
            )

    def _remember_thinking(self, tool_call_id: str, blocks: list[dict[str, Any]]) -> None:
        # With extended thinking, the API wants the turn's signed thinking blocks back in front
        # of its tool_use blocks; a Message has nowhere to keep the signature, so the model
        # object keeps them, keyed by the turn's first tool call id.
        with self._lock:
            self._thinking[tool_call_id] = blocks
            while len(self._thinking) > _THINKING_MEMORY:
                self._thinking.popitem(last=False)

    def price(self, usage: Usage) -> float | None:
        """The cost in USD of a call with this usage, from genai-prices; None when unknown."""
        return pricing.price(self.provider, self.id, usage)

    # -- errors -------------------------------------------------------------------------------

    def _error(self, exc: Exception) -> ModelProviderError:
        if isinstance(exc, ModelProviderError):
            return exc
        anthropic = sys.modules.get("anthropic")
        if anthropic is None:
            return provider_error(f"{type(exc).__name__}: {exc}", model=self, retryable=False)
        if isinstance(exc, anthropic.APIStatusError):
            return self._status_error(exc)
        if isinstance(exc, anthropic.APITimeoutError):
            return provider_error(
                f"The request to Claude {self.id} timed out ({self._where()}).", model=self
            )
        if isinstance(exc, anthropic.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f": {cause}" if cause is not None and str(cause) else ""
            return provider_error(
                f"Could not connect to the Anthropic API at {self._where()}{detail}.", model=self
            )
        if isinstance(exc, TypeError) and "authentication method" in str(exc):
            return provider_error(
                f"No Anthropic API key for Claude {self.id}: set ANTHROPIC_API_KEY or pass "
                "Claude(api_key=...).",
                model=self,
                retryable=False,
            )
        if isinstance(exc, anthropic.AnthropicError):
            # Credentials that could not be loaded, a response that did not parse, ...
            return provider_error(
                f"Claude {self.id}: {type(exc).__name__}: {exc}", model=self, retryable=False
            )
        if _is_transport_error(exc):
            # The connection broke while the answer was streaming.
            return provider_error(
                f"The connection to the Anthropic API at {self._where()} broke: "
                f"{type(exc).__name__}: {exc}",
                model=self,
            )
        return provider_error(f"{type(exc).__name__}: {exc}", model=self, retryable=False)

    def _status_error(self, exc: Any) -> ModelProviderError:
        status = int(exc.status_code)
        body = exc.body
        error = body.get("error") if isinstance(body, dict) else None
        error_type = error.get("type") if isinstance(error, dict) else None
        detail = error.get("message") if isinstance(error, dict) else None
        if not detail:
            detail = getattr(exc, "api_message", None) or exc.message
        if status < 400:
            # An error event inside a stream that had started fine.
            status = _ERROR_TYPE_STATUS.get(str(error_type), 500)
        headers = exc.response.headers if getattr(exc, "response", None) is not None else None
        if status == 401:
            message = (
                f"Anthropic rejected the API key (401: {detail}). Set ANTHROPIC_API_KEY or "
                "pass Claude(api_key=...)."
            )
        elif status == 403:
            message = f"Not allowed to use Claude {self.id} (403): {detail}"
        elif status == 404:
            message = (
                f"Model {self.id!r} was not found at {self._where()} (404): {detail}. "
                "Check Claude(id=...)."
            )
        elif status == 429:
            message = f"Rate limited by the Anthropic API (429): {detail}"
        elif status == 529:
            message = f"The Anthropic API is overloaded (529): {detail}"
        elif status >= 500:
            message = f"The Anthropic API failed ({status}): {detail}"
        else:
            message = f"Anthropic rejected the request ({status}): {detail}"
        return provider_error(message, status, headers, model=self)

    def _where(self) -> str:
        for client in list(self._clients.values()):
            return str(client.base_url).rstrip("/")
        return self.base_url or "the configured base URL"


def _split_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a body into what ``messages.create`` takes as arguments and the rest (sent as
    ``extra_body``): SDK versions differ in the fields they name."""
    named = _create_parameters()
    kwargs = {k: v for k, v in body.items() if k in named}
    extra = {k: v for k, v in body.items() if k not in named}
    return kwargs, extra


_CREATE_PARAMETERS: frozenset[str] | None = None


def _create_parameters() -> frozenset[str]:
    global _CREATE_PARAMETERS
    if _CREATE_PARAMETERS is None:
        import inspect

        from anthropic.resources.messages import AsyncMessages

        names = set(inspect.signature(AsyncMessages.create).parameters)
        names -= {"self", "stream", "extra_headers", "extra_query", "extra_body", "timeout"}
        _CREATE_PARAMETERS = frozenset(names)
    return _CREATE_PARAMETERS


def _is_transport_error(exc: Exception) -> bool:
    # httpx (SDK 0.x) or httpx2 (SDK 2.x): matched by name so that neither is imported here.
    for cls in type(exc).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module.partition(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2") and (
            cls.__name__ in ("TransportError", "TimeoutException", "NetworkError")
        ):
            return True
    return False
