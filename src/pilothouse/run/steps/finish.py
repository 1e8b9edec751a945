"""Step *finish*: how a run ends, and the write that records it.

Every run ends in exactly one of these: completed (the answer, then memories), paused (tool
calls wait for a person), failed or cancelled. Each sets the status, the content and the
duration, builds the terminal event when it is streamed or stored, and stores the run. The
stored status is always the returned status: when the final write fails, it is tried again
without the session state, so that at least the run's outcome lands.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from pilothouse.exceptions import ModelProviderError
from pilothouse.run import events as ev
from pilothouse.run.output import RunStatus
from pilothouse.run.pause import pause_message
from pilothouse.run.state import CancelledByUser

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pilothouse.models.message import Message
    from pilothouse.run.output import RunOutput
    from pilothouse.run.session import SessionIO
    from pilothouse.run.state import RunState

__all__ = [
    "answer_complete",
    "end_cancelled",
    "end_failed",
    "finish_completed",
    "finish_paused",
    "save_checkpoint",
    "store_quietly",
    "update_memories",
    "wants_memories",
]

logger = logging.getLogger("pilothouse")


async def finish_paused(state: RunState) -> None:
    """End the run paused on the tool calls that wait for a person, and store it."""
    # From here on the run will end as it is: a cancel that came first still wins.
    if not state.handle.begin_finishing():
        raise CancelledByUser
    out = state.out
    out.session_state = state.ctx.session_state
    out.status = RunStatus.paused
    out.content = pause_message(state.paused_on)
    out.metrics.duration = state.elapsed()
    if state.stream or state.store_events:
        paused = ev.RunPausedEvent(**state.ids, tools=list(state.paused_on), content=out.content)
        if state.store_events:
            state.keep(paused)
        if state.stream:
            state.queue(paused)
    if state.session_io is not None:
        await state.session_io.finish(out)


async def save_checkpoint(state: RunState) -> None:
    """Store the run's progress after a step, so that it can resume from here if it stops.

    A checkpoint that cannot be written does not stop the run: the run goes on, and its
    end is stored as usual.
    """
    session_io = state.session_io
    if session_io is None:
        return
    out = state.out
    out.metrics.duration = state.elapsed()
    out.session_state = state.ctx.session_state
    try:
        await session_io.checkpoint(out)
    except Exception:
        logger.warning("run %s: could not store a checkpoint", out.run_id, exc_info=True)


def wants_memories(state: RunState) -> bool:
    """Whether the run ends by updating what is remembered about its user."""
    return (
        state.plan.store is not None
        and state.agent.enable_user_memories
        and state.ctx.user_id is not None
    )


def answer_complete(state: RunState) -> None:
    """The answer is in: nothing can cancel the run any more."""
    if not state.handle.begin_finishing():
        raise CancelledByUser  # a cancel that came first still wins
    state.out.session_state = state.ctx.session_state
    if state.lifecycle:
        state.emit(ev.RunContentCompletedEvent(**state.ids))


async def update_memories(state: RunState) -> None:
    """Let the memory manager update the user's memories from this run's turn."""
    from pilothouse.memory import MemoryManager

    if state.lifecycle:
        state.emit(ev.MemoryUpdateStartedEvent(**state.ids))
    store = state.plan.store
    user_id = state.ctx.user_id
    assert store is not None and user_id is not None
    manager = state.agent.memory_manager or MemoryManager()
    turn: Sequence[Message] = [
        m for m in state.messages if m.role in ("user", "assistant") and not m.from_history
    ]
    update = await manager.update(store=store, user_id=user_id, messages=turn, model=state.model)
    state.out.metrics.add_call(update.metrics)
    if state.lifecycle:
        state.emit(ev.MemoryUpdateCompletedEvent(**state.ids))


async def finish_completed(state: RunState) -> None:
    """End the run completed, and store it."""
    out = state.out
    out.status = RunStatus.completed
    out.metrics.duration = time.perf_counter() - state.started
    if state.lifecycle:
        completed = ev.RunCompletedEvent(
            **state.ids,
            content=out.content,
            content_type=out.content_type,
            reasoning_content=out.reasoning_content,
            metrics=out.metrics,
            session_state=out.session_state,
        )
        state.emit(completed)
    if state.session_io is not None:
        await state.session_io.finish(out)


def end_failed(state: RunState, exc: BaseException) -> ev.BaseRunEvent | None:
    """End the run with status error; return its RunError event when streamed or stored."""
    out = state.out
    out.status = RunStatus.error
    out.content = error_message(exc)
    out.session_state = state.ctx.session_state
    out.metrics.duration = state.elapsed()
    logger.error("run %s failed: %s", out.run_id, out.content, exc_info=not _expected(exc))
    if not (state.stream or state.store_events):
        return None
    event = ev.RunErrorEvent(**state.ids, content=out.content, error_type=type(exc).__name__)
    if state.store_events:
        state.keep(event)
    return event


def end_cancelled(state: RunState, reason: str | None) -> ev.BaseRunEvent | None:
    """End the run with status cancelled; return its RunCancelled event when streamed or
    stored."""
    out = state.out
    out.status = RunStatus.cancelled
    out.content = reason or "the run was cancelled"
    out.session_state = state.ctx.session_state
    out.metrics.duration = state.elapsed()
    if not (state.stream or state.store_events):
        return None
    event = ev.RunCancelledEvent(**state.ids, reason=out.content)
    if state.store_events:
        state.keep(event)
    return event


async def store_quietly(state: RunState) -> None:
    """Record how a run ended; a store that fails here must not hide the run's own outcome.

    If the write fails (a session state the store cannot take, say), it is tried once more
    without the session state, so that the stored status is the returned one.
    """
    session_io = state.session_io
    if session_io is None or session_io.finished:
        return
    out = state.out
    try:
        await session_io.finish(out)
    except Exception:
        logger.warning("run %s: could not store its final state", out.run_id, exc_info=True)
        await _store_status_only(session_io, out)


async def _store_status_only(session_io: SessionIO, out: RunOutput) -> None:
    """Store how the run ended, without the session state that could not be written."""
    if session_io.finished:
        return
    out.session_state = None
    try:
        await session_io.finish(out)
    except Exception:
        logger.warning("run %s: could not store its status either", out.run_id, exc_info=True)


class RunTimeoutError(Exception):
    """The run's whole-run timeout passed before it ended."""


def error_message(exc: BaseException) -> str:
    """The text a failed run shows as its content."""
    text = str(exc) or type(exc).__name__
    from pilothouse.db.errors import StoreError

    if isinstance(exc, StoreError):
        return f"session store failed: {text}"
    return text


def _expected(exc: BaseException) -> bool:
    return isinstance(exc, ModelProviderError | RunTimeoutError) or type(exc).__name__ in (
        "StoreError",
        "StepLimitError",
        "OutputValidationError",
        "MCPToolsError",
    )
