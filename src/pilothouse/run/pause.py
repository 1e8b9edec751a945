"""Human in the loop: which tool calls pause a run, and how the caller's answers resume it.

A tool marked ``requires_confirmation``, ``requires_user_input`` or ``external_execution`` is
not run when the model calls it: the run pauses with that call listed on the `RunOutput`. The
caller answers on the `ToolExecution` (``confirmed``, the ``user_input_schema`` values, or the
external ``result``) and continues the run. Here are the rules for both halves; the run loop
does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.exceptions import ContinueRunError
from pilothouse.run.output import RunOutput, RunStatus, ToolExecution, UserInputField
from pilothouse.tools import Function

__all__ = [
    "Resolution",
    "apply_answers",
    "check_answers",
    "mark_for_human",
    "pause_message",
    "resolve",
    "waiting",
]


def mark_for_human(execution: ToolExecution, function: Function | None) -> None:
    """Copy the tool's human-in-the-loop flags onto a new execution of it."""
    if function is None:
        return
    if function.requires_confirmation:
        execution.requires_confirmation = True
    if function.requires_user_input:
        execution.requires_user_input = True
        execution.user_input_schema = _input_fields(function, execution.tool_args)
    if function.external_execution:
        execution.external_execution_required = True


def _input_fields(function: Function, args: Mapping[str, Any]) -> list[UserInputField]:
    properties: dict[str, Any] = function.parameters.get("properties", {})
    names = function.user_input_fields or list(properties)
    fields = []
    for name in names:
        prop = properties.get(name, {})
        fields.append(
            UserInputField(
                name=name,
                field_type=str(prop.get("type", "string")),
                description=prop.get("description"),
                value=args.get(name),
            )
        )
    return fields


def is_waiting(execution: ToolExecution) -> bool:
    """Whether this tool call still waits for the caller."""
    if execution.requires_confirmation and execution.confirmed is None:
        return True
    if execution.requires_user_input and not execution.answered:
        return True
    return execution.external_execution_required and execution.result is None


def waiting(executions: Sequence[ToolExecution]) -> list[ToolExecution]:
    """The tool calls of ``executions`` that wait for the caller."""
    return [e for e in executions if is_waiting(e)]


def pause_message(executions: Sequence[ToolExecution]) -> str:
    """A short, readable account of what a paused run waits for."""
    parts = []
    for e in executions:
        if e.requires_confirmation and e.confirmed is None:
            parts.append(f"confirmation of {e.tool_name}")
        elif e.requires_user_input and not e.answered:
            names = ", ".join(f.name for f in e.user_input_schema or ())
            parts.append(f"user input for {e.tool_name} ({names})")
        else:
            parts.append(f"the result of {e.tool_name}, run outside the agent")
    return "The run is paused, waiting for " + "; ".join(parts) + "."


@dataclass(slots=True)
class Resolution:
    """What to do with an answered tool call: run it with ``arguments``, or use ``result``."""

    run: bool
    arguments: dict[str, Any]
    result: str | None = None


def resolve(execution: ToolExecution) -> Resolution:
    """Decide how an answered, waiting tool call proceeds."""
    if execution.requires_confirmation and execution.confirmed is False:
        note = execution.confirmation_note
        note = f" Note from the user: {note}" if note else ""
        return Resolution(
            run=False,
            arguments=execution.tool_args,
            result=f"The user rejected this call to {execution.tool_name}; it was not run.{note}",
        )
    if execution.external_execution_required:
        text = _format(execution.result)
        return Resolution(run=False, arguments=execution.tool_args, result=text)
    arguments = dict(execution.tool_args)
    for field in execution.user_input_schema or ():
        if field.value is not None:
            arguments[field.name] = field.value
    return Resolution(run=True, arguments=arguments)


def _format(result: Any) -> str:
    from pilothouse.tools.result import format_result

    return format_result(result)


def check_answers(
    out: RunOutput, answers: Sequence[ToolExecution] | None
) -> list[tuple[ToolExecution, ToolExecution]]:
    """Check that ``out`` is paused and that ``answers`` settle every waiting tool call;
    return (waiting execution, its answer) pairs. Changes nothing.

    ``answers`` are matched by ``tool_call_id``; only the waiting calls take answers, so a
    tool that already ran keeps its result. With ``answers`` None, ``out``'s own executions
    are taken as answered in place.

    Raises:
        ContinueRunError: The run is not paused, or a waiting tool call has no answer.
    """
    if out.status is not RunStatus.paused:
        raise ContinueRunError(
            f"run {out.run_id} is not paused (its status is {out.status.value}): only a paused "
            "run can be continued."
        )
    by_id = {a.tool_call_id: a for a in answers or ()}
    pairs: list[tuple[ToolExecution, ToolExecution]] = []
    problems: list[str] = []
    for execution in out.tools:
        if execution.tool_call_id is None or not _was_waiting(execution):
            continue
        answer = by_id.get(execution.tool_call_id, execution)
        problem = _unanswered(answer)
        if problem:
            problems.append(f"{execution.tool_name} (call {execution.tool_call_id}): {problem}")
        else:
            pairs.append((execution, answer))
    if problems:
        raise ContinueRunError(
            f"cannot continue run {out.run_id}, tool calls are left unanswered: "
            + "; ".join(problems)
        )
    return pairs


def apply_answers(out: RunOutput, answers: Sequence[ToolExecution] | None) -> list[ToolExecution]:
    """`check_answers`, then copy the answers onto ``out``'s waiting executions and return
    them. Nothing changes when this raises."""
    updates = check_answers(out, answers)
    for execution, answer in updates:
        if execution.requires_confirmation:
            execution.confirmed = answer.confirmed
            execution.confirmation_note = answer.confirmation_note
        if execution.requires_user_input:
            if answer is not execution:
                execution.user_input_schema = [
                    UserInputField(f.name, f.field_type, f.description, f.value)
                    for f in answer.user_input_schema or ()
                ]
            execution.answered = True
        if execution.external_execution_required:
            execution.result = answer.result
    return [execution for execution, _ in updates]


def _was_waiting(execution: ToolExecution) -> bool:
    # A waiting call has not been run: it has no result yet, except an external result
    # the caller has just set in place.
    if execution.metrics is not None:
        return False
    return (
        execution.requires_confirmation
        or execution.requires_user_input
        or execution.external_execution_required
    )


def _unanswered(answer: ToolExecution) -> str | None:
    if answer.requires_confirmation:
        if answer.confirmed is None:
            return "set confirmed=True or confirmed=False"
        if answer.confirmed is False:
            return None  # rejected: nothing else is needed
    if answer.requires_user_input:
        missing = [f.name for f in answer.user_input_schema or () if f.value is None]
        if missing:
            return "give a value for " + ", ".join(missing)
    if answer.external_execution_required and answer.result is None:
        return "set result to the tool's output"
    return None
