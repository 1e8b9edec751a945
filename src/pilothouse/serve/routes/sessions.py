"""Sessions: list (paginated ``{data, meta}``), read, delete, and their runs.

With JWT auth a user sees only their own sessions; another user's answer 404.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pilothouse.db.records import SessionRecord
from pilothouse.serve.auth import Principal, require_scope
from pilothouse.serve.errors import ApiError
from pilothouse.serve.state import ServeState, serve_state
from pilothouse.serve.views import session_view

__all__ = ["router"]

router = APIRouter(tags=["Sessions"])
Reader = Annotated[Principal, Depends(require_scope("sessions:read"))]
Writer = Annotated[Principal, Depends(require_scope("sessions:write"))]
# Counting by listing (stores whose database the event log cannot count in) stops here.
_COUNT_CAP = 100_000


@router.get("/sessions", summary="List sessions")
async def list_sessions(
    request: Request,
    principal: Reader,
    user_id: str | None = Query(None, description="Only this user's (ignored for JWT users)."),
    component_id: str | None = Query(None, description="Only this agent's sessions."),
    type: str = Query("agent", description="Session type; only 'agent'."),
    limit: int = Query(20, ge=1, le=100),
    page: int = Query(1, ge=1),
) -> Response:
    """Sessions newest first, ``{"data": [...], "meta": {page, limit, total_count,
    total_pages, search_time_ms}}``."""
    if type != "agent":
        raise ApiError(422, "type must be 'agent'", field="type")
    started = time.perf_counter()
    state = serve_state(request)
    user = principal.user_for(user_id)
    records = await state.db.list_sessions(
        user_id=user, agent_id=component_id, limit=limit, offset=(page - 1) * limit
    )
    total = await state.log.count_sessions(user, component_id)
    if total is None:
        total = await _count_by_listing(state, user, component_id)
    return JSONResponse(
        {
            "data": [session_view(r) for r in records],
            "meta": {
                "page": page,
                "limit": limit,
                "total_count": total,
                "total_pages": math.ceil(total / limit),
                "search_time_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        }
    )


async def _count_by_listing(state: ServeState, user: str | None, agent: str | None) -> int:
    total, chunk = 0, 1000
    while total < _COUNT_CAP:
        found = await state.db.list_sessions(
            user_id=user, agent_id=agent, limit=chunk, offset=total
        )
        total += len(found)
        if len(found) < chunk:
            break
    return total


async def _owned_session(request: Request, session_id: str, principal: Principal) -> SessionRecord:
    record = await serve_state(request).db.get_session(session_id)
    if record is None or not principal.owns(record.user_id):
        raise ApiError(404, f"session {session_id!r} not found", field="session_id")
    return record


@router.get("/sessions/{session_id}", summary="Get a session")
async def get_session(session_id: str, request: Request, principal: Reader) -> Response:
    """The session: ids, state, run count, times."""
    return JSONResponse(session_view(await _owned_session(request, session_id, principal)))


@router.delete("/sessions/{session_id}", status_code=204, summary="Delete a session")
async def delete_session(session_id: str, request: Request, principal: Writer) -> Response:
    """Delete the session with its runs."""
    await _owned_session(request, session_id, principal)
    await serve_state(request).db.delete_session(session_id)
    return Response(status_code=204)


@router.get("/sessions/{session_id}/runs", summary="List a session's runs")
async def session_runs(
    session_id: str,
    request: Request,
    principal: Reader,
    limit: int | None = Query(None, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> Response:
    """The session's runs in the order they were made."""
    await _owned_session(request, session_id, principal)
    runs = await serve_state(request).db.list_runs(session_id, limit=limit, offset=offset)
    return JSONResponse(runs)
