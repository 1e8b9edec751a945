"""Serve agents over HTTP: runs, SSE streams, sessions, memories and auth, on many workers.

    from pilothouse.serve import create_app

    app = create_app(agents=[agent], db=PostgresDb("postgresql://..."), security_key="...")
    # pilothouse serve mymodule:app --workers 4

Routes follow the guide framework's service (its clients and chat UIs work unchanged):
``GET /health``, ``GET /config``, ``GET /agents``, ``GET /agents/{agent_id}``,
``POST /agents/{agent_id}/runs`` (JSON or multipart form: ``message``, ``stream``,
``session_id``, ``user_id``, ``session_state``, ``dependencies``, ``metadata``, ``files``,
``background``), ``POST .../runs/{run_id}/cancel``, ``POST .../runs/{run_id}/continue``,
``GET .../runs/{run_id}``, ``GET .../runs/{run_id}/events?after=N`` (or ``Last-Event-ID``),
``GET /sessions``, ``GET|DELETE /sessions/{session_id}``, ``GET /sessions/{session_id}/runs``,
``GET|POST|PATCH|DELETE /memories``. OpenAPI docs at ``/docs``. AG-UI 1.0 at ``POST /agui``
and ``POST /agents/{agent_id}/agui`` (`pilothouse.serve.agui`), and the playground, a chat
page for the agents, at ``/`` (`pilothouse.serve.playground`).

Several workers share one SqliteDb or PostgresDb: each run's events also go to a small log in
that database (``serve/eventlog``), so a stream can be resumed, and a run cancelled, from any
worker (PostgreSQL LISTEN/NOTIFY; SQLite polls a table). No other broker is needed.

Extending the app
-----------------

Add routers (and mounted ASGI apps, and lifespans for them) when creating the app, or later
with ``app.include_router``. Protect a route with the same auth as the built-in ones by
depending on `require_scope` (or `current_principal` for "authenticated, any scope"); the
dependency yields the caller's `Principal`::

    from typing import Annotated
    from fastapi import APIRouter, Depends, Request
    from pilothouse.serve import Principal, create_app, protect, require_scope, serve_state

    router = APIRouter()
    Reader = Annotated[Principal, Depends(require_scope("knowledge:read"))]

    @router.get("/knowledge")
    async def knowledge(request: Request, principal: Reader):
        user_id = principal.user_for(None)   # the JWT's user (None: auth off / the key)
        state = serve_state(request)         # agents (by id), db, settings of this app
        ...

    app = create_app(agents=[agent], routers=[router],
                     mounts={"/mcp": protect(mcp_asgi_app, "agents:run")},
                     lifespans=[mcp_lifespan])   # each: app -> async context manager

Scopes are checked only for JWT callers (the security key and auth-off may do everything);
``admin`` grants every scope. A scope of your own (``knowledge:read``) must contain a colon.

`Principal` tells who calls: ``user_id`` (the JWT ``sub``), ``scopes``, ``is_admin``,
``owns(user_id)`` (answer 404 when False) and ``user_for(requested_user_id)``. Raise
`ApiError(status, detail, field=...)` for a JSON error in the service's shape.

A mounted ASGI app (MCP, AG-UI) gets the same authentication by wrapping it with
`protect`; the wrapped app finds the caller at ``scope["state"]["principal"]``. Outside a
request, ``app.state.pilothouse`` is the app's `ServeState` (agents by id, db, settings,
``authenticator.authenticate(header)``).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "pilothouse.serve needs the 'serve' extra: pip install 'pilothouse[serve]'"
    ) from exc

from pilothouse.serve.app import Lifespan, create_app
from pilothouse.serve.auth import (
    SCOPES,
    Authenticator,
    JWTConfig,
    Principal,
    current_principal,
    protect,
    require_scope,
)
from pilothouse.serve.errors import ApiError
from pilothouse.serve.settings import ServeSettings
from pilothouse.serve.state import ServeState, serve_state

__all__ = [
    "SCOPES",
    "ApiError",
    "Authenticator",
    "JWTConfig",
    "Lifespan",
    "Principal",
    "ServeSettings",
    "ServeState",
    "create_app",
    "current_principal",
    "protect",
    "require_scope",
    "serve_state",
]
