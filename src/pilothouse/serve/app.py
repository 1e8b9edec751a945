"""`create_app`: the FastAPI app that serves agents."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp

from pilothouse.db.errors import StoreError
from pilothouse.serve.auth import Authenticator, JWTConfig, protect
from pilothouse.serve.errors import (
    ApiError,
    api_error_handler,
    error_body,
    http_error_handler,
    store_error_handler,
    validation_error_handler,
)
from pilothouse.serve.eventlog import event_log_for
from pilothouse.serve.fastpath import RunFastPath
from pilothouse.serve.limits import BodyLimitMiddleware
from pilothouse.serve.live import RunManager
from pilothouse.serve.routes import memories, meta, run_status, runs, sessions
from pilothouse.serve.settings import ServeSettings
from pilothouse.serve.state import ServeState
from pilothouse.serve.views import agent_view

if TYPE_CHECKING:
    from pilothouse.agent import Agent
    from pilothouse.db.base import SessionStore

__all__ = ["Lifespan", "create_app"]

logger = logging.getLogger("pilothouse")

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]
"""An extra lifespan: entered after the service starts, left before it stops."""

# Pruning of the event log: first a minute after start, then every ten minutes.
_PRUNE_FIRST, _PRUNE_EVERY = 60.0, 600.0


def create_app(
    agents: Agent | Sequence[Agent],
    *,
    db: SessionStore | None = None,
    security_key: str | None = None,
    jwt: JWTConfig | None = None,
    routers: Sequence[APIRouter] = (),
    mounts: Mapping[str, ASGIApp] | None = None,
    lifespans: Sequence[Lifespan] = (),
    cors_origins: Sequence[str] | None = None,
    name: str | None = None,
    description: str | None = None,
    os_id: str = "pilothouse",
    docs: bool = True,
    mcp: bool = True,
    playground: bool = True,
    **settings: Any,
) -> FastAPI:
    """Build the ASGI app that serves ``agents`` over HTTP.

    Args:
        agents: The agents (ids must be unique; an agent without ``id=`` is served under a
            slug of its name, or ``agent-N``).
        db: The session store of every served agent; agents without a db use it. Defaults to
            the agents' own (common) store, else an `InMemoryDb` (one worker only). Use
            SqliteDb or PostgresDb to run several workers.
        security_key: Require ``Authorization: Bearer <security_key>``.
        jwt: Require a JWT verified with this `JWTConfig` (``sub`` is the user).
        routers: More FastAPI routers to include (they may use `require_scope`).
        mounts: ASGI apps to mount, by path (e.g. ``{"/mcp": mcp_app}``).
        lifespans: Extra lifespans (``app -> async context manager``), entered in order
            after the service started.
        cors_origins: Origins allowed by CORS (e.g. ``["https://app.example.com"]``, or
            ``["*"]``); none by default.
        name, description, os_id: Shown by ``GET /config`` and in the OpenAPI docs.
        docs: Serve the OpenAPI docs at ``/docs`` and ``/openapi.json``.
        mcp: Serve the agents as a streamable-HTTP MCP endpoint at ``/mcp`` (``run_agent``
            and one tool per agent), behind the same auth (scope ``agents:run``), when the
            ``mcp`` extra is installed.
        playground: Serve the playground, a chat page for the agents, at ``/`` (the AG-UI
            endpoints ``POST /agui`` and ``/agents/{agent_id}/agui`` are always served).
        **settings: Limits and timings, see `ServeSettings` (``max_body_bytes``,
            ``max_files``, ``max_file_bytes``, ``max_concurrent_runs``, ``disconnect_grace``,
            ``drain_timeout``, ``keepalive``, ...).
    """
    unknown = sorted(set(settings) - set(ServeSettings.names()))
    if unknown:
        raise TypeError(
            f"create_app(): unknown argument {unknown[0]!r}; settings are "
            f"{', '.join(ServeSettings.names())}."
        )
    serve_settings = ServeSettings(**settings)
    served, store = _served_agents(agents, db)
    state = ServeState(
        agents=served,
        db=store,
        settings=serve_settings,
        authenticator=Authenticator(security_key, jwt),
        name=name,
        description=description,
        os_id=os_id,
    )
    state.agent_views = {agent_id: agent_view(agent) for agent_id, agent in served.items()}
    # What a run needs, imported now rather than on the event loop of the first request.
    import pilothouse.run.loop  # noqa: F401

    mounts = dict(mounts or {})
    mcp_app = _mcp_endpoint(served.values()) if mcp and "/mcp" not in mounts else None
    if mcp_app is not None:
        mounts["/mcp"] = protect(mcp_app, "agents:run")
        lifespans = (*lifespans, lambda _app: mcp_app.lifespan())
    app = FastAPI(
        title=name or "Pilothouse",
        description=description or "Agents served over HTTP.",
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=_lifespan(state, tuple(lifespans)),
    )
    app.state.pilothouse = state
    for router in (meta.router, runs.router, run_status.router, sessions.router, memories.router):
        app.include_router(router)
    _include_browser_routes(app, playground)
    for router in routers:
        app.include_router(router)
    for path, mounted in mounts.items():
        app.mount(path, mounted)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(StoreError, store_error_handler)
    # Middleware added later wraps what was added before: CORS, then the body limit, then the
    # shortcut to the run route.
    app.add_middleware(RunFastPath)
    app.add_middleware(BodyLimitMiddleware, limit=serve_settings.max_body_bytes)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Retry-After"],
        )
    return app


def _include_browser_routes(app: FastAPI, playground: bool) -> None:
    # Imported here: the AG-UI types load in create_app, never on a running event loop.
    from pilothouse.serve import agui
    from pilothouse.serve import playground as page

    app.include_router(agui.router)
    if playground:
        app.include_router(page.router)


def _mcp_endpoint(agents: Any) -> Any:
    """The agents as an MCP server (`pilothouse.serve.mcp`), or None without the extra."""
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        logger.info("the mcp package is not installed: no /mcp endpoint")
        return None
    from pilothouse.serve.mcp import create_mcp_app

    def authorize(request: Request) -> str | bool:
        # `protect` has authenticated the caller: its user (if any) runs the agent.
        principal = request.scope.get("state", {}).get("principal")
        user = getattr(principal, "user_id", None)
        return user if user is not None else True

    return create_mcp_app(list(agents), authorize=authorize)


def _lifespan(
    state: ServeState, extra: tuple[Lifespan, ...]
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log = event_log_for(state.db, state.worker_id, retention=state.settings.event_retention)
        await log.start()
        manager = RunManager(log, state.settings)
        state._log, state._runs = log, manager
        pruner = asyncio.get_running_loop().create_task(_prune(state))
        try:
            async with contextlib.AsyncExitStack() as stack:
                for enter in extra:
                    await stack.enter_async_context(enter(app))
                yield
                await manager.shutdown(state.settings.drain_timeout)
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await log.close()
            await state.db.close()
            state._log = state._runs = None

    return lifespan


async def _prune(state: ServeState) -> None:
    await asyncio.sleep(_PRUNE_FIRST)
    while True:
        try:
            await state.log.prune(time.time() - state.settings.event_retention)
        except Exception as exc:
            logger.warning("serve: pruning the event log failed: %s", exc)
        await asyncio.sleep(_PRUNE_EVERY)


def _served_agents(
    agents: Agent | Sequence[Agent], db: SessionStore | None
) -> tuple[dict[str, Agent], SessionStore]:
    """The agents as served: each a copy with its id fixed and the app's store."""
    from pilothouse.agent import Agent
    from pilothouse.db.base import SessionStore

    listed = [agents] if isinstance(agents, Agent) else list(agents)
    if not listed or not all(isinstance(a, Agent) for a in listed):
        raise TypeError("create_app(): agents must be an Agent or a list of Agent objects.")
    if db is not None and not isinstance(db, SessionStore):
        raise TypeError("create_app(): db must be a session store (pilothouse.db).")
    own = {id(a.db): a.db for a in listed if a.db is not None}
    if db is None:
        if len(own) > 1:
            raise ValueError(
                "create_app(): the agents use different session stores; pass the one to "
                "serve them all with db=..."
            )
        if own:
            db = next(iter(own.values()))
        else:
            from pilothouse.db import InMemoryDb

            db = InMemoryDb()
    elif any(store is not db for store in own.values()):
        raise ValueError(
            "create_app(): an agent has a session store other than db=...; give it the same "
            "store, or none (it then uses db)."
        )
    served: dict[str, Agent] = {}
    for index, agent in enumerate(listed, start=1):
        # The id as given (reading the attribute that holds it: the public property would
        # make up a random one, which would differ between worker processes).
        agent_id = getattr(agent, "_id", None) or _slug(agent.name) or f"agent-{index}"
        if agent_id in served:
            raise ValueError(
                f"create_app(): two agents would be served as {agent_id!r}; give them ids."
            )
        copied = copy.copy(agent)
        copied.id = agent_id
        copied.db = db
        served[agent_id] = copied
    return served, db


def _slug(name: str | None) -> str | None:
    if not name:
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or None


async def _internal_error(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("serve: unhandled %s: %s", type(exc).__name__, exc, exc_info=exc)
    return JSONResponse(error_body("internal server error"), status_code=500)
