"""A run already started: read it, follow its events, cancel it — from any worker."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pilothouse.serve.auth import Principal, require_scope
from pilothouse.serve.errors import ApiError
from pilothouse.serve.follow import follow_run
from pilothouse.serve.routes.lookup import find_run
from pilothouse.serve.sse import EventStreamResponse
from pilothouse.serve.state import ServeState, serve_state

__all__ = ["router"]

router = APIRouter(tags=["Agents"])
RunCaller = Annotated[Principal, Depends(require_scope("agents:run"))]
ReadCaller = Annotated[Principal, Depends(require_scope("agents:run", "sessions:read"))]


@router.get("/agents/{agent_id}/runs/{run_id}", summary="Get a run")
async def get_run(agent_id: str, run_id: str, request: Request, principal: ReadCaller) -> Response:
    """The run as stored (its status, content, messages, tools, metrics...); a run that has
    not been stored yet answers with its ids and status PENDING."""
    state = serve_state(request)
    found = await find_run(state, state.agent(agent_id), run_id, principal, with_stored=True)
    if found.stored is not None:
        return JSONResponse(found.stored)
    return JSONResponse(
        {
            "run_id": run_id,
            "agent_id": agent_id,
            "session_id": found.session_id,
            "user_id": found.user_id,
            "status": found.status,
        }
    )


@router.get(
    "/agents/{agent_id}/runs/{run_id}/events",
    summary="Follow a run's events (resume a stream)",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events(
    agent_id: str,
    run_id: str,
    request: Request,
    principal: ReadCaller,
    after: int | None = Query(None, ge=0, description="Send the events after this id."),
) -> Response:
    """SSE: the run's events after ``after`` (or the ``Last-Event-ID`` header; default: from
    the first), then the live ones until the run ends. Works on any worker."""
    state = serve_state(request)
    await find_run(state, state.agent(agent_id), run_id, principal)
    if after is None:
        after = _last_event_id(request)
    frames = follow_run(run_id, after, state.runs, state.log, state.db)
    return EventStreamResponse(frames)


def _last_event_id(request: Request) -> int:
    header = request.headers.get("last-event-id")
    if header is None or not header.strip():
        return 0
    try:
        value = int(header.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(
            422,
            "Last-Event-ID must be the id of an event of this run (a whole number)",
            field="Last-Event-ID",
        )
    return value


@router.post("/agents/{agent_id}/runs/{run_id}/cancel", summary="Cancel a run")
async def cancel_run(
    agent_id: str, run_id: str, request: Request, principal: RunCaller
) -> Response:
    """Cancel a running run, wherever it runs; answers with its status once it stopped (or
    after ``cancel_wait`` seconds). 409 when it is not running."""
    state = serve_state(request)
    found = await find_run(state, state.agent(agent_id), run_id, principal)
    if found.ended:
        raise ApiError(
            409,
            f"run {run_id} is not running (its status is {found.status})",
            field="run_id",
            status=found.status,
        )
    await state.runs.request_cancel(run_id, "cancelled by request")
    status = await _final_status(state, run_id, state.settings.cancel_wait)
    return JSONResponse({"run_id": run_id, "status": status, "cancelled": status == "CANCELLED"})


async def _final_status(state: ServeState, run_id: str, within: float) -> str:
    live = state.runs.runs.get(run_id)
    if live is not None and live.task is not None:
        await asyncio.wait((live.task,), timeout=within)
        return live.output.status.value
    deadline = time.monotonic() + within
    status = "RUNNING"
    while time.monotonic() < deadline:
        stored = await state.db.get_run(run_id)
        status = str(stored.get("status")) if stored is not None else "PENDING"
        if status not in ("RUNNING", "PENDING"):
            break
        await asyncio.sleep(0.05)
    return status
