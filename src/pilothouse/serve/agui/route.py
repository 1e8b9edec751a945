"""``POST /agui`` and ``POST /agents/{agent_id}/agui``: an agent run as an AG-UI event stream.

The run is started like any other run of the service (`RunManager`, its events in the shared
event log), so it can be cancelled from any worker with ``POST
/agents/{agent_id}/runs/{run_id}/cancel`` (the run id is in RUN_STARTED's
``metadata.pilothouse.runId``), and a client that leaves for longer than
``disconnect_grace`` cancels it. Same auth as ``POST .../runs``: scope ``agents:run``; a
thread (session) of another user answers 404.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Annotated, Any, cast

from ag_ui.encoder import EventEncoder
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from pilothouse.serve.agui.interrupts import answers_from_resume, is_waiting
from pilothouse.serve.agui.request import AguiRequest, read_agui_request
from pilothouse.serve.agui.state import StateReporting
from pilothouse.serve.agui.translate import EventTranslator
from pilothouse.serve.auth import Principal, require_scope
from pilothouse.serve.errors import ApiError
from pilothouse.serve.live import LiveRun
from pilothouse.serve.routes.lookup import check_session_access
from pilothouse.serve.sse import EventStreamResponse
from pilothouse.serve.state import ServeState, serve_state

if TYPE_CHECKING:
    from pilothouse.agent import Agent
    from pilothouse.agent.agent import AsyncRunStream
    from pilothouse.run.output import RunOutput

__all__ = ["router"]

logger = logging.getLogger("pilothouse")

router = APIRouter(tags=["AG-UI"])
RunCaller = Annotated[Principal, Depends(require_scope("agents:run"))]

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "An AG-UI RunAgentInput."}
            }
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "AG-UI events (SSE)", "content": {"text/event-stream": {}}}
}


@router.post("/agui", summary="Run an agent (AG-UI)", openapi_extra=_BODY, responses=_RESPONSES)
async def agui(request: Request, principal: RunCaller) -> Response:
    """The AG-UI endpoint of the app's agent (with several agents, name one in
    ``forwardedProps.agentId``, or use ``/agents/{agent_id}/agui``)."""
    state = serve_state(request)
    body = await read_agui_request(request, state.settings)
    if body.agent_id is not None:
        agent = state.agent(body.agent_id)
    elif len(state.agents) == 1:
        agent = next(iter(state.agents.values()))
    else:
        raise ApiError(
            422,
            "this app serves several agents: name one in forwardedProps.agentId, or POST to "
            "/agents/{agent_id}/agui",
            field="agentId",
        )
    return await _run(state, agent, body, principal)


@router.post(
    "/agents/{agent_id}/agui",
    summary="Run this agent (AG-UI)",
    openapi_extra=_BODY,
    responses=_RESPONSES,
)
async def agent_agui(agent_id: str, request: Request, principal: RunCaller) -> Response:
    """Run the agent on the thread's newest user message (or resume its paused run), and
    stream the run as AG-UI events."""
    state = serve_state(request)
    agent = state.agent(agent_id)
    body = await read_agui_request(request, state.settings)
    return await _run(state, agent, body, principal)


async def _run(
    state: ServeState, agent: Agent, body: AguiRequest, principal: Principal
) -> Response:
    thread_id = body.input.thread_id
    await check_session_access(state, thread_id, principal)
    if body.input.resume:
        paused = await _paused_run(agent, thread_id, principal)
        if paused is not None:
            return await _resume(state, agent, body, paused)
        logger.warning(
            "agui: thread %s has no paused run; its resume entries are ignored", thread_id
        )
        if body.message is None:
            raise ApiError(409, f"thread {thread_id!r} has no paused run to resume", field="resume")
    state.runs.check_capacity()
    options: dict[str, Any] = {
        "stream_events": True,
        "user_id": principal.user_for(body.user_id),
        "session_id": thread_id,
    }
    if body.state is not None:
        options["session_state"] = body.state
    if body.images:
        options["images"] = body.images
    start_state = await _starting_state(state, agent, thread_id, body.state)
    try:
        stream = agent.arun(body.message, stream=True, **options)
    except (TypeError, ValueError) as exc:
        raise ApiError(422, str(exc)) from None
    live = state.runs.start(agent, _reporting(stream), foreground=True, logged=True)
    translator = EventTranslator(thread_id, body.input.run_id, live.run_id)
    return _respond(state, live, translator, start_state)


async def _starting_state(
    state: ServeState, agent: Agent, thread_id: str, given: dict[str, Any] | None
) -> dict[str, Any]:
    """The session state a new run starts from, as the run will make it: the agent's
    defaults, overlaid by the stored state, overlaid by the request's (a run on the same
    session in between is corrected by the first STATE_DELTA)."""
    record = await state.db.get_session(thread_id)
    return {
        **(agent.session_state or {}),
        **(record.session_state if record is not None else {}),
        **(given or {}),
    }


async def _paused_run(agent: Agent, thread_id: str, principal: Principal) -> RunOutput | None:
    """The thread's latest run if it is a paused run of this agent the caller may answer."""
    from pilothouse.run.output import RunStatus

    latest = await agent.aget_last_run_output(thread_id)
    if (
        latest is None
        or latest.status is not RunStatus.paused
        or latest.agent_id != agent.id
        or not principal.owns(latest.user_id)
    ):
        return None
    return latest


async def _resume(
    state: ServeState, agent: Agent, body: AguiRequest, paused: RunOutput
) -> Response:
    from pilothouse.exceptions import ContinueRunError

    assert body.input.resume is not None
    answers = answers_from_resume(paused, body.input.resume)
    waiting = [e.tool_call_id for e in paused.tools if e.tool_call_id and is_waiting(e)]
    state.runs.check_capacity()
    try:
        stream = agent.acontinue_run(
            run_response=paused, updated_tools=answers, stream=True, stream_events=True
        )
    except ContinueRunError as exc:
        raise ApiError(422, str(exc), field="resume") from None
    base = await state.log.last_seq(paused.run_id)
    live = state.runs.start(agent, _reporting(stream), foreground=True, logged=True, base=base)
    translator = EventTranslator(
        body.input.thread_id,
        body.input.run_id,
        live.run_id,
        answered_calls=[c for c in waiting if c is not None],
        metrics_before=paused.metrics,
    )
    return _respond(state, live, translator, paused.session_state or {})


def _reporting(stream: AsyncRunStream) -> AsyncRunStream:
    # StateReporting has everything RunManager uses of a run stream.
    return cast("AsyncRunStream", StateReporting(stream))


def _respond(
    state: ServeState, live: LiveRun, translator: EventTranslator, start_state: dict[str, Any]
) -> Response:
    manager = state.runs
    # This response is the run's first watcher; it leaves when the client does.
    manager.attach(live)
    return EventStreamResponse(
        _events(state, live, translator, start_state), on_close=lambda: manager.detach(live)
    )


async def _events(
    state: ServeState, live: LiveRun, translator: EventTranslator, start_state: dict[str, Any]
) -> AsyncGenerator[str, None]:
    """The AG-UI stream: RUN_STARTED, the translated events as the run emits them, then the
    end of the run."""
    import json

    encode = EventEncoder().encode
    # The run is in the shared log before its id reaches the client (which may cancel it on
    # another worker).
    await state.log.flush()
    yield "".join(encode(e) for e in translator.started(live.session_id, start_state))
    try:
        async for chunk in state.runs.frames(live, live.base, attach=False):
            if chunk.startswith(":"):
                yield chunk  # keep-alive comment
                continue
            events = translator.translate_all(
                json.loads(line[6:])
                for frame in chunk.split("\n\n")
                for line in frame.split("\n")
                if line.startswith("data: ")
            )
            if events:
                yield "".join(encode(e) for e in events)
        ending = translator.finish(live.output, live.error)
    except Exception as exc:  # a bug here must still end the AG-UI run
        logger.exception("agui: translating run %s failed", live.run_id)
        from ag_ui.core import RunErrorEvent

        ending = [RunErrorEvent(message=f"the event stream failed: {exc}", code="internal")]
    yield "".join(encode(e) for e in ending)
