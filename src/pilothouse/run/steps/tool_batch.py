"""Step *tool batch*: the tool calls of one model response.

`plan_batch` turns the response's calls into `ToolExecution`s and decides each one's fate: run
it, answer it without running (over the tool call limit, or a repeat of a call this run already
made), or wait for a person (human in the loop). `plan_continued_batch` does the same for the
answered calls of a paused run being continued. `run_batch` runs the calls that are ready,
concurrently, and `end_batch` hands the results to the model, or pauses or stops the run.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from pilothouse.exceptions import ToolArgumentsError
from pilothouse.models.message import Message, ToolCall
from pilothouse.run import events as ev
from pilothouse.run.metrics import Metrics
from pilothouse.run.output import ToolExecution
from pilothouse.run.pause import is_waiting, mark_for_human, resolve, waiting
from pilothouse.run.session import enter_tool_call, leave_tool_call
from pilothouse.run.state import CancelledByUser, StepLimitError
from pilothouse.run.steps.model_request import really_cancelled

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pilothouse.run.state import RunState
    from pilothouse.tools import Function

__all__ = ["end_batch", "plan_batch", "plan_continued_batch", "run_batch"]

logger = logging.getLogger("pilothouse")
_perf = time.perf_counter

# The injected parameters through which a tool can change the session state.
_STATE_PARAMETERS = frozenset({"session_state", "run_context"})


def plan_batch(state: RunState) -> None:
    """Make the executions of the last response's tool calls and decide which run now."""
    response = state.response
    assert response is not None
    agent = state.agent
    request = state.request
    if request.tool_choice not in (None, "auto", "none"):
        # A forced tool choice applies to the first call only; keeping it would make the
        # model call tools forever.
        request.tool_choice = "auto"
    batch = [_new_execution(call, state.by_name) for call in response.tool_calls]
    allowed = _allowed_calls(state, len(batch))
    to_run: list[ToolExecution] = []
    settled: list[ToolExecution] = []
    repeats = 0
    for index, execution in enumerate(batch):
        if index >= allowed:
            _settle(
                execution,
                f"Not run: the tool call limit of {agent.tool_call_limit} for this run was "
                "reached. Answer with what you have.",
                error=True,
            )
            continue
        earlier = _earlier_call(state, execution, to_run)
        if earlier is not None:
            _settle_repeat(execution, earlier)
            repeats += 1
            settled.append(execution)
            continue
        mark_for_human(execution, state.by_name.get(execution.tool_name))
        if not is_waiting(execution):
            to_run.append(execution)
    state.calls_made += allowed
    if agent.tool_call_limit is not None and state.calls_made >= agent.tool_call_limit:
        request.tool_choice = "none"
    if repeats:
        # The model has what it asked for: the next request asks it for the answer.
        logger.debug(
            "run %s: repeated tool calls answered from their first results", state.out.run_id
        )
        request.tool_choice = "none"
    state.out.tools.extend(batch)
    _start(state, batch, to_run, settled)


def plan_continued_batch(state: RunState, pending: Sequence[ToolExecution]) -> None:
    """Take up the paused batch of a continued run: its waiting calls are now answered."""
    batch = _paused_batch(state)
    to_run: list[ToolExecution] = []
    settled: list[ToolExecution] = []
    for execution in pending:
        resolution = resolve(execution)
        execution.tool_args = resolution.arguments
        if resolution.run:
            to_run.append(execution)
        else:
            _settle(execution, resolution.result, error=False)
            settled.append(execution)
    _start(state, batch, to_run, settled)


def _start(
    state: RunState,
    batch: list[ToolExecution],
    to_run: list[ToolExecution],
    settled: list[ToolExecution],
) -> None:
    state.batch = batch
    state.to_run = to_run
    state.settled = settled
    if state.lifecycle:
        for execution in to_run:
            state.emit(ev.ToolCallStartedEvent(**state.ids, tool=execution))


async def run_batch(state: RunState) -> None:
    """Run the calls that are ready (several at once), recording each result or error."""
    to_run = state.to_run
    if to_run:
        state.handle.waiting_task = state.current_task()
        try:
            if len(to_run) == 1:
                await _execute(state, to_run[0], inline_ok=True)
            else:
                # Several calls: threads for sync tools, so that they overlap.
                await asyncio.gather(*(_execute(state, e, inline_ok=False) for e in to_run))
        finally:
            state.handle.waiting_task = None
        if state.handle.cancel_requested:
            raise CancelledByUser
    if state.lifecycle:
        for execution in (*to_run, *state.settled):
            state.emit(
                ev.ToolCallCompletedEvent(**state.ids, tool=execution, content=execution.result)
            )


def end_batch(state: RunState) -> None:
    """Pause on the calls that wait for a person; otherwise give every result to the model,
    and stop the run if a tool asked for it (``stop_after_tool_call``)."""
    batch = state.batch
    state.paused_on = waiting(batch)
    if state.paused_on:
        return
    for execution in batch:
        state.messages.append(
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
        e.stop_after_tool_call and not e.tool_call_error and e.confirmed is not False for e in batch
    ):
        state.out.content = "\n".join(str(e.result) for e in batch)
        state.stopped = True


def _allowed_calls(state: RunState, wanted: int) -> int:
    """How many of ``wanted`` calls the tool call limit lets run."""
    limit = state.agent.tool_call_limit
    if limit is None:
        return wanted
    allowed = max(0, min(wanted, limit - state.calls_made))
    if allowed == 0:
        if state.over_limit:
            # Told once that the limit was reached, it asks again: a model that ignores
            # tool_choice="none" would otherwise loop forever.
            raise StepLimitError(
                f"the model kept calling tools after the tool call limit of {limit} was reached"
            )
        state.over_limit = True
    return allowed


def _earlier_call(
    state: RunState, execution: ToolExecution, to_run: Sequence[ToolExecution]
) -> ToolExecution | None:
    """The call of this run with the same tool and arguments, if there is one: answered in
    an earlier batch, or about to run in this one."""
    name = execution.tool_name
    args = execution.tool_args
    for other in to_run:
        if other.tool_name == name and other.tool_args == args:
            return other
    for other in state.out.tools:
        if (
            other.tool_name == name
            and other.metrics is not None
            and other.result is not None
            and other.tool_args == args
        ):
            return other
    return None


def _settle_repeat(execution: ToolExecution, earlier: ToolExecution) -> None:
    """Answer a repeated call with the earlier call's result instead of running it again."""
    if earlier.metrics is None:
        # Earlier in this same batch: it has not run yet; `run_batch` copies its result.
        execution.result = _SameAs(earlier)
        execution.metrics = Metrics()
        return
    _settle(
        execution,
        # Kept short: small models repeat a long note back as their answer.
        f"{earlier.result}\n(already called; same result)",
        error=earlier.tool_call_error,
    )


class _SameAs:
    """The result of a call repeated within one batch: that of the first of the pair."""

    __slots__ = ("first",)

    def __init__(self, first: ToolExecution) -> None:
        self.first = first


def _settle(execution: ToolExecution, result: str | None, *, error: bool) -> None:
    execution.result = result
    execution.tool_call_error = error
    execution.metrics = Metrics()


def _paused_batch(state: RunState) -> list[ToolExecution]:
    """The executions of the tool calls in the last assistant message, in call order."""
    for message in reversed(state.messages):
        if message.role == "assistant" and message.tool_calls:
            by_id = {e.tool_call_id: e for e in state.out.tools}
            return [by_id[c.id] for c in message.tool_calls if c.id in by_id]
    return []


def _new_execution(call: ToolCall, by_name: Mapping[str, Function]) -> ToolExecution:
    function = by_name.get(call.name)
    try:
        args = call.parsed_arguments()
    except (ValueError, RecursionError):
        args = {"_raw": call.arguments}
    return ToolExecution(
        tool_name=call.name,
        tool_args=args,
        tool_call_id=call.id,
        stop_after_tool_call=function.stop_after_tool_call if function else False,
    )


async def _execute(state: RunState, execution: ToolExecution, *, inline_ok: bool) -> None:
    """Run one tool call, recording its result or its error on the execution."""
    started = _perf()
    name = execution.tool_name
    try:
        function = state.by_name.get(name)
        if function is None:
            known = ", ".join(sorted(state.by_name)) or "none"
            raise ToolArgumentsError(f"Unknown tool {name!r}. Available tools: {known}.")
        arguments: Any = execution.tool_args
        if "_raw" in arguments and len(arguments) == 1:
            arguments = arguments["_raw"]
        call = _call(state, function, arguments, inline_ok=inline_ok)
        if state.tracer is not None:  # [observe] runs the call inside its execute_tool span
            call = state.tracer.tool_call(execution, function, call)
        result = await call
        execution.result = function.format_result(result)
    except ToolArgumentsError as exc:
        execution.result = f"Invalid arguments for {name}: {exc}"
        execution.tool_call_error = True
    except UnstorableStateError as exc:
        execution.result = f"Error from {name}: {exc}"
        execution.tool_call_error = True
    except (Exception, asyncio.CancelledError, GeneratorExit) as exc:
        if isinstance(exc, asyncio.CancelledError) and really_cancelled(state):
            raise
        logger.info("tool %s raised %s: %s", name, type(exc).__name__, exc)
        execution.result = f"Error from {name}: {type(exc).__name__}: {exc}"
        execution.tool_call_error = True
    execution.metrics = Metrics(duration=_perf() - started)
    for other in state.batch:
        if isinstance(other.result, _SameAs) and other.result.first is execution:
            _settle_repeat(other, execution)


async def _call(state: RunState, function: Function, arguments: Any, *, inline_ok: bool) -> Any:
    """Call the tool with its injected values; keep the session state storable."""
    plan = state.plan
    ctx = state.ctx
    injected = {
        "agent": state.agent,
        "run_context": ctx,
        "session_state": ctx.session_state,
        "dependencies": ctx.dependencies,
        **plan.media,
    }
    inline = inline_ok and plan.inline_sync_tools
    token = None if state.session_io is None else enter_tool_call(state.session_io)
    try:
        if not (function.injected & _STATE_PARAMETERS):
            return await function.acall(arguments, injected, inline_sync=inline)
        before = copy.deepcopy(ctx.session_state)
        result = await function.acall(arguments, injected, inline_sync=inline)
    finally:
        leave_tool_call(token)
    _check_state(ctx.session_state, before, function.name)
    return result


class UnstorableStateError(ValueError):
    """A tool put a value in the session state that the session store cannot keep."""


def _check_state(current: dict[str, Any], before: dict[str, Any], tool: str) -> None:
    """Undo session-state values JSON cannot hold, and fail the tool call saying which."""
    try:
        json.dumps(current, allow_nan=False)
        return
    except (TypeError, ValueError, RecursionError):
        pass
    bad: list[str] = []
    for key in list(current):
        try:
            json.dumps(current[key], allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            bad.append(key)
            if key in before:
                current[key] = before[key]
            else:
                del current[key]
    raise UnstorableStateError(
        f"{tool} put values in the session state that cannot be stored (it keeps JSON: str, "
        f"int, float without NaN or infinity, bool, None, lists and dicts of those): "
        f"{', '.join(repr(k) for k in bad)}; those changes were undone. Store them as text."
    )
