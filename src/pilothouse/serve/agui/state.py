"""`StateReporting`: a run's event stream that also reports each change of its session state.

The run loop emits no event when a tool changes ``session_state``. An AG-UI client follows
that state (STATE_SNAPSHOT, then STATE_DELTA), so the stream of an AG-UI run is wrapped:
before each event it passes on (but the pieces of a streamed answer, during which nothing
changes the state), the wrapper compares the run's session state with the last one it
reported and, when it changed, first emits a `CustomEvent` whose ``data`` holds the state
under `STATE_KEY`. The wrapper runs in the task that drives the run, so each report is
the state exactly as it was between two of the run's events; and the reports go to the
service's event log with the run's other events.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.agent.agent import AsyncRunStream
    from pilothouse.run.events import BaseRunEvent
    from pilothouse.run.output import RunOutput

__all__ = ["STATE_KEY", "StateReporting"]

STATE_KEY = "pilothouse.session_state"
"""The key of the session state in the ``data`` of a state report."""


class StateReporting:
    """Wraps an ``arun``/``acontinue_run`` stream (same ``output``, ``run_id``, ``aclose``)."""

    __slots__ = ("_held", "_reported", "_seen", "_stream")

    def __init__(self, stream: AsyncRunStream) -> None:
        self._stream = stream
        self._reported: str | None = None
        self._seen: object = None
        self._held: BaseRunEvent | None = None

    @property
    def output(self) -> RunOutput:
        """The run's `RunOutput`."""
        return self._stream.output

    @property
    def run_id(self) -> str:
        """The id of the run."""
        return self._stream.run_id

    def __aiter__(self) -> StateReporting:
        return self

    async def __anext__(self) -> BaseRunEvent:
        held = self._held
        if held is not None:
            self._held = None
            return held
        event: BaseRunEvent = await self._stream.__anext__()
        # Only tools (and hooks) change the state, and never while the model streams: the
        # pieces of an answer (most of a run's events) are passed on without a look.
        if event.event == "RunContent" and self._stream.output.session_state is self._seen:
            return event
        report = self._report()
        if report is None:
            return event
        self._held = event
        return report

    async def aclose(self) -> None:
        """Stop the run early (see `AsyncRunStream.aclose`)."""
        await self._stream.aclose()

    def _report(self) -> BaseRunEvent | None:
        """A state report if the state changed since the last one (None otherwise)."""
        from pilothouse.run.events import CustomEvent

        out = self._stream.output
        state: Any = out.session_state
        self._seen = state
        if state is None:
            return None
        # Compared (and copied) as JSON: the run keeps changing its own dict.
        encoded = json.dumps(state, sort_keys=True, default=str, ensure_ascii=False)
        if encoded == self._reported:
            return None
        self._reported = encoded
        return CustomEvent(
            run_id=out.run_id,
            session_id=out.session_id,
            agent_id=out.agent_id,
            agent_name=out.agent_name,
            data={STATE_KEY: json.loads(encoded)},
        )
