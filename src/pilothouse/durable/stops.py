"""How callers learn where a durable run stands, in any process.

A run's workflow records each stop (the run ended, or paused to wait for answers) as a DBOS
event ``pilothouse.stop.<n>`` holding the `RunOutput`, and the segment it is in as
``pilothouse.segment`` (0 until the first answers arrive, then 1, ...). Answers reach a paused
run as a DBOS message on ``pilothouse.answers`` naming the segment they answer. A caller in
the process that executes the workflow is told at once through `channels`; elsewhere DBOS
events are the way (on SQLite they are polled, every
``notification_listener_polling_interval_sec`` of the DBOS config).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from dbos import DBOS, WorkflowHandleAsync

from pilothouse.durable.channels import Listener, Stop
from pilothouse.exceptions import PilothouseError, RunNotFoundError
from pilothouse.run.output import RunOutput, RunStatus

__all__ = [
    "ANSWERS_TOPIC",
    "SEGMENT_KEY",
    "DurableRunError",
    "Failed",
    "NoSuchStopError",
    "current_segment",
    "runs_here",
    "settle",
    "stop_key",
    "wait_for_stop",
]

SEGMENT_KEY = "pilothouse.segment"
ANSWERS_TOPIC = "pilothouse.answers"
# How long one wait on a DBOS event lasts before the workflow's status is checked again.
_WINDOW = 30.0
_ACTIVE = ("PENDING", "ENQUEUED", "DELAYED")
# How long `settle` waits for a workflow to record its end after its run's last stop.
_SETTLE_WAIT = 5.0

logger = logging.getLogger("pilothouse")


def stop_key(segment: int) -> str:
    """The DBOS event holding the run's output at the end of ``segment``."""
    return f"pilothouse.stop.{segment}"


class DurableRunError(PilothouseError):
    """A durable run's workflow failed in DBOS itself (not the run: a failing model or tool
    ends the run with status ``error``), e.g. because the code it replays changed."""


class NoSuchStopError(DurableRunError):
    """The run's workflow ended before the stop waited for."""


@dataclass(frozen=True, slots=True)
class Failed:
    """Told to listeners when the workflow itself raised."""

    error: BaseException


async def current_segment(run_id: str) -> int:
    """The segment the run is in (0 for a run that has not started yet)."""
    segment = await DBOS.get_event_async(run_id, SEGMENT_KEY, timeout_seconds=0)
    return int(segment) if segment is not None else 0


async def wait_for_stop(
    run_id: str,
    segment: int | None,
    *,
    listener: Listener | None,
    within: float | None = None,
    remote: bool = True,
) -> RunOutput:
    """Wait until the run stops at the end of ``segment`` (None: the current one) and return
    its output (with ``segment`` None: the workflow's result when it ended meanwhile).

    ``remote=False`` when the workflow runs in this process: then ``listener`` alone is
    waited on, without asking DBOS.

    Raises:
        TimeoutError: ``within`` seconds passed first (the run goes on).
        RunNotFoundError: DBOS knows no workflow with this id.
        DurableRunError: The workflow failed or was cancelled in DBOS.
        NoSuchStopError: The workflow ended before stop ``segment``.
    """
    deadline = None if within is None else time.monotonic() + within
    local = asyncio.ensure_future(_local_stop(listener, segment)) if listener else None
    if not remote and local is not None:
        try:
            return await asyncio.wait_for(local, within)
        except TimeoutError:
            raise TimeoutError(f"run {run_id!r} did not stop in {within}s; it goes on") from None
    event: asyncio.Future[Any] | None = None
    try:
        while True:
            wanted = segment if segment is not None else await current_segment(run_id)
            window = _WINDOW
            if deadline is not None:
                window = max(0.0, min(_WINDOW, deadline - time.monotonic()))
            event = asyncio.ensure_future(
                DBOS.get_event_async(run_id, stop_key(wanted), timeout_seconds=window)
            )
            waiting = {event} if local is None else {event, local}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if local is not None and local in done:
                return local.result()
            found = event.result()
            if found is not None:
                return found  # type: ignore[no-any-return]
            ended = await _ended(run_id)
            if ended is not None:
                if segment is None:
                    return ended
                # Stops are recorded before the workflow ends: one missing now never comes.
                found = await DBOS.get_event_async(run_id, stop_key(wanted), timeout_seconds=0)
                if found is None:
                    raise NoSuchStopError(f"run {run_id!r} ended before stop {segment}")
                return found  # type: ignore[no-any-return]
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id!r} did not stop within {within}s; it goes on")
    finally:
        for task in (local, event):
            if task is not None and not task.done():
                task.cancel()


def runs_here(handle: WorkflowHandleAsync[Any]) -> bool:
    """Whether the workflow of this handle (from ``DBOS.start_workflow_async``) executes in
    this process: then its stops come through `channels` and DBOS need not be asked."""
    # DBOS hands out a task-backed handle when it starts the workflow here, a polling one
    # when the workflow exists already. Not public: when it changes, DBOS is asked.
    from dbos import _core

    task_handle = getattr(_core, "WorkflowHandleAsyncTask", None)
    return task_handle is not None and isinstance(handle, task_handle)


async def settle(
    run_id: str, output: RunOutput, handle: WorkflowHandleAsync[Any] | None = None
) -> None:
    """After the run's last stop, wait (briefly) for its workflow to record its end, so that a
    caller that exits at once does not cut the workflow off before it is marked done (DBOS
    would then execute it again on the next launch)."""
    if output.status is RunStatus.paused:
        return
    try:
        if handle is None:
            handle = await DBOS.retrieve_workflow_async(run_id)
        await asyncio.wait_for(handle.get_result(polling_interval_sec=0.02), _SETTLE_WAIT)
    except Exception:
        # The run's outcome is known and stored; how its workflow ends is DBOS's business.
        logger.debug("run %s: its workflow did not end in time", run_id, exc_info=True)


async def _local_stop(listener: Listener, segment: int | None) -> RunOutput:
    while True:
        item = await listener.queue.get()
        if isinstance(item, Failed):
            raise item.error
        if isinstance(item, Stop) and (segment is None or item.segment >= segment):
            return item.output


async def _ended(run_id: str) -> RunOutput | None:
    """The workflow's result if it has ended; None while it is active."""
    status = await DBOS.get_workflow_status_async(run_id)
    if status is None:
        raise RunNotFoundError(f"no durable run {run_id!r} is known to DBOS")
    if status.status in _ACTIVE:
        return None
    if status.status == "SUCCESS":
        handle: WorkflowHandleAsync[RunOutput] = await DBOS.retrieve_workflow_async(run_id)
        return await handle.get_result()
    raise DurableRunError(
        f"the workflow of run {run_id!r} ended {status.status}: {status.error or 'no error given'}"
    )
