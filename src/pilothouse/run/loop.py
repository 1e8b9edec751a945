"""THE run loop: one async generator of events per run, a short driver over named steps.

Every way of running an agent — `run()`, `run(stream=True)`, `arun()`, `arun(stream=True)` —
drives this generator; the non-streaming modes simply drain it. The steps live in
`pilothouse.run.steps`: *prepare* (session, history, memories, dependencies, messages),
*model request* (one call, with retries), *tool batch* (run the calls that are ready, pause on
those that wait for a person) and *finish* (answer, memories, store). What passes between them
is one `RunState`. Cancellation, limits, deadlines and checkpoints sit here, at the step
boundaries, and so do the tracing hooks (`pilothouse.observe`, marked ``[observe]``). A run
always ends in exactly one terminal state (completed, paused, cancelled, error) and never
raises for a failing model or tool: errors are data on the `RunOutput`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

from pilothouse.exceptions import ContinueRunError, RunNotFoundError
from pilothouse.observe.switch import run_tracer
from pilothouse.run import events as ev
from pilothouse.run import recent, registry
from pilothouse.run.output import RunOutput, RunStatus
from pilothouse.run.plan import Resume, RunPlan
from pilothouse.run.state import CancelledByUser, RunState
from pilothouse.run.steps.finish import (
    RunTimeoutError,
    answer_complete,
    end_cancelled,
    end_failed,
    finish_completed,
    finish_paused,
    save_checkpoint,
    store_quietly,
    update_memories,
    wants_memories,
)
from pilothouse.run.steps.model_request import ModelCall, Next, close_model_stream, take_response
from pilothouse.run.steps.prepare import prepare, prepare_continued
from pilothouse.run.steps.tool_batch import end_batch, plan_batch, run_batch

__all__ = ["Resume", "RunPlan", "run_events"]

logger = logging.getLogger("pilothouse")


async def run_events(plan: RunPlan) -> AsyncGenerator[ev.BaseRunEvent, None]:
    """Run one agent run (or continue a stored one), yielding its events.

    Only the events the plan asks for are built: RunContent when streaming, lifecycle events
    with ``stream_events``, and the terminal error/cancel/pause events whenever streaming.
    With the agent's ``store_events`` every event but the content deltas is also kept on
    ``RunOutput.events`` and stored with the run.
    """
    state = RunState(plan)
    # [observe] None unless OpenTelemetry is on; the step boundaries below check it.
    tracer = state.tracer = run_tracer(state)
    handle = state.handle
    registry.register(state.out.run_id, handle)
    if plan.timeout is not None:
        handle.timer = handle.loop.call_later(plan.timeout, handle.expire, plan.timeout)
    try:
        step = await prepare(state) if plan.resume is None else await prepare_continued(state)
        if tracer is not None:  # [observe]
            tracer.prepared(state)
        if state.events:
            for event in state.take_events():
                yield event
        while step is not Next.FINISH:
            if handle.cancel_requested:  # a step boundary: stop here if cancel_run asked
                raise CancelledByUser
            if step is Next.MODEL:
                call = ModelCall(state)
                while (content := await call.next()) is not None:
                    yield content
                step = take_response(state)
                if step is Next.TOOLS:
                    plan_batch(state)
                    if state.checkpoints:
                        await save_checkpoint(state)
                continue
            # Next.TOOLS: the batch planned by the step before.
            for event in state.take_events():
                yield event
            await run_batch(state)
            end_batch(state)
            for event in state.take_events():
                yield event
            if state.paused_on or state.stopped:
                break
            if state.checkpoints:
                await save_checkpoint(state)
            step = Next.MODEL
        if state.paused_on:
            await finish_paused(state)
        else:
            answer_complete(state)
            if state.agent.enable_user_memories and wants_memories(state):
                for event in state.take_events():
                    yield event
                await update_memories(state)
            await finish_completed(state)
        if state.events:
            for event in state.take_events():
                yield event
    except (ContinueRunError, RunNotFoundError) as exc:
        # Continuing was refused before anything changed: the stored run stays as it was.
        if tracer is not None:  # [observe]
            tracer.failed(exc)
        raise
    except CancelledByUser:
        ending = _end_stopped(state)
        await store_quietly(state)
        if state.stream and ending is not None:
            yield ending
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if handle.cancel_requested and task is not None and task.uncancel() == 0:
            ending = _end_stopped(state)
            await store_quietly(state)
            if state.stream and ending is not None:
                yield ending
        else:
            # Cancelled from outside (a timeout, a shutdown): record it, then let it through.
            end_cancelled(state, "the task running this run was cancelled")
            await store_quietly(state)
            raise
    except GeneratorExit:
        # The consumer stopped iterating the stream before the end.
        if state.out.status is RunStatus.running:
            end_cancelled(state, "the stream was closed before the run ended")
        await store_quietly(state)
        raise
    except Exception as exc:
        if tracer is not None:  # [observe]
            tracer.failed(exc)
        ending = end_failed(state, exc)
        await store_quietly(state)
        if state.stream and ending is not None:
            yield ending
    finally:
        if state.open_stream is not None:
            await close_model_stream(state)
        if state.session_io is not None:
            await state.session_io.release()
        if tracer is not None:  # [observe]
            tracer.end(state)
        _forget(state)


def _end_stopped(state: RunState) -> ev.BaseRunEvent | None:
    """End a run stopped by `cancel_run`, or failed by its whole-run timeout."""
    handle = state.handle
    if handle.timed_out:
        return end_failed(state, RunTimeoutError(handle.reason or "the run timed out"))
    return end_cancelled(state, handle.reason)


def _forget(state: RunState) -> None:
    """What every run does last, however it ended: it is no longer in flight."""
    handle = state.handle
    if handle.timer is not None:
        handle.timer.cancel()
    out: RunOutput = state.out
    registry.unregister(out.run_id)
    recent.remember(out)
    if state.plan.debug_mode:
        _log_run(out)


def _log_run(out: RunOutput) -> None:
    logger.debug("run %s ended %s", out.run_id, out.status.value)
    for message in out.messages:
        logger.debug("  %s: %s", message.role, message.text() or message.tool_calls)
    logger.debug("  metrics: %s", out.metrics.to_dict())
