"""User memories: list, read, add, change, delete.

A JWT user works on their own memories only (another user's answer 404); other callers name
the user with ``user_id``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pilothouse.db.records import MemoryRecord
from pilothouse.serve.auth import Principal, require_scope
from pilothouse.serve.errors import ApiError
from pilothouse.serve.state import serve_state
from pilothouse.serve.views import memory_view

__all__ = ["router"]

router = APIRouter(tags=["Memory"])
Reader = Annotated[Principal, Depends(require_scope("memories:read"))]
Writer = Annotated[Principal, Depends(require_scope("memories:write"))]


class MemoryCreate(BaseModel):
    """A new memory."""

    memory: str = Field(min_length=1)
    topics: list[str] | None = None
    user_id: str | None = None


class MemoryUpdate(BaseModel):
    """A change to a memory: its text and/or topics."""

    memory: str | None = Field(None, min_length=1)
    topics: list[str] | None = None
    user_id: str | None = None


class MemoryDelete(BaseModel):
    """Memories to delete."""

    memory_ids: list[str] = Field(min_length=1)
    user_id: str | None = None


def _user(principal: Principal, requested: str | None) -> str:
    user = principal.user_for(requested)
    if not user:
        raise ApiError(422, "user_id is required: whose memories?", field="user_id")
    return user


async def _owned(request: Request, user: str, memory_id: str) -> MemoryRecord:
    for record in await serve_state(request).db.get_user_memories(user):
        if record.memory_id == memory_id:
            return record
    raise ApiError(404, f"memory {memory_id!r} not found", field="memory_id")


@router.get("/memories", summary="List a user's memories")
async def list_memories(
    request: Request,
    principal: Reader,
    user_id: str | None = Query(None),
    limit: int = Query(20, ge=1, le=100),
    page: int = Query(1, ge=1),
) -> Response:
    """The user's memories, newest first, as ``{"data": [...], "meta": {...}}``."""
    user = _user(principal, user_id)
    records = list(reversed(await serve_state(request).db.get_user_memories(user)))
    start = (page - 1) * limit
    total = len(records)
    return JSONResponse(
        {
            "data": [memory_view(r) for r in records[start : start + limit]],
            "meta": {
                "page": page,
                "limit": limit,
                "total_count": total,
                "total_pages": -(-total // limit),
            },
        }
    )


@router.get("/memories/{memory_id}", summary="Get a memory")
async def get_memory(
    memory_id: str,
    request: Request,
    principal: Reader,
    user_id: str | None = Query(None),
) -> Response:
    """One memory of the user."""
    record = await _owned(request, _user(principal, user_id), memory_id)
    return JSONResponse(memory_view(record))


@router.post("/memories", status_code=201, summary="Add a memory")
async def create_memory(request: Request, body: MemoryCreate, principal: Writer) -> Response:
    """Remember something about the user."""
    user = _user(principal, body.user_id)
    record = await serve_state(request).db.add_memory(user, body.memory, topics=body.topics)
    return JSONResponse(memory_view(record), status_code=201)


@router.patch("/memories/{memory_id}", summary="Change a memory")
async def update_memory(
    memory_id: str,
    request: Request,
    principal: Writer,
    body: MemoryUpdate,
) -> Response:
    """Replace a memory's text and/or topics."""
    current = await _owned(request, _user(principal, body.user_id), memory_id)
    record = await serve_state(request).db.update_memory(
        memory_id, body.memory or current.memory, topics=body.topics
    )
    if record is None:
        raise ApiError(404, f"memory {memory_id!r} not found", field="memory_id")
    return JSONResponse(memory_view(record))


@router.delete("/memories/{memory_id}", status_code=204, summary="Delete a memory")
async def delete_memory(
    memory_id: str,
    request: Request,
    principal: Writer,
    user_id: str | None = Query(None),
) -> Response:
    """Forget one memory."""
    await _owned(request, _user(principal, user_id), memory_id)
    await serve_state(request).db.delete_memory(memory_id)
    return Response(status_code=204)


@router.delete("/memories", status_code=204, summary="Delete memories")
async def delete_memories(request: Request, body: MemoryDelete, principal: Writer) -> Response:
    """Forget several memories of the user (all must be theirs)."""
    user = _user(principal, body.user_id)
    db = serve_state(request).db
    owned = {r.memory_id for r in await db.get_user_memories(user)}
    for memory_id in body.memory_ids:
        if memory_id not in owned:
            raise ApiError(404, f"memory {memory_id!r} not found", field="memory_ids")
    for memory_id in body.memory_ids:
        await db.delete_memory(memory_id)
    return Response(status_code=204)
