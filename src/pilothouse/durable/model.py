"""`DBOSModel`: a model whose every request is one DBOS step.

Inside a DBOS workflow, `stream` runs one whole model request as a step: the step returns the
assembled `ModelResponse` (which DBOS records), and while it runs the text and reasoning
deltas are handed to the run loop as they arrive, so a streaming caller still sees the answer
live. When the workflow is executed again after a crash, a request that had finished is not
made again: DBOS returns the recorded response and it is given to the loop as one delta.
Outside a workflow the wrapped model is called directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from dbos import DBOS
from dbos import error as dbos_errors

from pilothouse.exceptions import ModelProviderError
from pilothouse.models.base import (
    Model,
    ModelDelta,
    ModelRequest,
    ModelResponse,
    ResponseAssembler,
    ToolCallChunk,
)
from pilothouse.models.message import Message
from pilothouse.run.metrics import Usage

__all__ = ["DBOSModel", "forget", "halt", "in_workflow"]

# Workflows (by id) in which DBOS refused a step: the code no longer takes the recorded
# path. Their runs must end there, not go on from a step DBOS answered with another's record.
_halted: dict[str, str] = {}


def in_workflow() -> bool:
    """Whether the caller runs in a DBOS workflow, outside any step (where steps may start)."""
    return DBOS.workflow_id is not None and DBOS.step_id is None


def halt(workflow_id: str, error: BaseException) -> None:
    """Make the rest of the run fail at its next model request: DBOS refused a step (the
    code no longer takes the recorded path)."""
    _halted.setdefault(workflow_id, f"{type(error).__name__}: {error}")


def forget(workflow_id: str) -> None:
    """The workflow is over (in this process)."""
    _halted.pop(workflow_id, None)


class DBOSModel(Model):
    """Wraps a model so that, inside a DBOS workflow, each request is a DBOS step.

    Args:
        model: The model to call.
        step_name: The name DBOS records for each request (``"<agent name>.model"``).
    """

    def __init__(self, model: Model, *, step_name: str) -> None:
        self.wrapped = model
        self.id = model.id
        self.provider = model.provider
        self.step_name = step_name

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.wrapped.name

    def price(self, usage: Usage) -> float | None:
        """The wrapped model's price for a call with this usage."""
        return self.wrapped.price(usage)

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Make one request as a DBOS step; yield its text as it arrives, then the rest."""
        if not in_workflow():
            async for delta in self.wrapped.stream(messages, request):
                yield delta
            return
        workflow_id = DBOS.workflow_id
        assert workflow_id is not None
        refused = _halted.get(workflow_id)
        if refused is not None:
            raise self._cannot_go_on(refused)
        # The step id is drawn now, in the workflow's order; the step itself runs in a task,
        # so that its deltas can be passed on while it runs.
        reservation = DBOS.reserve_step()
        live: asyncio.Queue[ModelDelta | None] = asyncio.Queue()
        ran = False

        async def request_once() -> ModelResponse:
            nonlocal ran
            ran = True
            return await self._request(messages, request, live)

        task = asyncio.ensure_future(reservation.run_async({"name": self.step_name}, request_once))
        task.add_done_callback(lambda _: live.put_nowait(None))
        try:
            while (piece := await live.get()) is not None:
                yield piece
            try:
                response = task.result()
            except dbos_errors.DBOSException as exc:
                # Raised by DBOS around the step (the body's errors are ModelProviderErrors).
                # A cancelled workflow, or one another execution owns now, raises DBOS's
                # BaseExceptions instead: they go through, and this execution stops at once.
                halt(workflow_id, exc)
                raise self._cannot_go_on(_halted[workflow_id]) from exc
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])
        yield _rest_of(response, with_text=not ran)

    def _cannot_go_on(self, reason: str) -> ModelProviderError:
        return ModelProviderError(
            f"the durable run cannot go on: {reason}",
            retryable=False,
            model_name=self.wrapped.name,
            model_id=self.wrapped.id,
        )

    async def _request(
        self,
        messages: Sequence[Message],
        request: ModelRequest,
        live: asyncio.Queue[ModelDelta | None],
    ) -> ModelResponse:
        """The body of the step: the whole request, its text passed on as it arrives."""
        assembler = ResponseAssembler()
        try:
            async for delta in self.wrapped.stream(messages, request):
                assembler.add(delta)
                if delta.content or delta.reasoning:
                    live.put_nowait(ModelDelta(content=delta.content, reasoning=delta.reasoning))
        except ModelProviderError:
            raise
        except Exception as exc:
            # DBOS records a failed step's exception (pickled) and raises it again on replay:
            # provider SDK errors do not all survive that, a ModelProviderError does. The run
            # loop would turn them into the same error.
            raise ModelProviderError(
                f"{type(exc).__name__}: {exc}",
                retryable=False,
                model_name=self.wrapped.name,
                model_id=self.wrapped.id,
            ) from exc
        return assembler.response()


def _rest_of(response: ModelResponse, *, with_text: bool) -> ModelDelta:
    """What the loop has not been given yet: the tool calls (with the ids DBOS recorded) and
    usage; the text too when the step was replayed rather than run."""
    calls = [
        ToolCallChunk(index=i, id=call.id, name=call.name, arguments=call.arguments_json())
        for i, call in enumerate(response.tool_calls)
    ]
    delta = ModelDelta(
        tool_calls=calls or None, usage=response.usage, finish_reason=response.finish_reason
    )
    if with_text:
        delta.content = response.content or None
        delta.reasoning = response.reasoning
    return delta
