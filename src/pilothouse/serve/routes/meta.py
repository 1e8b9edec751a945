"""The service itself: health, configuration, and the agents it serves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pilothouse.serve.auth import Principal, require_scope
from pilothouse.serve.state import serve_state

__all__ = ["router"]

router = APIRouter()
Reader = Annotated[Principal, Depends(require_scope("agents:read"))]


@router.get("/health", tags=["Core"], summary="Health check")
async def health(request: Request) -> Response:
    """``{"status": "ok"}`` while the worker takes requests (no authentication needed)."""
    state = serve_state(request)
    accepting = state._runs is not None and state._runs.accepting
    return JSONResponse(
        {
            "status": "ok" if accepting else "stopping",
            "instantiated_at": state.started_at,
            "worker_id": state.worker_id,
        },
        status_code=200 if accepting else 503,
    )


@router.get("/config", tags=["Core"], summary="The service's configuration")
async def config(request: Request, principal: Reader) -> Response:
    """What the service serves: its id and name, the agents, the database."""
    state = serve_state(request)
    return JSONResponse(
        {
            "os_id": state.os_id,
            "name": state.name,
            "description": state.description,
            "agents": [
                {"id": view["id"], "name": view["name"], "description": view["description"]}
                for view in state.agent_views.values()
            ],
            "teams": [],
            "workflows": [],
            "interfaces": [],
            "databases": [type(state.db).__name__],
        }
    )


@router.get("/agents", tags=["Agents"], summary="List the agents")
async def list_agents(request: Request, principal: Reader) -> Response:
    """Every served agent: id, name, model, tools and their schemas, instructions."""
    return JSONResponse(list(serve_state(request).agent_views.values()))


@router.get("/agents/{agent_id}", tags=["Agents"], summary="Get an agent")
async def get_agent(agent_id: str, request: Request, principal: Reader) -> Response:
    """One served agent."""
    state = serve_state(request)
    state.agent(agent_id)
    return JSONResponse(state.agent_views[agent_id])
