"""Step *model request*: one call to the model, retried while nothing has streamed yet.

`ModelCall` is the step as an object rather than an async generator: the driver pulls the
content events to stream with ``await call.next()`` (None once the response is complete), so
a run that does not stream pays for no generator per model call. `take_response` then decides
what the response means, as the step to take next: finish (the answer), another model request
(structured output that does not validate: ask again), or the tool calls to run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from enum import Enum
from typing import TYPE_CHECKING

from pilothouse.exceptions import ModelProviderError
from pilothouse.models.base import ModelDelta, ResponseAssembler
from pilothouse.models.message import Message
from pilothouse.run import events as ev
from pilothouse.run.metrics import Metrics
from pilothouse.run.state import CancelledByUser, StepLimitError
from pilothouse.run.structured import OutputValidationError, parse_answer, retry_message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from pilothouse.models.base import Model
    from pilothouse.run.plan import RunPlan
    from pilothouse.run.state import RunState

__all__ = [
    "MAX_RETRY_DELAY",
    "ModelCall",
    "Next",
    "close_model_stream",
    "really_cancelled",
    "take_response",
]

logger = logging.getLogger("pilothouse")
_perf = time.perf_counter
_sleep = asyncio.sleep  # looked up per call, so tests can record the backoff
MAX_RETRY_DELAY = 60.0


class ModelCall:
    """One model request of a run, with its retries.

    ``await next()`` returns the next `RunContentEvent` to stream (only when the run streams)
    and None once the whole response is in; the response is then on ``state.response`` and
    its message and metrics on the run.
    """

    __slots__ = ("assembler", "attempt", "first_token", "sent", "state")

    assembler: ResponseAssembler
    sent: float

    def __init__(self, state: RunState) -> None:
        self.state = state
        self.attempt = 0
        self.first_token: float | None = None
        limit = state.plan.request_limit
        if limit is not None and state.model_requests >= limit:
            raise StepLimitError(
                f"the run reached its limit of {limit} model requests; raise it with "
                "Agent(request_limit=...) or run(..., request_limit=...), or None for no limit"
            )
        state.model_requests += 1

    async def next(self) -> ev.RunContentEvent | None:
        """Pull the model's stream up to the next content to stream, or to its end."""
        state = self.state
        handle = state.handle
        task = state.current_task() if state.stream else state.task  # see current_task
        while True:
            try:
                iterator = state.open_stream
                if iterator is None:
                    iterator = self._open()
                while True:
                    handle.waiting_task = task
                    try:
                        delta: ModelDelta = await iterator.__anext__()
                    except StopAsyncIteration:
                        state.open_stream = None  # finished: nothing left to close
                        self._complete()
                        return None
                    finally:
                        handle.waiting_task = None
                    if handle.cancel_requested:
                        raise CancelledByUser
                    if self.first_token is None and (
                        delta.content or delta.tool_calls or delta.reasoning
                    ):
                        self.first_token = _perf()
                    self.assembler.add(delta)
                    if state.stream and (delta.content or delta.reasoning):
                        return ev.RunContentEvent(
                            **state.ids, content=delta.content, reasoning_content=delta.reasoning
                        )
            except CancelledByUser:
                raise
            except (asyncio.CancelledError, GeneratorExit) as exc:
                if isinstance(exc, asyncio.CancelledError) and really_cancelled(state):
                    raise
                # Raised by the model itself, not a cancellation of this run: a failure.
                await close_model_stream(state)
                raise ModelProviderError(
                    f"the model's stream raised {type(exc).__name__}",
                    retryable=False,
                    model_name=state.model.name,
                    model_id=state.model.id,
                ) from exc
            except Exception as exc:
                await close_model_stream(state)
                await self._retry_or_raise(exc)

    def _open(self) -> AsyncIterator[ModelDelta]:
        state = self.state
        self.assembler = ResponseAssembler()
        self.first_token = None
        self.sent = _perf()
        iterator = state.model.stream(state.messages, state.request).__aiter__()
        if state.tracer is not None:  # [observe] the attempt's chat span, current while pulled
            iterator = state.tracer.start_chat(state, iterator)
        state.open_stream = iterator
        return iterator

    async def _retry_or_raise(self, exc: Exception) -> None:
        state = self.state
        plan = state.plan
        if state.tracer is not None:  # [observe]
            state.tracer.fail_chat(exc)
        error = _as_provider_error(exc, state.model)
        if self.first_token is not None or not error.retryable or self.attempt >= plan.retries:
            raise error from exc
        delay = backoff(plan, self.attempt, error)
        logger.warning(
            "model call failed (%s); retry %d of %d in %.2fs",
            error,
            self.attempt + 1,
            plan.retries,
            delay,
        )
        self.attempt += 1
        state.handle.waiting_task = state.current_task()
        try:
            await _sleep(delay)
        finally:
            state.handle.waiting_task = None
        if state.handle.cancel_requested:
            raise CancelledByUser

    def _complete(self) -> None:
        """Record the whole response: its assistant message and its metrics."""
        state = self.state
        response = state.response = self.assembler.response()
        first = self.first_token
        call_metrics = Metrics.from_usage(
            response.usage,
            time_to_first_token=None if first is None else first - self.sent,
            duration=_perf() - self.sent,
            cost=state.model.price(response.usage) if response.usage else None,
            finish_reason=response.finish_reason,
        )
        state.out.metrics.add_call(call_metrics)
        if state.tracer is not None:  # [observe]
            state.tracer.end_chat(response, call_metrics)
        state.messages.append(
            Message(
                role="assistant",
                content=response.content or None,
                tool_calls=response.tool_calls or None,
                reasoning_content=response.reasoning,
                metrics=call_metrics,
            )
        )


class Next(Enum):
    """The step a run takes next."""

    MODEL = "model"  # a model request (first, after tools, or to ask again for an answer)
    TOOLS = "tools"  # the tool batch just planned
    FINISH = "finish"  # the answer is in


def take_response(state: RunState) -> Next:
    """Decide what the last model response means, and record the answer if it is one."""
    response = state.response
    assert response is not None
    if response.tool_calls:
        return Next.TOOLS
    out = state.out
    out.reasoning_content = response.reasoning
    schema = state.plan.output_schema
    if schema is None:
        out.content = response.content
        return Next.FINISH
    answer, errors = parse_answer(response.content, schema)
    if answer is not None:
        out.content = answer
        out.content_type = schema.__name__
        return Next.FINISH
    if state.output_retries_left <= 0:
        raise OutputValidationError(
            f"the answer does not match {schema.__name__}: {errors} (the raw answer is the "
            "last assistant message)"
        )
    state.output_retries_left -= 1
    logger.info("answer does not fit %s, asking again: %s", schema.__name__, errors)
    state.messages.append(retry_message(schema, errors))
    return Next.MODEL


async def close_model_stream(state: RunState) -> None:
    """Close a model stream left open (the run stopped or failed mid-response), so that the
    model stops generating now rather than whenever the iterator is collected."""
    iterator, state.open_stream = state.open_stream, None
    if iterator is None:
        return
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            logger.debug("closing a model stream failed", exc_info=True)


def backoff(plan: RunPlan, attempt: int, error: ModelProviderError) -> float:
    """Seconds to wait before retry number ``attempt + 1``: the agent's delay, doubled per
    attempt with exponential backoff, with jitter, at least what the provider asked for."""
    agent = plan.agent
    delay = agent.delay_between_retries
    if agent.exponential_backoff:
        delay *= 2**attempt
    # Jitter spreads the retries of many runs that failed together (a provider outage).
    delay *= _jitter()
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    # A provider asking for a very long pause would otherwise hold the run for that long.
    return min(delay, MAX_RETRY_DELAY)


def really_cancelled(state: RunState) -> bool:
    """Whether a CancelledError is a cancellation of this run (by `cancel_run`, or of the
    caller's task), rather than one a model or tool raised on its own."""
    if state.handle.cancel_requested:
        return True
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _jitter() -> float:
    return random.uniform(0.75, 1.25)


def _as_provider_error(exc: Exception, model: Model) -> ModelProviderError:
    if isinstance(exc, ModelProviderError):
        return exc
    # Anything else a model raises is a bug or a bad request: not worth retrying.
    return ModelProviderError(
        f"{type(exc).__name__}: {exc}", retryable=False, model_name=model.name, model_id=model.id
    )
