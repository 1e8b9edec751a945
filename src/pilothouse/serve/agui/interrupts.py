"""Human in the loop the AG-UI way: a paused run's waiting tool calls as ``Interrupt``s, and a
client's ``resume`` entries as the answers that continue the same run.

Each waiting tool call is one interrupt whose ``id`` is the tool call's id (so that a client
that reopens a stored session can answer it too). Its ``reason`` says what it waits for, and
``responseSchema`` the payload that answers it:

- ``confirmation``: ``{"approved": true|false, "note": "..."}`` (the tool runs, or the model
  is told the user rejected it);
- ``user_input``: ``{"<field>": value, ...}``, one value per field the tool asks for;
- ``external_execution``: ``{"result": ...}``, the output of the tool, run by the client.

A resume entry with status ``cancelled`` rejects a confirmation and answers an external
execution with a note that the user cancelled it; a request for user input cannot be
declined (it is refused with 422). An entry naming no waiting call is ignored, with a warning
in the log; a waiting call without an entry makes the request fail (422) before anything runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ag_ui.core import Interrupt, ResumeEntry

from pilothouse.serve.errors import ApiError

if TYPE_CHECKING:
    from pilothouse.run.output import RunOutput, ToolExecution

__all__ = ["answers_from_resume", "interrupts_of", "is_waiting"]

logger = logging.getLogger("pilothouse")

CONFIRMATION = "confirmation"
USER_INPUT = "user_input"
EXTERNAL_EXECUTION = "external_execution"

# JSON Schema types for the field types a tool's user input may declare.
_JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


def is_waiting(execution: ToolExecution) -> bool:
    """Whether this tool call waits for the client (confirmation, input or a result)."""
    if execution.metrics is not None:
        return False  # it ran already
    if execution.requires_confirmation and execution.confirmed is None:
        return True
    if execution.requires_user_input and not execution.answered:
        return True
    return execution.external_execution_required and execution.result is None


def _reason(execution: ToolExecution) -> str:
    if execution.requires_confirmation and execution.confirmed is None:
        return CONFIRMATION
    if execution.requires_user_input and not execution.answered:
        return USER_INPUT
    return EXTERNAL_EXECUTION


def _call_text(execution: ToolExecution) -> str:
    args = ", ".join(
        f"{name}={json.dumps(value, ensure_ascii=False, default=str)}"
        for name, value in execution.tool_args.items()
    )
    return f"{execution.tool_name}({args})"


def _schema(execution: ToolExecution, reason: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    if reason == CONFIRMATION:
        properties["approved"] = {"type": "boolean", "description": "Run the tool call?"}
        properties["note"] = {"type": "string", "description": "A note for the model."}
        required.append("approved")
    if execution.requires_user_input and not execution.answered:
        for field in execution.user_input_schema or ():
            kind = field.field_type if field.field_type in _JSON_TYPES else "string"
            spec: dict[str, Any] = {"type": kind}
            if field.description:
                spec["description"] = field.description
            if field.value is not None:
                spec["default"] = field.value
            properties[field.name] = spec
            if field.value is None and reason == USER_INPUT:
                required.append(field.name)
    if reason == EXTERNAL_EXECUTION:
        properties["result"] = {"description": "What the tool returned."}
        required.append("result")
    return {"type": "object", "properties": properties, "required": required}


def _message(execution: ToolExecution, reason: str) -> str:
    call = _call_text(execution)
    if reason == CONFIRMATION:
        return f"Allow the call {call}?"
    if reason == USER_INPUT:
        names = ", ".join(f.name for f in execution.user_input_schema or () if f.value is None)
        return f"The call {call} needs: {names or 'your input'}."
    return f"Run {call} and send back its result."


def interrupts_of(output: RunOutput) -> list[Interrupt]:
    """The interrupts of a paused run: one per waiting tool call."""
    interrupts = []
    for execution in output.tools:
        if execution.tool_call_id is None or not is_waiting(execution):
            continue
        reason = _reason(execution)
        interrupts.append(
            Interrupt(
                id=execution.tool_call_id,
                reason=reason,
                message=_message(execution, reason),
                tool_call_id=execution.tool_call_id,
                response_schema=_schema(execution, reason),
                metadata={
                    "pilothouse": {
                        "runId": output.run_id,
                        "toolName": execution.tool_name,
                        "toolArgs": execution.tool_args,
                    }
                },
            )
        )
    return interrupts


def answers_from_resume(paused: RunOutput, entries: Sequence[ResumeEntry]) -> list[ToolExecution]:
    """The paused run's waiting tool calls, answered by ``entries`` (copies: the paused run is
    left as it is). Raises ApiError(422) for an answer that does not fit its interrupt."""
    from pilothouse.run.output import ToolExecution

    waiting = {
        e.tool_call_id: e for e in paused.tools if e.tool_call_id is not None and is_waiting(e)
    }
    answers: list[ToolExecution] = []
    for index, entry in enumerate(entries):
        execution = waiting.pop(entry.interrupt_id, None)
        if execution is None:
            logger.warning(
                "agui: resume[%d] answers no waiting call of run %s (%r); ignored",
                index,
                paused.run_id,
                entry.interrupt_id,
            )
            continue
        answer = ToolExecution.from_dict(execution.to_dict())
        _answer(answer, entry, f"resume[{index}]")
        answers.append(answer)
    return answers


def _answer(execution: ToolExecution, entry: ResumeEntry, where: str) -> None:
    payload = entry.payload
    cancelled = entry.status == "cancelled"
    reason = _reason(execution)
    if reason == USER_INPUT and cancelled:
        raise ApiError(
            422,
            f"{where}: the call {execution.tool_name} asks for user input, which cannot be "
            "declined; send the values",
            field="resume",
        )
    if reason == CONFIRMATION:
        approved = payload.get("approved") if isinstance(payload, dict) else payload
        if cancelled:
            approved = False
        if not isinstance(approved, bool):
            raise ApiError(
                422, f'{where}: the payload must be {{"approved": true or false}}', field="resume"
            )
        execution.confirmed = approved
        note = payload.get("note") if isinstance(payload, dict) else None
        execution.confirmation_note = str(note) if note else None
    if execution.requires_user_input and not execution.answered and not cancelled:
        values = payload if isinstance(payload, dict) else {}
        for field in execution.user_input_schema or ():
            if field.name in values:
                field.value = values[field.name]
    if reason == EXTERNAL_EXECUTION:
        if cancelled:
            execution.result = "The user cancelled this call; it was not run."
            execution.tool_call_error = True
        elif isinstance(payload, dict) and "result" in payload:
            execution.result = payload["result"]
        elif isinstance(payload, str):
            execution.result = payload
        else:
            raise ApiError(422, f'{where}: the payload must be {{"result": ...}}', field="resume")
