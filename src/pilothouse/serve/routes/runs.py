"""Starting and continuing runs: ``POST /agents/{agent_id}/runs`` and ``.../continue``.

Each request starts a run in a task of its own (`RunManager`), then answers in one of three
ways: ``stream`` (default) as SSE frames until the run ends; ``background`` without stream as
202 with the run id (the run goes on; follow it with ``GET .../events``); otherwise as the
run's JSON once it ends. A run's failure is data: it ends with status ``ERROR`` (and a
RunError frame), not with an HTTP error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pilothouse.observe import continue_trace
from pilothouse.serve.auth import Principal, require_scope
from pilothouse.serve.errors import ApiError
from pilothouse.serve.inputs import read_continue_request, read_run_request
from pilothouse.serve.live import LiveRun
from pilothouse.serve.routes.docs import CONTINUE_BODY, RUN_BODY, RUN_RESPONSES
from pilothouse.serve.routes.lookup import check_session_access
from pilothouse.serve.sse import EventStreamResponse
from pilothouse.serve.state import ServeState, serve_state

if TYPE_CHECKING:
    from pilothouse.run.output import RunOutput, ToolExecution

__all__ = ["create_run", "router", "run_scope"]

router = APIRouter(tags=["Agents"])
run_scope = require_scope("agents:run")
RunCaller = Annotated[Principal, Depends(run_scope)]


@router.post(
    "/agents/{agent_id}/runs",
    summary="Run an agent",
    openapi_extra=RUN_BODY,
    responses=RUN_RESPONSES,
)
async def create_run(agent_id: str, request: Request, principal: RunCaller) -> Response:
    """Run the agent on ``message``: SSE events (``stream``, default), the run's JSON, or
    202 and the run id (``background``)."""
    state = serve_state(request)
    agent = state.agent(agent_id)
    body = await read_run_request(
        request, state.settings, structured_input=agent.input_schema is not None
    )
    if body.session_id is not None:
        await check_session_access(state, body.session_id, principal)
    state.runs.check_capacity()
    logged = body.stream or body.background
    options: dict[str, Any] = {
        "stream_events": body.stream_events if logged else False,
        "user_id": principal.user_for(body.user_id),
        "session_id": body.session_id,
        **body.media,
    }
    for name in ("session_state", "dependencies", "metadata"):
        value = getattr(body, name)
        if value is not None:
            options[name] = value
    try:
        stream = agent.arun(body.message, stream=True, **options)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, str(exc), field=_field_in(str(exc))) from None
    # The run's task starts inside the caller's trace (an incoming traceparent), if any.
    with continue_trace(request.headers):
        live = state.runs.start(
            agent, stream, foreground=body.stream and not body.background, logged=logged
        )
    return await _respond(state, live, stream=body.stream, background=body.background)


@router.post(
    "/agents/{agent_id}/runs/{run_id}/continue",
    summary="Continue a paused run",
    openapi_extra=CONTINUE_BODY,
    responses=RUN_RESPONSES,
)
async def continue_run(
    agent_id: str, run_id: str, request: Request, principal: RunCaller
) -> Response:
    """Continue a paused run with the answered tool executions (``tools``), or a failed or
    cancelled run from its last checkpoint; answers as `create_run` does. 422 names the tool
    calls left unanswered; 409 for a run that is completed or still running."""
    from pilothouse.exceptions import ContinueRunError

    state = serve_state(request)
    agent = state.agent(agent_id)
    body = await read_continue_request(request, state.settings)
    paused = await agent.aget_run_output(run_id)
    if (
        paused is None
        or paused.agent_id != agent.id
        or not principal.owns(paused.user_id)
        or (body.session_id is not None and body.session_id != paused.session_id)
    ):
        raise ApiError(404, f"run {run_id!r} not found", field="run_id")
    if paused.status not in _CONTINUABLE:
        raise ApiError(
            409,
            f"run {run_id} cannot be continued (its status is {paused.status.value}): only a "
            "paused, failed or cancelled run can",
            field="run_id",
            status=paused.status.value,
        )
    answers = _answers(body.tools)
    state.runs.check_capacity()
    logged = body.stream or body.background
    try:
        stream = agent.acontinue_run(
            run_response=paused,
            updated_tools=answers,
            stream=True,
            stream_events=body.stream_events if logged else False,
        )
    except ContinueRunError as exc:
        raise ApiError(422, str(exc), field="tools", tools=_unanswered(paused, answers)) from None
    base = await state.log.last_seq(run_id)
    with continue_trace(request.headers):
        live = state.runs.start(
            agent,
            stream,
            foreground=body.stream and not body.background,
            logged=logged,
            base=base,
        )
    return await _respond(state, live, stream=body.stream, background=body.background)


_CONTINUABLE = frozenset({"PAUSED", "ERROR", "CANCELLED"})


async def _respond(state: ServeState, live: LiveRun, *, stream: bool, background: bool) -> Response:
    manager = state.runs
    if stream:
        if live.foreground:
            # This response is the run's first watcher; it leaves when the client does.
            manager.attach(live)
            frames = manager.frames(live, live.base, attach=False, flush_first=True)
            return EventStreamResponse(frames, on_close=lambda: manager.detach(live))
        return EventStreamResponse(manager.frames(live, live.base, flush_first=True))
    if background:
        # The run's record is in the shared log before the client can ask any worker for it.
        await state.log.flush()
        return JSONResponse(
            {
                "run_id": live.run_id,
                "session_id": live.session_id,
                "agent_id": live.agent_id,
                "status": live.output.status.value,
            },
            status_code=202,
        )
    assert live.task is not None
    # asyncio.wait, not await: a request that is cancelled must not cancel its run.
    await asyncio.wait((live.task,))
    if live.error is not None:
        raise _as_api_error(live.error)
    return JSONResponse(live.output.to_dict())


def _as_api_error(error: BaseException) -> ApiError:
    from pilothouse.exceptions import ContinueRunError, RunNotFoundError

    if isinstance(error, ContinueRunError):
        return ApiError(409, str(error), field="run_id")
    if isinstance(error, RunNotFoundError):
        return ApiError(404, str(error), field="run_id")
    return ApiError(500, f"the run could not be carried out: {error}")


def _answers(tools: list[dict[str, Any]]) -> list[ToolExecution]:
    from pilothouse.run.output import ToolExecution

    answers = []
    for index, data in enumerate(tools):
        try:
            answers.append(ToolExecution.from_dict(data))
        except (TypeError, ValueError, KeyError) as exc:
            raise ApiError(
                422, f"tools[{index}] is not a tool execution: {exc}", field="tools"
            ) from None
    return answers


def _unanswered(paused: RunOutput, answers: list[ToolExecution]) -> list[dict[str, Any]]:
    """The paused run's waiting tool calls that ``answers`` leave open (for the 422 body)."""
    by_id = {a.tool_call_id: a for a in answers}
    open_calls = []
    for execution in paused.tools:
        answer = by_id.get(execution.tool_call_id, execution)
        missing = None
        if execution.requires_confirmation and answer.confirmed is None:
            missing = "confirmed"
        elif (
            execution.requires_user_input
            and answer.confirmed is not False
            and any(f.value is None for f in answer.user_input_schema or ())
        ):
            missing = "user_input_schema"
        elif (
            execution.external_execution_required
            and answer.result is None
            and (execution.metrics is None)
        ):
            missing = "result"
        if missing is not None and execution.metrics is None:
            open_calls.append(
                {
                    "tool_name": execution.tool_name,
                    "tool_call_id": execution.tool_call_id,
                    "missing": missing,
                }
            )
    return open_calls


def _field_in(message: str) -> str | None:
    """The request field an Agent.run error is about ('run(): session_state must be ...')."""
    from pilothouse.serve.inputs import RunRequest

    text = message.removeprefix("run(): ")
    if text.startswith(("input ", "this agent takes", "give the input")):
        return "message"
    name = text.split(" ", 1)[0]
    if name in ("images", "audio", "videos", "files"):
        return "files"
    return name if name in RunRequest.__dataclass_fields__ else None
