"""`EventTranslator`: one run's Pilothouse events, as the AG-UI events of one AG-UI run.

The translation is a small state machine over the run's events (as their JSON dicts, the form
the service logs them in):

- RunContent with ``reasoning_content`` opens a reasoning span and message
  (REASONING_START, REASONING_MESSAGE_START) and streams into it; with ``content``, a text
  message (TEXT_MESSAGE_START, then TEXT_MESSAGE_CONTENT per piece). Whatever comes next
  closes what is open (..._END), so every message is closed before the run finishes.
- ToolCallStarted becomes TOOL_CALL_START, TOOL_CALL_ARGS (the arguments as JSON) and
  TOOL_CALL_END, attached to the assistant text that came before it; ToolCallCompleted
  becomes TOOL_CALL_RESULT, with the call's duration and error flag in ``metadata``.
- The session state the run starts from is sent after RUN_STARTED (STATE_SNAPSHOT); each state
  report (`pilothouse.serve.agui.state`) then becomes a STATE_DELTA (JSON Patch) from the
  state sent last (or the STATE_SNAPSHOT, if none was sent before).
- The end comes from the run's final `RunOutput` (`finish`): RUN_FINISHED with a success,
  interrupt or cancelled outcome and the run's token usage, or RUN_ERROR. A paused run's
  waiting tool calls are sent (START/ARGS/END, no result) before the interrupt that names them.

Every event carries a millisecond ``timestamp``; RUN_STARTED and RUN_FINISHED carry the
Pilothouse run (``metadata.pilothouse``: runId, sessionId, status, metrics).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from ag_ui.core import (
    PROTOCOL_VERSION,
    BaseEvent,
    CustomEvent,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from pilothouse.serve.agui.interrupts import interrupts_of, is_waiting
from pilothouse.serve.agui.patch import json_patch
from pilothouse.serve.agui.state import STATE_KEY

if TYPE_CHECKING:
    from pilothouse.run.metrics import Metrics
    from pilothouse.run.output import RunOutput

__all__ = ["EventTranslator"]

_UNSET: Any = object()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


class EventTranslator:
    """Translates the events of Pilothouse run ``run_id`` into AG-UI run ``agui_run_id`` of
    thread ``thread_id``.

    ``answered_calls``: tool calls an earlier AG-UI run has sent already (the waiting calls
    of the run this one resumes): their results come without a second TOOL_CALL_START.
    ``metrics_before``: what the run had used before this leg (a resumed run reports only
    its own usage).
    """

    def __init__(
        self,
        thread_id: str,
        agui_run_id: str,
        run_id: str,
        *,
        answered_calls: Iterable[str] = (),
        metrics_before: Metrics | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.agui_run_id = agui_run_id
        self.run_id = run_id
        self._sent_calls = set(answered_calls)
        self._before = metrics_before
        self._text_id: str | None = None
        self._last_text_id: str | None = None
        self._reasoning_id: str | None = None
        self._answered = False  # text was streamed since the last tool call
        self._state: Any = _UNSET
        self._error_type: str | None = None

    # --- the run's events ------------------------------------------------------------------

    def started(self, session_id: str | None, state: Any = None) -> list[BaseEvent]:
        """RUN_STARTED, naming the Pilothouse run behind this AG-UI run, and the session
        state the run starts from (STATE_SNAPSHOT), when it is given."""
        events: list[BaseEvent] = [
            RunStartedEvent(
                thread_id=self.thread_id,
                run_id=self.agui_run_id,
                protocol_version=PROTOCOL_VERSION,
                metadata={"pilothouse": {"runId": self.run_id, "sessionId": session_id}},
            )
        ]
        if state is not None:
            events += self._state_events(state)
        return self._stamp(events)

    def translate_all(self, items: Iterable[dict[str, Any]]) -> list[BaseEvent]:
        """The AG-UI events for Pilothouse events that arrived together: consecutive pieces
        of an answer (or of reasoning) become one piece, so that a client that fell behind
        catches up in a few events rather than one per token."""
        events: list[BaseEvent] = []
        text: list[str] = []
        reasoning: list[str] = []

        def flush() -> None:
            if reasoning:
                events.extend(self._stamp(self._reasoning("".join(reasoning))))
                reasoning.clear()
            if text:
                events.extend(self._stamp(self._content("".join(text))))
                text.clear()

        for data in items:
            if data.get("event") == "RunContent":
                piece, thought = _text(data.get("content")), data.get("reasoning_content")
                if thought:
                    if text:
                        flush()
                    reasoning.append(thought)
                if piece:
                    if reasoning:
                        flush()
                    text.append(piece)
                continue
            flush()
            events.extend(self.translate(data))
        flush()
        return events

    def translate(self, data: dict[str, Any]) -> list[BaseEvent]:
        """The AG-UI events for one Pilothouse event (its JSON dict)."""
        name = data.get("event")
        events: list[BaseEvent] = []
        if name == "RunContent":
            reasoning, content = data.get("reasoning_content"), _text(data.get("content"))
            if reasoning:
                events += self._reasoning(reasoning)
            if content:
                events += self._content(content)
        elif name == "ToolCallStarted":
            events += self._close_all()
            events += self._call(data.get("tool") or {})
        elif name == "ToolCallCompleted":
            events += self._close_all()
            events += self._result(data.get("tool") or {})
        elif name == "CustomEvent":
            events += self._custom(data.get("data") or {})
        elif name == "RunError":
            self._error_type = data.get("error_type")
        return self._stamp(events)

    def finish(self, out: RunOutput, error: BaseException | None = None) -> list[BaseEvent]:
        """The events that end the AG-UI run, from the run's final output (or the error that
        kept it from running)."""
        from pilothouse.run.output import RunStatus

        events = self._close_all()
        if out.session_state is not None:
            events += self._state_events(out.session_state)
        usage = self._usage(out)
        status = out.status
        if error is not None or status in (RunStatus.error, RunStatus.running, RunStatus.pending):
            message = str(error) if error is not None else (_text(out.content) or "the run failed")
            code = type(error).__name__ if error is not None else self._error_type
            events.append(RunErrorEvent(message=message, code=code, usage=usage or None))
            return self._stamp(events)
        outcome: Any
        if status is RunStatus.paused:
            for execution in out.tools:
                if is_waiting(execution) and execution.tool_call_id not in self._sent_calls:
                    events += self._call(execution.to_dict())
            interrupts = interrupts_of(out)
            if not interrupts:
                events.append(RunErrorEvent(message="the run paused without waiting calls"))
                return self._stamp(events)
            outcome = RunFinishedInterruptOutcome(interrupts=interrupts)
        elif status is RunStatus.cancelled:
            outcome = RunFinishedCancelledOutcome()
        else:
            if not self._answered and out.content is not None:
                events += self._content(_text(out.content))
                events += self._close_all()
            outcome = RunFinishedSuccessOutcome()
        result = out.content if status is RunStatus.completed else None
        if result is not None and not isinstance(result, str | int | float | bool | list | dict):
            result = json.loads(_text(result))
        events.append(
            RunFinishedEvent(
                thread_id=self.thread_id,
                run_id=self.agui_run_id,
                result=result,
                outcome=outcome,
                usage=usage or None,
                metadata={
                    "pilothouse": {
                        "runId": out.run_id,
                        "sessionId": out.session_id,
                        "status": status.value,
                        "metrics": out.metrics.to_dict(),
                    }
                },
            )
        )
        return self._stamp(events)

    # --- pieces ----------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        # Unique in the thread: a resumed run is translated again, by another translator.
        return f"{kind}-{uuid.uuid4().hex}"

    def _reasoning(self, delta: str) -> list[BaseEvent]:
        events = self._close_text()
        if self._reasoning_id is None:
            self._reasoning_id = self._new_id("reasoning")
            events.append(ReasoningStartEvent(message_id=self._reasoning_id))
            events.append(ReasoningMessageStartEvent(message_id=self._reasoning_id))
        events.append(ReasoningMessageContentEvent(message_id=self._reasoning_id, delta=delta))
        return events

    def _content(self, delta: str) -> list[BaseEvent]:
        events = self._close_reasoning()
        if self._text_id is None:
            self._text_id = self._last_text_id = self._new_id("message")
            events.append(TextMessageStartEvent(message_id=self._text_id, role="assistant"))
        events.append(TextMessageContentEvent(message_id=self._text_id, delta=delta))
        self._answered = True
        return events

    def _close_text(self) -> list[BaseEvent]:
        if self._text_id is None:
            return []
        message_id, self._text_id = self._text_id, None
        return [TextMessageEndEvent(message_id=message_id)]

    def _close_reasoning(self) -> list[BaseEvent]:
        if self._reasoning_id is None:
            return []
        message_id, self._reasoning_id = self._reasoning_id, None
        return [
            ReasoningMessageEndEvent(message_id=message_id),
            ReasoningEndEvent(message_id=message_id),
        ]

    def _close_all(self) -> list[BaseEvent]:
        return self._close_reasoning() + self._close_text()

    def _call(self, tool: dict[str, Any]) -> list[BaseEvent]:
        call_id = tool.get("tool_call_id")
        self._answered = False
        if not call_id or call_id in self._sent_calls:
            return []
        self._sent_calls.add(call_id)
        arguments = json.dumps(tool.get("tool_args") or {}, ensure_ascii=False, default=str)
        return [
            ToolCallStartEvent(
                tool_call_id=call_id,
                tool_call_name=str(tool.get("tool_name")),
                parent_message_id=self._last_text_id,
            ),
            ToolCallArgsEvent(tool_call_id=call_id, delta=arguments),
            ToolCallEndEvent(tool_call_id=call_id),
        ]

    def _result(self, tool: dict[str, Any]) -> list[BaseEvent]:
        call_id = tool.get("tool_call_id")
        if not call_id:
            return []
        events = self._call(tool)
        metrics = tool.get("metrics") or {}
        events.append(
            ToolCallResultEvent(
                message_id=f"{call_id}-result",
                tool_call_id=call_id,
                content=_text(tool.get("result")),
                role="tool",
                metadata={
                    "pilothouse": {
                        "toolName": tool.get("tool_name"),
                        "duration": metrics.get("duration"),
                        "error": bool(tool.get("tool_call_error")),
                    }
                },
            )
        )
        return events

    def _custom(self, data: dict[str, Any]) -> list[BaseEvent]:
        if STATE_KEY in data:
            return self._state_events(data[STATE_KEY])
        name = data.get("name")
        return [CustomEvent(name=name if isinstance(name, str) else "pilothouse", value=data)]

    def _state_events(self, state: Any) -> list[BaseEvent]:
        state = json.loads(json.dumps(state, default=str))  # a copy, in JSON's types
        previous, self._state = self._state, state
        if previous is _UNSET:
            return [StateSnapshotEvent(snapshot=state)]
        patch = json_patch(previous, state)
        # The operations are plain dicts; the event validates them into its own types.
        return [StateDeltaEvent(delta=cast(Any, patch))] if patch else []

    def _usage(self, out: RunOutput) -> list[TokenUsage]:
        metrics, before = out.metrics, self._before

        def used(name: str) -> int:
            value = int(getattr(metrics, name) or 0)
            if before is not None:
                value -= int(getattr(before, name) or 0)
            return max(value, 0)

        if metrics.model_calls - (before.model_calls if before else 0) <= 0:
            return []
        if not metrics.usage_reported:
            # A provider sent no usage for some call: no figures rather than a false 0.
            return []
        input_tokens, output_tokens = used("input_tokens"), used("output_tokens")
        return [
            TokenUsage(
                provider=out.model_provider,
                model=out.model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
                reasoning_tokens=used("reasoning_tokens") or None,
                cached_input_tokens=used("cache_read_tokens") or None,
                cache_write_input_tokens=used("cache_write_tokens") or None,
            )
        ]

    @staticmethod
    def _stamp(events: list[BaseEvent]) -> list[BaseEvent]:
        now = _now_ms()
        for event in events:
            event.timestamp = now
        return events
