"""Tools whose every call is one DBOS step.

`DBOSFunction` wraps a `Function`: inside a DBOS workflow its call runs as a step whose
recorded output is the text the model reads (always picklable), the error the tool raised
(as its type name and message), and the changes the call made to the session state. When the
workflow is executed again after a crash, a call that had finished is not made again: its
text or error comes back from DBOS's record and its session-state changes are applied again.
A call that was interrupted has no record and runs again (at least once).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbos import DBOS
from dbos import error as dbos_errors

from pilothouse.durable.model import halt, in_workflow
from pilothouse.exceptions import ToolArgumentsError
from pilothouse.models.base import ToolDefinition
from pilothouse.tools import Function, Toolkit
from pilothouse.tools.resolve import resolve_tools

if TYPE_CHECKING:
    from pilothouse.tools.spec import ToolSpec

__all__ = ["DBOSFunction", "DBOSToolkit", "durable_tools"]

logger = logging.getLogger("pilothouse")

# Parameters through which a tool may change the session state.
_STATE_PARAMETERS = frozenset({"session_state", "run_context"})
# Wrappers kept for the tools of toolkits that list new ones per run; beyond this many the
# cache starts again (a wrapper is cheap to make, its schema is shared with the tool's).
_MAX_WRAPPERS = 1024


@dataclass(slots=True)
class ToolCallRecord:
    """What DBOS records for one tool call."""

    text: str | None = None
    error_type: str | None = None
    error: str | None = None
    invalid_arguments: bool = False
    state_changes: dict[str, Any] = field(default_factory=dict)
    state_removed: list[str] = field(default_factory=list)


class DBOSFunction(Function):
    """A tool whose call, inside a DBOS workflow, is one DBOS step (see the module).

    Its name, description, schema and human-in-the-loop options are the wrapped tool's.
    """

    def __init__(self, function: Function, *, step_name: str) -> None:
        super().__init__(
            function.entrypoint,
            name=function.name,
            description=function.description,
            requires_confirmation=function.requires_confirmation,
            requires_user_input=function.requires_user_input,
            user_input_fields=function.user_input_fields,
            external_execution=function.external_execution,
            stop_after_tool_call=function.stop_after_tool_call,
            show_result=function.show_result,
        )
        self.wrapped = function
        self.step_name = step_name

    @property
    def spec(self) -> ToolSpec:
        """The wrapped tool's parameter spec."""
        return self.wrapped.spec

    @property
    def parameters(self) -> dict[str, Any]:
        """The wrapped tool's JSON schema."""
        return self.wrapped.parameters

    @property
    def injected(self) -> frozenset[str]:
        """The injected parameters of the wrapped tool."""
        return self.wrapped.injected

    @property
    def definition(self) -> ToolDefinition:
        """What the model is told: the wrapped tool's definition."""
        return self.wrapped.definition

    async def acall(
        self,
        arguments: Mapping[str, Any] | str | None,
        injected: Mapping[str, Any] | None = None,
        *,
        inline_sync: bool = False,
    ) -> Any:
        """Call the wrapped tool; inside a DBOS workflow, as a DBOS step.

        Returns the text the model reads. Raises what the tool raised: the exception itself
        when the call ran now, one of the same type name and message when DBOS replays it.
        """
        if not in_workflow():
            return await self.wrapped.acall(arguments, injected, inline_sync=inline_sync)
        state = _session_state(self.wrapped, injected)
        caught: list[Exception] = []
        ran = False

        async def call_once() -> ToolCallRecord:
            nonlocal ran
            ran = True
            return await self._call(arguments, injected, state, caught)

        # Awaited at once, so the step id is drawn in the order the calls were made even
        # when several run concurrently.
        try:
            record = await DBOS.run_step_async({"name": self.step_name}, call_once)
        except dbos_errors.DBOSException as exc:
            # Raised by DBOS around the step, not by the tool (whose errors are recorded):
            # the run ends at its next model request. (A cancelled workflow, or one another
            # execution owns now, raises DBOS's BaseExceptions: this execution stops at once.)
            workflow_id = DBOS.workflow_id
            if workflow_id is not None:
                halt(workflow_id, exc)
            raise
        if not ran and state is not None:
            # Replayed: the call does not run, but its changes to the session state count.
            state.update(record.state_changes)
            for key in record.state_removed:
                state.pop(key, None)
        if record.error_type is None:
            return record.text
        if caught:
            raise caught[0]
        if record.invalid_arguments:
            raise ToolArgumentsError(record.error or "")
        raise _replayed_error(record.error_type, record.error or "")

    async def _call(
        self,
        arguments: Mapping[str, Any] | str | None,
        injected: Mapping[str, Any] | None,
        state: dict[str, Any] | None,
        caught: list[Exception],
    ) -> ToolCallRecord:
        """The body of the step."""
        before = copy.deepcopy(state) if state is not None else None
        record = ToolCallRecord()
        try:
            # Never inline: a sync tool runs in a worker thread, as in any async run.
            result = await self.wrapped.acall(arguments, injected)
            record.text = self.wrapped.format_result(result)
        except Exception as exc:
            caught.append(exc)
            record.error_type = type(exc).__name__
            record.error = str(exc)
            record.invalid_arguments = isinstance(exc, ToolArgumentsError)
        if state is not None and before is not None:
            record.state_changes = {
                key: copy.deepcopy(value)
                for key, value in state.items()
                if key not in before or before[key] != value
            }
            record.state_removed = [key for key in before if key not in state]
        return record


def _session_state(function: Function, injected: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The run's session state when the tool can change it, else None."""
    if injected is None or not (function.injected & _STATE_PARAMETERS):
        return None
    state = injected.get("session_state")
    return state if isinstance(state, dict) else None


def _replayed_error(type_name: str, message: str) -> Exception:
    """An exception that reads like the one the tool raised (its class is not recorded)."""
    error_class: type[Exception] = type(type_name, (Exception,), {})
    return error_class(message)


class DBOSToolkit(Toolkit):
    """A toolkit whose tools are wrapped by `DBOSFunction` each time they are listed.

    For toolkits whose tools may change from run to run (a subclass overriding `functions`).
    """

    def __init__(self, toolkit: Toolkit, wrap: Callable[[Function], Function]) -> None:
        super().__init__(name=toolkit.name, instructions=toolkit.instructions)
        self.wrapped = toolkit
        self._wrap = wrap

    @property
    def functions(self) -> list[Function]:
        """The wrapped toolkit's current tools, each wrapped."""
        return [self._wrap(function) for function in self.wrapped.functions]


def durable_tools(tools: Sequence[Any] | None, prefix: str) -> list[Any] | None:
    """The agent's tools with each call made a DBOS step named ``<prefix>.tool.<name>``.

    Tools and fixed toolkits are resolved and wrapped now; a toolkit that lists its tools
    anew for each run is wrapped as a toolkit, its tools wrapped when listed.
    """
    if tools is None:
        return None
    made: dict[int, tuple[Function, DBOSFunction]] = {}

    def wrap(function: Function) -> Function:
        known = made.get(id(function))
        if known is not None and known[0] is function:
            return known[1]
        durable = DBOSFunction(function, step_name=f"{prefix}.tool.{function.name}")
        if len(made) >= _MAX_WRAPPERS:
            made.clear()
        made[id(function)] = (function, durable)
        return durable

    wrapped: list[Any] = []
    for entry in tools:
        if isinstance(entry, Toolkit) and type(entry).functions is not Toolkit.functions:
            wrapped.append(DBOSToolkit(entry, wrap))
        else:
            wrapped.extend(wrap(function) for function in resolve_tools([entry]))
    return wrapped
