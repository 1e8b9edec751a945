"""`RunTracer`: the spans and metrics of one run, called by the run loop at its step boundaries.

One ``invoke_agent {agent}`` span (INTERNAL) covers the run; under it, one ``chat {model}``
span (CLIENT) per model request attempt and one ``execute_tool {tool}`` span (INTERNAL) per
tool call. Child spans name their parent explicitly rather than through the current context:
a run's steps may each run in a different task (a synchronous stream resumes every step in a
new one), and a context attached in one task cannot be detached in another. The context is
made current only where code we do not control runs inside one step: while the model's stream
is pulled (so an instrumented HTTP client nests under ``chat``) and while a tool runs (so its
HTTP calls nest under ``execute_tool``; `asyncio.to_thread` carries it into worker threads).

A stored run keeps the W3C ``traceparent`` of its ``invoke_agent`` span in
``RunOutput.trace_context``; when it is continued (after a pause, a failure or a crash), the
new ``invoke_agent`` span links to it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pilothouse.observe import attributes as attr
from pilothouse.observe import content
from pilothouse.run.output import RunStatus

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine

    from opentelemetry.trace import Span

    from pilothouse.models.base import ModelDelta, ModelResponse
    from pilothouse.observe.telemetry import Telemetry
    from pilothouse.run.metrics import Metrics, Usage
    from pilothouse.run.output import RunOutput, ToolExecution
    from pilothouse.run.state import RunState
    from pilothouse.tools import Function

__all__ = ["RunTracer"]

logger = logging.getLogger("pilothouse")
_perf = time.perf_counter
_propagator = TraceContextTextMapPropagator()
# Status descriptions are for people reading a trace: the whole message is in the run.
_MAX_DESCRIPTION = 500


class RunTracer:
    """The spans and metrics of one run (see the module). Made by `switch.run_tracer`."""

    __slots__ = (
        "capture",
        "chat_attributes",
        "chat_span",
        "chat_started",
        "conversation_id",
        "error",
        "model_id",
        "provider",
        "run_context",
        "run_span",
        "telemetry",
    )

    def __init__(self, telemetry: Telemetry, state: RunState) -> None:
        self.telemetry = telemetry
        self.capture = telemetry.capture_content
        agent = state.agent
        model = state.model
        out = state.out
        plan = state.plan
        self.provider: str = model.provider
        self.model_id: str = model.id
        self.conversation_id = out.session_id
        self.chat_span: Span | None = None
        self.chat_started = 0.0
        self.chat_attributes: dict[str, Any] = {}
        self.error: BaseException | None = None
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: attr.INVOKE_AGENT,
            attr.PROVIDER_NAME: self.provider,
            attr.REQUEST_MODEL: self.model_id,
            attr.AGENT_ID: agent.id,
            attr.RUN_ID: out.run_id,
        }
        if agent.name:
            attributes[attr.AGENT_NAME] = agent.name
        if agent.description:
            attributes[attr.AGENT_DESCRIPTION] = agent.description
        if out.session_id:
            attributes[attr.CONVERSATION_ID] = out.session_id
        if plan.output_schema is not None:
            attributes[attr.OUTPUT_TYPE] = "json"
        if plan.resume is not None:
            attributes[attr.RUN_CONTINUED] = True
        name = f"{attr.INVOKE_AGENT} {agent.name}" if agent.name else attr.INVOKE_AGENT
        # The parent is the caller's current span, if any (see `continue_trace`).
        span = telemetry.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        self.run_span = span
        self.run_context = trace.set_span_in_context(span)
        if plan.resume is None:
            self._remember(out)

    # ------------------------------------------------------------------ the run

    def prepared(self, state: RunState) -> None:
        """After *prepare*: the session is known, and a continued run is loaded."""
        out = state.out
        span = self.run_span
        if out.session_id and out.session_id != self.conversation_id:
            self.conversation_id = out.session_id
            span.set_attribute(attr.CONVERSATION_ID, out.session_id)
        if state.plan.resume is not None:
            # Link to the execution that paused (or failed, or was interrupted), then take
            # its place as the one a later continuation links to.
            if out.trace_context:
                earlier = trace.get_current_span(_propagator.extract(out.trace_context))
                span_context = earlier.get_span_context()
                if span_context.is_valid:
                    span.add_link(span_context)
            self._remember(out)
        elif self.capture:
            own = [m for m in state.messages if m.role == "user" and not m.from_history]
            span.set_attribute(attr.INPUT_MESSAGES, content.messages_json(own))

    def failed(self, exc: BaseException) -> None:
        """The run is ending with this error (its status is set by *finish*), or continuing
        it was refused."""
        self.error = exc

    def end(self, state: RunState) -> None:
        """The run has ended, however it ended: close its spans.

        Called from the run's ``finally``: a failure here must not keep the run from
        releasing its session, so it is logged instead of raised.
        """
        try:
            self._end(state)
        except Exception:
            logger.warning("run %s: could not end its spans", state.out.run_id, exc_info=True)

    def _end(self, state: RunState) -> None:
        out = state.out
        status = out.status
        error = self.error
        failed = error is not None or status is RunStatus.error
        error_type = ""
        if failed:
            if error is None and state.handle.timed_out:
                error_type = "RunTimeoutError"
            else:
                error_type = _error_type(error)
        if self.chat_span is not None:
            # The run stopped during a model request: it failed, was cancelled, or its
            # stream was closed.
            if failed:
                self._end_chat_failed(error_type, str(out.content or error))
            else:
                self._end_chat_failed("cancelled", "the run stopped during the request")
        span = self.run_span
        span.set_attribute(attr.RUN_STATUS, status.value)
        if out.metrics.model_calls:
            _set_usage(span, out.metrics)
        if failed:
            span.set_attribute(attr.ERROR_TYPE, error_type)
            description = out.content if status is RunStatus.error else error
            span.set_status(Status(StatusCode.ERROR, str(description)[:_MAX_DESCRIPTION]))
        elif self.capture and status is RunStatus.completed and out.content is not None:
            span.set_attribute(
                attr.OUTPUT_MESSAGES, content.text_output_json(out.get_content_as_string())
            )
        span.end()

    def _remember(self, out: RunOutput) -> None:
        """Keep this execution's span context on the run, so that it is stored with it."""
        carrier: dict[str, str] = {}
        if self.run_span.get_span_context().is_valid:
            _propagator.inject(carrier, context=self.run_context)
        out.trace_context = carrier or None

    # ------------------------------------------------------------------ model requests

    def start_chat(
        self, state: RunState, stream: AsyncIterator[ModelDelta]
    ) -> AsyncIterator[ModelDelta]:
        """A model request attempt starts: open its span; return the stream to pull, which
        makes the span current while the model works."""
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: attr.CHAT,
            attr.PROVIDER_NAME: self.provider,
            attr.REQUEST_MODEL: self.model_id,
        }
        self.chat_attributes = dict(attributes)
        if self.conversation_id:
            attributes[attr.CONVERSATION_ID] = self.conversation_id
        request = state.request
        if request.output_schema is not None:
            attributes[attr.OUTPUT_TYPE] = "json"
        span = self.telemetry.tracer.start_span(
            f"{attr.CHAT} {self.model_id}",
            context=self.run_context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        if self.capture and span.is_recording():
            span.set_attribute(attr.INPUT_MESSAGES, content.messages_json(state.messages))
            if request.tools:
                span.set_attribute(
                    attr.TOOL_DEFINITIONS, content.tool_definitions_json(request.tools)
                )
        self.chat_span = span
        self.chat_started = _perf()
        return _CurrentWhilePulled(stream, trace.set_span_in_context(span, self.run_context))

    def end_chat(self, response: ModelResponse, metrics: Metrics) -> None:
        """The model's whole response is in: record it on its span and in the metrics."""
        span = self.chat_span
        if span is None:
            return
        self.chat_span = None
        response_model = getattr(response, "model", None) or self.model_id
        span.set_attribute(attr.RESPONSE_MODEL, response_model)
        reasons = _finish_reasons(response)
        if reasons:
            span.set_attribute(attr.RESPONSE_FINISH_REASONS, reasons)
        ttfc = metrics.time_to_first_token
        if ttfc is not None:
            span.set_attribute(attr.RESPONSE_TIME_TO_FIRST_CHUNK, ttfc)
        usage = response.usage
        if usage is not None:
            _set_usage(span, usage)
        if self.capture and span.is_recording():
            span.set_attribute(attr.OUTPUT_MESSAGES, content.output_json(response))
        span.end()
        measured = {**self.chat_attributes, attr.RESPONSE_MODEL: response_model}
        telemetry = self.telemetry
        duration = metrics.duration
        telemetry.duration.record(
            duration if duration is not None else _perf() - self.chat_started, measured
        )
        if ttfc is not None:
            telemetry.time_to_first_chunk.record(ttfc, measured)
        if usage is not None:
            telemetry.token_usage.record(usage.input_tokens, {**measured, attr.TOKEN_TYPE: "input"})
            telemetry.token_usage.record(
                usage.output_tokens, {**measured, attr.TOKEN_TYPE: "output"}
            )

    def fail_chat(self, exc: BaseException) -> None:
        """The model request attempt failed (it may be retried, in a new span)."""
        if self.chat_span is not None:
            self._end_chat_failed(_error_type(exc), str(exc))

    def _end_chat_failed(self, error_type: str, description: str) -> None:
        span = self.chat_span
        assert span is not None
        self.chat_span = None
        span.set_attribute(attr.ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR, description[:_MAX_DESCRIPTION]))
        span.end()
        self.telemetry.duration.record(
            _perf() - self.chat_started, {**self.chat_attributes, attr.ERROR_TYPE: error_type}
        )

    # ------------------------------------------------------------------ tool calls

    async def tool_call(
        self, execution: ToolExecution, function: Function, call: Coroutine[Any, Any, Any]
    ) -> Any:
        """Await one tool call inside its ``execute_tool`` span, current while it runs."""
        name = execution.tool_name
        attributes: dict[str, Any] = {
            attr.OPERATION_NAME: attr.EXECUTE_TOOL,
            attr.TOOL_NAME: name,
            attr.TOOL_CALL_ID: execution.tool_call_id,
            attr.TOOL_TYPE: "function",
        }
        if function.description:
            attributes[attr.TOOL_DESCRIPTION] = function.description
        span = self.telemetry.tracer.start_span(
            f"{attr.EXECUTE_TOOL} {name}",
            context=self.run_context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        if self.capture and span.is_recording():
            span.set_attribute(
                attr.TOOL_CALL_ARGUMENTS, content.arguments_json(execution.tool_args)
            )
        token = otel_context.attach(trace.set_span_in_context(span, self.run_context))
        try:
            try:
                result = await call
            finally:
                otel_context.detach(token)
        except BaseException as exc:
            span.set_attribute(attr.ERROR_TYPE, _error_type(exc))
            span.set_status(Status(StatusCode.ERROR, str(exc)[:_MAX_DESCRIPTION]))
            span.end()
            raise
        if self.capture and span.is_recording():
            try:
                text = function.format_result(result)
            except Exception:  # the step reports it; the span just goes without the result
                text = None
            if text is not None:
                span.set_attribute(attr.TOOL_CALL_RESULT, content.result_json(text))
        span.end()
        return result


class _CurrentWhilePulled:
    """A model stream that makes a context current while each of its chunks is awaited."""

    __slots__ = ("_context", "_inner")

    def __init__(self, inner: AsyncIterator[ModelDelta], context: otel_context.Context) -> None:
        self._inner = inner
        self._context = context

    def __aiter__(self) -> _CurrentWhilePulled:
        return self

    async def __anext__(self) -> ModelDelta:
        token = otel_context.attach(self._context)
        try:
            return await self._inner.__anext__()
        finally:
            otel_context.detach(token)

    async def aclose(self) -> None:
        """Close the model's stream (the run stopped mid-response)."""
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            await aclose()


def _set_usage(span: Span, usage: Usage | Metrics) -> None:
    span.set_attribute(attr.USAGE_INPUT_TOKENS, usage.input_tokens)
    span.set_attribute(attr.USAGE_OUTPUT_TOKENS, usage.output_tokens)
    # The optional counts only when the provider reported them.
    if usage.cache_read_tokens:
        span.set_attribute(attr.USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens)
    if usage.cache_write_tokens:
        span.set_attribute(attr.USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write_tokens)
    if usage.reasoning_tokens:
        span.set_attribute(attr.USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens)
    if usage.audio_input_tokens:
        span.set_attribute(attr.USAGE_AUDIO_INPUT_TOKENS, usage.audio_input_tokens)
    if usage.audio_output_tokens:
        span.set_attribute(attr.USAGE_AUDIO_OUTPUT_TOKENS, usage.audio_output_tokens)


def _finish_reasons(response: ModelResponse) -> list[str]:
    """The finish reason(s), where the model adapter reports them."""
    reason = getattr(response, "finish_reason", None)
    if not reason:
        return []
    if isinstance(reason, list | tuple):
        return [str(r) for r in reason]
    return [str(reason)]


def _error_type(exc: BaseException | None) -> str:
    """A low-cardinality name for an error: the provider's HTTP status where there is one,
    else the exception's class name."""
    if exc is None:
        return "_OTHER"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return str(status)
    return type(exc).__qualname__
