"""THE run loop: one async generator of events per run.

Every way of running an agent — `run()`, `run(stream=True)`, `arun()`, `arun(stream=True)` —
drives this generator; the non-streaming modes simply drain it. It builds the context, calls the
model (retrying provider failures), runs the tool calls the model asks for, and loops until the
final answer. It always ends in exactly one terminal state (completed, cancelled, error) and
never raises for a failing model or tool: errors are data on the `RunOutput`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pilothouse.exceptions import (
    ContinueRunError,
    ModelProviderError,
    RunNotFoundError,
    ToolArgumentsError,
)
from pilothouse.models.base import Model, ModelDelta, ModelRequest, ResponseAssembler
from pilothouse.models.message import Message, ToolCall
from pilothouse.run import events as ev
from pilothouse.run import recent, registry
from pilothouse.run.context import (
    attach_media,
    build_system_message,
    build_user_messages,
    resolve_dependencies,
)
from pilothouse.run.metrics import Metrics
from pilothouse.run.output import RunOutput, RunStatus, ToolExecution
from pilothouse.run.pause import (
    apply_answers,
    is_waiting,
    mark_for_human,
    pause_message,
    resolve,
    waiting,
)
from pilothouse.run.run_context import RunContext
from pilothouse.run.session import SessionIO
from pilothouse.run.structured import OutputValidationError, parse_answer, retry_message
from pilothouse.tools import Function, cached_toolset, resolve_toolset

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pilothouse.agent.agent import Agent
    from pilothouse.db.base import SessionStore

__all__ = ["Resume", "RunPlan", "run_events"]

logger = logging.getLogger("pilothouse")
_perf = time.perf_counter
_sleep = asyncio.sleep  # looked up per call, so tests can record the backoff
MAX_RETRY_DELAY = 60.0


class RunPlan:
    """Everything one run needs, fixed before it starts. Lives only as long as the run.

    Settings a run cannot override are read from ``agent``; the rest is resolved here from
    the agent's defaults and the run's own arguments. ``resume`` is set when the run is a
    paused run being continued.
    """

    __slots__ = (
        "add_dependencies_to_context",
        "add_history_to_context",
        "add_session_state_to_context",
        "agent",
        "context",
        "debug_mode",
        "dependencies",
        "inline_sync_tools",
        "input",
        "knowledge_filters",
        "media",
        "metadata",
        "model",
        "output",
        "output_schema",
        "resume",
        "retries",
        "session_id",
        "session_state",
        "stream",
        "stream_events",
        "user_id",
    )

    context: RunContext
    output: RunOutput

    def __init__(
        self, agent: Agent, model: Model, input: Any, stream: bool, inline_sync_tools: bool
    ) -> None:
        self.agent = agent
        self.model = model
        self.input = input
        self.stream = stream
        # Sync tools may run on the loop's own thread when the loop serves this run alone.
        self.inline_sync_tools = inline_sync_tools
        self.stream_events = False
        self.retries = 0
        self.dependencies: dict[str, Any] | None = None
        self.add_dependencies_to_context = False
        self.add_session_state_to_context = False
        self.add_history_to_context = False
        self.debug_mode = False
        self.user_id: str | None = None
        self.session_id: str | None = None
        self.session_state: dict[str, Any] | None = None
        self.metadata: dict[str, Any] | None = None
        self.knowledge_filters: dict[str, Any] | None = None
        self.media: dict[str, list[Any]] = {}
        self.output_schema: type[BaseModel] | None = None
        self.resume: Resume | None = None


@dataclass(slots=True)
class Resume:
    """What continuing a paused run starts from: the run (or its id) and the caller's answers.

    ``answers`` are matched to the waiting tool calls by ``tool_call_id``; None means the
    answers were set on the paused `RunOutput`'s own tool executions.
    """

    run_response: RunOutput | None
    answers: Sequence[ToolExecution] | None
    session_id: str | None


class ToolCallLimitError(Exception):
    """The model went on calling tools after the run's tool call limit was reached."""


class _CancelledByUser(Exception):
    """Raised inside the loop when `cancel_run` was asked for between two awaits."""


def _event_ids(out: RunOutput) -> dict[str, Any]:
    return {
        "run_id": out.run_id,
        "session_id": out.session_id,
        "agent_id": out.agent_id,
        "agent_name": out.agent_name,
    }


# The events that end a run. The loop records these itself (with ``store_events``), before it
# stores the run; `_recorded` keeps the others.
_TERMINAL = (ev.RunCompletedEvent, ev.RunErrorEvent, ev.RunCancelledEvent, ev.RunPausedEvent)
# The terminal events a stream shows even without ``stream_events``.
_ALWAYS_STREAMED = (ev.RunErrorEvent, ev.RunCancelledEvent, ev.RunPausedEvent)


def run_events(plan: RunPlan) -> AsyncGenerator[ev.BaseRunEvent, None]:
    """Run one agent run (or continue a paused one), yielding its events.

    Only the events the plan asks for are built: RunContent when streaming, lifecycle events
    with ``stream_events``, and the terminal error/cancel/pause events whenever streaming.
    With the agent's ``store_events`` every event but the content deltas is also kept on
    ``RunOutput.events`` and stored with the run.
    """
    events = _run(plan)
    if plan.agent.store_events:
        return _recorded(plan, events)
    return events


async def _recorded(
    plan: RunPlan, events: AsyncGenerator[ev.BaseRunEvent, None]
) -> AsyncGenerator[ev.BaseRunEvent, None]:
    stream_events = plan.stream and plan.stream_events
    try:
        async for event in events:
            if isinstance(event, ev.RunContentEvent):
                yield event
                continue
            if not isinstance(event, _TERMINAL):
                _keep(plan.output, event)
            if stream_events or (plan.stream and isinstance(event, _ALWAYS_STREAMED)):
                yield event
    finally:
        await events.aclose()


def _keep(out: RunOutput, event: ev.BaseRunEvent) -> None:
    if out.events is None:
        out.events = []
    out.events.append(event)


async def _run(plan: RunPlan) -> AsyncGenerator[ev.BaseRunEvent, None]:
    out = plan.output
    ctx = plan.context
    agent = plan.agent
    model = plan.model
    stream = plan.stream
    store_events = agent.store_events
    stream_events = stream and plan.stream_events
    # Lifecycle events are built when the caller streams them or when they are stored.
    lifecycle = stream_events or store_events
    ids = _event_ids(out) if stream or store_events else {}
    handle = registry.RunHandle(asyncio.get_running_loop())
    # The task driving this generator: one for a drained run; a sync stream steps it in a new
    # task each time, so streaming refreshes it before every interruptible await.
    task = asyncio.current_task()
    registry.register(out.run_id, handle)
    started = _perf()
    store = agent.db
    schema = plan.output_schema
    session_io: SessionIO | None = None
    resume = plan.resume
    # The tool calls of a paused run that are being continued.
    pending: list[ToolExecution] | None = None
    paused_on: list[ToolExecution] = []
    try:
        messages: list[Message]
        if resume is None:
            out.status = RunStatus.running
            if lifecycle:
                yield ev.RunStartedEvent(**ids, model=model.id, model_provider=model.provider)
            history: list[Message] = []
            memories = ""
            if store is not None:
                session_io = SessionIO(store)
                handle.waiting_task = task
                try:
                    ctx.session_state = await session_io.begin(
                        out, default_state=agent.session_state, run_state=plan.session_state
                    )
                    if plan.add_history_to_context:
                        history = await session_io.history(
                            ctx.session_id,
                            num_runs=agent.num_history_runs,
                            num_messages=agent.num_history_messages,
                        )
                    if agent.add_memories_to_context and ctx.user_id is not None:
                        from pilothouse.memory import format_memories_for_context

                        memories = format_memories_for_context(
                            await store.get_user_memories(ctx.user_id)
                        )
                finally:
                    handle.waiting_task = None
            if plan.dependencies:
                ctx.dependencies = await resolve_dependencies(plan.dependencies, agent, ctx)
            messages = []
            system = build_system_message(
                agent,
                ctx,
                add_dependencies=plan.add_dependencies_to_context,
                add_session_state=plan.add_session_state_to_context,
                memories=memories,
            )
            if system is not None:
                messages.append(system)
            messages.extend(history)
            messages.extend(build_user_messages(plan.input))
            if plan.media:
                attach_media(messages, plan.media)
            out.messages = messages
        else:
            if store is not None:
                loading = SessionIO(store)
                handle.waiting_task = task
                try:
                    out, state, pending = await _load_paused(plan, resume, loading)
                except BaseException:
                    # Nothing is stored for a run that could not be loaded: the paused run
                    # stays as it was, ready to be continued again.
                    await loading.release()
                    raise
                finally:
                    handle.waiting_task = None
                session_io = loading
            else:
                assert resume.run_response is not None
                out = resume.run_response
                pending = apply_answers(out, resume.answers)
                state = copy.deepcopy(out.session_state) if out.session_state else {}
            # The continued run is the paused one: same id, messages, tools and metrics.
            plan.output = out
            ctx = plan.context = RunContext(
                out.run_id,
                out.session_id or "",
                out.user_id,
                state,
                {},
                out.metadata,
                agent.knowledge_filters,
            )
            ids = _event_ids(out) if stream or store_events else {}
            # Time spent before the pause counts towards the run's duration.
            started -= out.metrics.duration or 0.0
            out.status = RunStatus.running
            if plan.dependencies:
                ctx.dependencies = await resolve_dependencies(plan.dependencies, agent, ctx)
            messages = out.messages
            if lifecycle:
                yield ev.RunContinuedEvent(**ids)

        # Knowledge base: retrieval into the context, the search tool (pilothouse.knowledge)
        knowledge_tools: list[Function] = []
        if agent.knowledge is not None:
            from pilothouse.knowledge.agent_tools import prepare_knowledge

            knowledge_tools = await prepare_knowledge(
                agent, ctx, messages, out, first=resume is None
            )

        by_name: Mapping[str, Function]
        if agent.tools:
            toolset = cached_toolset(agent.tools)
            if toolset is None:
                # First use: building schemas imports and inspects code, off the event loop.
                toolset = await asyncio.to_thread(resolve_toolset, agent.tools)
            by_name = toolset.by_name
            request = ModelRequest(
                tools=toolset.definitions,
                tool_choice=agent.tool_choice if resume is None else None,
                output_schema=schema,
            )
        else:
            by_name = {}
            request = ModelRequest(output_schema=schema)
        if knowledge_tools:
            by_name = {**by_name, **{f.name: f for f in knowledge_tools}}
            request.tools = (*request.tools, *(f.definition for f in knowledge_tools))
        calls_made = len(out.tools)
        if agent.tool_call_limit is not None and calls_made >= agent.tool_call_limit:
            request.tool_choice = "none"
        output_retries_left = agent.output_retries
        over_limit = False

        while True:
            if handle.cancel_requested:
                raise _CancelledByUser
            to_run: list[tuple[ToolCall, ToolExecution]]
            settled: list[ToolExecution] = []  # answered without running (rejected, external)
            if pending is not None:
                # ---- continuing: the paused batch of tool calls, now answered ----
                batch = _paused_batch(out, messages)
                to_run = []
                for execution in pending:
                    resolution = resolve(execution)
                    execution.tool_args = resolution.arguments
                    if resolution.run:
                        call = ToolCall(
                            name=execution.tool_name,
                            arguments=resolution.arguments,
                            id=execution.tool_call_id or "",
                        )
                        to_run.append((call, execution))
                    else:
                        execution.result = resolution.result
                        execution.metrics = Metrics()
                        settled.append(execution)
                pending = None
            else:
                # ---- one model call, retried while nothing has streamed yet ----
                attempt = 0
                while True:
                    assembler = ResponseAssembler()
                    sent = _perf()
                    first_token: float | None = None
                    iterator: AsyncIterator[ModelDelta] | None = None
                    try:
                        iterator = model.stream(messages, request).__aiter__()
                        if stream:
                            task = asyncio.current_task()
                        while True:
                            handle.waiting_task = task
                            try:
                                delta = await iterator.__anext__()
                            except StopAsyncIteration:
                                iterator = None  # finished: nothing left to close
                                break
                            finally:
                                handle.waiting_task = None
                            if handle.cancel_requested:
                                raise _CancelledByUser
                            if first_token is None and (
                                delta.content or delta.tool_calls or delta.reasoning
                            ):
                                first_token = _perf()
                            assembler.add(delta)
                            if stream and (delta.content or delta.reasoning):
                                yield ev.RunContentEvent(
                                    **ids, content=delta.content, reasoning_content=delta.reasoning
                                )
                                # A sync stream resumes every step in a new task.
                                task = asyncio.current_task()
                        break
                    except (asyncio.CancelledError, _CancelledByUser, GeneratorExit):
                        raise
                    except Exception as exc:
                        error = _as_provider_error(exc, model)
                        if (
                            first_token is not None
                            or not error.retryable
                            or attempt >= plan.retries
                        ):
                            raise error from exc
                        delay = _backoff(plan, attempt, error)
                        logger.warning(
                            "model call failed (%s); retry %d of %d in %.2fs",
                            error,
                            attempt + 1,
                            plan.retries,
                            delay,
                        )
                        attempt += 1
                        if stream:
                            task = asyncio.current_task()
                        handle.waiting_task = task
                        try:
                            await _sleep(delay)
                        finally:
                            handle.waiting_task = None
                    finally:
                        if iterator is not None:
                            # Stopped early (cancelled, failed, stream closed): let the model
                            # stop generating now rather than whenever the iterator is collected.
                            await _close_quietly(iterator)

                response = assembler.response()
                call_metrics = Metrics.from_usage(
                    response.usage,
                    time_to_first_token=None if first_token is None else first_token - sent,
                    duration=_perf() - sent,
                    cost=model.price(response.usage) if response.usage else None,
                )
                out.metrics.add_call(call_metrics)
                messages.append(
                    Message(
                        role="assistant",
                        content=response.content or None,
                        tool_calls=response.tool_calls or None,
                        reasoning_content=response.reasoning,
                        metrics=call_metrics,
                    )
                )

                if not response.tool_calls:
                    out.reasoning_content = response.reasoning
                    if schema is None:
                        out.content = response.content
                        break
                    answer, errors = parse_answer(response.content, schema)
                    if answer is not None:
                        out.content = answer
                        out.content_type = schema.__name__
                        break
                    if output_retries_left <= 0:
                        raise OutputValidationError(
                            f"the answer does not match {schema.__name__}: {errors} (the raw "
                            "answer is the last assistant message)"
                        )
                    output_retries_left -= 1
                    logger.info("answer does not fit %s, asking again: %s", schema.__name__, errors)
                    messages.append(retry_message(schema, errors))
                    continue

                # ---- tool calls ----
                if request.tool_choice not in (None, "auto", "none"):
                    # A forced tool choice applies to the first call only; keeping it would
                    # make the model call tools forever.
                    request.tool_choice = "auto"
                batch = [_new_execution(call, by_name) for call in response.tool_calls]
                allowed = len(batch)
                if agent.tool_call_limit is not None:
                    allowed = max(0, min(allowed, agent.tool_call_limit - calls_made))
                    if allowed == 0:
                        if over_limit:
                            # Told once that the limit was reached, it asks again: a model
                            # that ignores tool_choice="none" would otherwise loop forever.
                            raise ToolCallLimitError(
                                f"the model kept calling tools after the tool call limit of "
                                f"{agent.tool_call_limit} was reached"
                            )
                        over_limit = True
                to_run = []
                for index, (call, execution) in enumerate(
                    zip(response.tool_calls, batch, strict=True)
                ):
                    if index >= allowed:
                        execution.result = (
                            f"Not run: the tool call limit of {agent.tool_call_limit} for this "
                            "run was reached. Answer with what you have."
                        )
                        execution.tool_call_error = True
                        execution.metrics = Metrics()
                        continue
                    mark_for_human(execution, by_name.get(call.name))
                    if not is_waiting(execution):
                        to_run.append((call, execution))
                calls_made += allowed
                if agent.tool_call_limit is not None and calls_made >= agent.tool_call_limit:
                    request.tool_choice = "none"
                out.tools.extend(batch)

            # ---- run the tool calls that are ready ----
            if to_run:
                if lifecycle:
                    for _, execution in to_run:
                        yield ev.ToolCallStartedEvent(**ids, tool=execution)
                if stream:
                    task = asyncio.current_task()
                handle.waiting_task = task
                try:
                    await _execute_all(
                        [c for c, _ in to_run], [e for _, e in to_run], by_name, plan
                    )
                finally:
                    handle.waiting_task = None
                if handle.cancel_requested:
                    raise _CancelledByUser
            if lifecycle:
                for execution in [*(e for _, e in to_run), *settled]:
                    yield ev.ToolCallCompletedEvent(**ids, tool=execution, content=execution.result)
            paused_on = waiting(batch)
            if paused_on:
                break
            for execution in batch:
                messages.append(
                    Message(
                        role="tool",
                        # Always text: `_execute` stores the tool's formatted result or the error.
                        content=execution.result,
                        tool_call_id=execution.tool_call_id,
                        name=execution.tool_name,
                        tool_call_error=execution.tool_call_error,
                    )
                )
            if any(
                e.stop_after_tool_call and not e.tool_call_error and e.confirmed is not False
                for e in batch
            ):
                out.content = "\n".join(str(e.result) for e in batch)
                break

        out.session_state = ctx.session_state
        if paused_on:
            out.status = RunStatus.paused
            out.content = pause_message(paused_on)
            out.metrics.duration = _perf() - started
            paused = (
                ev.RunPausedEvent(**ids, tools=paused_on, content=out.content)
                if stream or store_events
                else None
            )
            if store_events and paused is not None:
                _keep(out, paused)
            if session_io is not None:
                await session_io.finish(out)
            if stream and paused is not None:
                yield paused
            return
        if lifecycle:
            yield ev.RunContentCompletedEvent(**ids)
        if store is not None and agent.enable_user_memories and ctx.user_id is not None:
            if lifecycle:
                yield ev.MemoryUpdateStartedEvent(**ids)
            await _update_memories(plan, store, ctx.user_id, messages)
            if lifecycle:
                yield ev.MemoryUpdateCompletedEvent(**ids)
        out.status = RunStatus.completed
        out.metrics.duration = _perf() - started
        completed = (
            ev.RunCompletedEvent(
                **ids,
                content=out.content,
                content_type=out.content_type,
                reasoning_content=out.reasoning_content,
                metrics=out.metrics,
                session_state=out.session_state,
            )
            if lifecycle
            else None
        )
        if store_events and completed is not None:
            _keep(out, completed)
        if session_io is not None:
            await session_io.finish(out)
        if completed is not None:
            yield completed
    except (ContinueRunError, RunNotFoundError):
        # Continuing was refused before anything changed: the stored run stays as it was.
        raise
    except _CancelledByUser:
        _finish_cancelled(out, handle.reason, started)
        cancelled = _terminal_event(out, ids, stream, store_events)
        await _store_quietly(session_io, out)
        if stream and cancelled is not None:
            yield cancelled
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if handle.cancel_requested and task is not None and task.uncancel() == 0:
            _finish_cancelled(out, handle.reason, started)
            cancelled = _terminal_event(out, ids, stream, store_events)
            await _store_quietly(session_io, out)
            if stream and cancelled is not None:
                yield cancelled
        else:
            # Cancelled from outside (a timeout, a shutdown): record it, then let it through.
            _finish_cancelled(out, "the task running this run was cancelled", started)
            _terminal_event(out, ids, False, store_events)
            await _store_quietly(session_io, out)
            raise
    except GeneratorExit:
        # The consumer stopped iterating the stream before the end.
        if out.status is RunStatus.running:
            _finish_cancelled(out, "the stream was closed before the run ended", started)
            _terminal_event(out, ids, False, store_events)
        await _store_quietly(session_io, out)
        raise
    except Exception as exc:
        out.status = RunStatus.error
        out.content = _error_message(exc)
        out.metrics.duration = _perf() - started
        logger.error("run %s failed: %s", out.run_id, out.content, exc_info=not _expected(exc))
        failed = _terminal_event(out, ids, stream, store_events, error=exc)
        await _store_quietly(session_io, out)
        if stream and failed is not None:
            yield failed
    finally:
        if session_io is not None:
            await session_io.release()
        registry.unregister(out.run_id)
        recent.remember(out)
        if plan.debug_mode:
            _log_run(out)


def _terminal_event(
    out: RunOutput,
    ids: dict[str, Any],
    stream: bool,
    store_events: bool,
    *,
    error: BaseException | None = None,
) -> ev.BaseRunEvent | None:
    """The event that ends a failed or cancelled run: built when it is streamed or stored."""
    if not (stream or store_events):
        return None
    event: ev.BaseRunEvent
    if error is not None:
        event = ev.RunErrorEvent(**ids, content=out.content, error_type=type(error).__name__)
    else:
        event = ev.RunCancelledEvent(**ids, reason=out.content)
    if store_events:
        _keep(out, event)
    return event


async def _load_paused(
    plan: RunPlan, resume: Resume, session_io: SessionIO
) -> tuple[RunOutput, dict[str, Any], list[ToolExecution]]:
    """Take the paused run's session lease, read the run as stored and apply the answers.

    The run is read again under the lease, so that two callers continuing the same run
    cannot both run its tools: the second finds it no longer paused.
    """
    store = session_io.store
    run_id = plan.output.run_id
    session_id = resume.session_id
    if resume.run_response is not None:
        session_id = session_id or resume.run_response.session_id
    if session_id is None:
        found = await store.get_run(run_id)
        if found is None:
            raise RunNotFoundError(f"no run {run_id!r} in the session store")
        session_id = found.get("session_id")
    plan.output.session_id = session_id
    state = await session_io.begin(
        plan.output, default_state=plan.agent.session_state, run_state=None, resume=True
    )
    data = await store.get_run(run_id)
    if data is None or data.get("session_id") != session_id:
        raise RunNotFoundError(f"no run {run_id!r} in session {session_id!r} of the store")
    out = RunOutput.from_dict(data)
    answers = resume.answers
    if answers is None and resume.run_response is not None:
        answers = resume.run_response.tools
    pending = apply_answers(out, answers)
    return out, state, pending


def _paused_batch(out: RunOutput, messages: Sequence[Message]) -> list[ToolExecution]:
    """The executions of the tool calls in the last assistant message, in call order."""
    for message in reversed(messages):
        if message.role == "assistant" and message.tool_calls:
            by_id = {e.tool_call_id: e for e in out.tools}
            return [by_id[c.id] for c in message.tool_calls if c.id in by_id]
    return []


def _log_run(out: RunOutput) -> None:
    logger.debug("run %s ended %s", out.run_id, out.status.value)
    for message in out.messages:
        logger.debug("  %s: %s", message.role, message.text() or message.tool_calls)
    logger.debug("  metrics: %s", out.metrics.to_dict())


async def _close_quietly(iterator: AsyncIterator[ModelDelta]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            logger.debug("closing a model stream failed", exc_info=True)


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, ModelProviderError) or type(exc).__name__ == "StoreError"


def _error_message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    from pilothouse.db.errors import StoreError

    if isinstance(exc, StoreError):
        return f"session store failed: {text}"
    return text


async def _store_quietly(session_io: SessionIO | None, out: RunOutput) -> None:
    """Record how a run ended; a store that fails here must not hide the run's own outcome."""
    if session_io is None or session_io.finished:
        return
    try:
        await session_io.finish(out)
    except Exception:
        logger.warning("run %s: could not store its final state", out.run_id, exc_info=True)


async def _update_memories(
    plan: RunPlan, store: SessionStore, user_id: str, messages: Sequence[Message]
) -> None:
    from pilothouse.memory import MemoryManager

    agent = plan.agent
    manager = agent.memory_manager or MemoryManager()
    turn = [m for m in messages if m.role in ("user", "assistant") and not m.from_history]
    update = await manager.update(store=store, user_id=user_id, messages=turn, model=plan.model)
    plan.output.metrics.add_call(update.metrics)


def _finish_cancelled(out: RunOutput, reason: str | None, started: float) -> None:
    out.status = RunStatus.cancelled
    out.content = reason or "the run was cancelled"
    out.metrics.duration = _perf() - started


def _backoff(plan: RunPlan, attempt: int, error: ModelProviderError) -> float:
    delay = plan.agent.delay_between_retries
    if plan.agent.exponential_backoff:
        delay *= 2**attempt
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    # A provider asking for a very long pause would otherwise hold the run for that long.
    return min(delay, MAX_RETRY_DELAY)


def _as_provider_error(exc: Exception, model: Model) -> ModelProviderError:
    if isinstance(exc, ModelProviderError):
        return exc
    # Anything else a model raises is a bug or a bad request: not worth retrying.
    return ModelProviderError(
        f"{type(exc).__name__}: {exc}", retryable=False, model_name=model.name, model_id=model.id
    )


def _new_execution(call: ToolCall, by_name: Mapping[str, Function]) -> ToolExecution:
    function = by_name.get(call.name)
    try:
        args = call.parsed_arguments()
    except ValueError:
        args = {"_raw": call.arguments}
    return ToolExecution(
        tool_name=call.name,
        tool_args=args,
        tool_call_id=call.id,
        stop_after_tool_call=function.stop_after_tool_call if function else False,
    )


async def _execute_all(
    calls: Sequence[ToolCall],
    executions: Sequence[ToolExecution],
    by_name: Mapping[str, Function],
    plan: RunPlan,
) -> None:
    """Run the tool calls of one model response; several run concurrently."""
    if len(calls) == 1:
        await _execute(calls[0], executions[0], by_name, plan)
        return
    # Several calls: threads for sync tools, so that they overlap.
    await asyncio.gather(
        *(
            _execute(c, e, by_name, plan, inline_ok=False)
            for c, e in zip(calls, executions, strict=True)
        )
    )


async def _execute(
    call: ToolCall,
    execution: ToolExecution,
    by_name: Mapping[str, Function],
    plan: RunPlan,
    *,
    inline_ok: bool = True,
) -> None:
    """Run one tool call, recording its result or its error on the execution."""
    started = _perf()
    function = by_name.get(call.name)
    try:
        if function is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise ToolArgumentsError(f"Unknown tool {call.name!r}. Available tools: {known}.")
        ctx = plan.context
        injected = {
            "agent": plan.agent,
            "run_context": ctx,
            "session_state": ctx.session_state,
            "dependencies": ctx.dependencies,
            **plan.media,
        }
        result = await function.acall(
            call.arguments, injected, inline_sync=inline_ok and plan.inline_sync_tools
        )
        execution.result = function.format_result(result)
    except ToolArgumentsError as exc:
        execution.result = f"Invalid arguments for {call.name}: {exc}"
        execution.tool_call_error = True
    except Exception as exc:
        logger.info("tool %s raised %s: %s", call.name, type(exc).__name__, exc)
        execution.result = f"Error from {call.name}: {type(exc).__name__}: {exc}"
        execution.tool_call_error = True
    execution.metrics = Metrics(duration=_perf() - started)
