"""`RunFastPath`: ``POST /agents/{agent_id}/runs`` straight to its handler.

Starting a run is the request a service answers most. FastAPI's routing and dependency
resolution cost about half a millisecond per request on a slow machine, as much as a whole
run with an instant model; this pure-ASGI middleware recognises the route by its path and
calls the same handler (`create_run`) with the same authentication and scope check, and
answers its errors in the same JSON shape. The FastAPI route stays declared, for the OpenAPI
docs.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pilothouse.serve.errors import ApiError, error_body, store_error_response
from pilothouse.serve.routes.runs import create_run, run_scope

__all__ = ["RunFastPath"]


def _agent_of(path: str) -> str | None:
    """The agent id of ``/agents/{agent_id}/runs``, or None for any other path."""
    if not path.startswith("/agents/") or not path.endswith("/runs"):
        return None
    agent_id = path[8:-5]
    return agent_id if agent_id and "/" not in agent_id else None


class RunFastPath:
    """Serves ``POST /agents/{agent_id}/runs`` without FastAPI's router; passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        agent_id = _agent_of(path)
        if agent_id is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            response = await create_run(agent_id, request, await run_scope(request))
        except ApiError as exc:
            response = JSONResponse(
                error_body(exc.detail, exc.field, **exc.extra),
                status_code=exc.status_code,
                headers=exc.headers,
            )
        except Exception as exc:
            from pilothouse.db.errors import StoreError

            if not isinstance(exc, StoreError):
                raise  # the server's error middleware answers 500 and logs it
            response = store_error_response(exc)
        await response(scope, receive, send)
