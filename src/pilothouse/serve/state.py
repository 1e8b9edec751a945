"""`ServeState`: what the routes of one app share, at ``app.state.pilothouse``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from pilothouse.serve.auth import Authenticator
from pilothouse.serve.errors import ApiError
from pilothouse.serve.settings import ServeSettings

if TYPE_CHECKING:
    from pilothouse.agent import Agent
    from pilothouse.db.base import SessionStore
    from pilothouse.serve.eventlog import EventLog
    from pilothouse.serve.live import RunManager

__all__ = ["ServeState", "serve_state"]


@dataclass(slots=True)
class ServeState:
    """The served agents (by id), the store, settings, auth, and, while the app runs, this
    worker's event log and live runs.

    Other routers reach it with `serve_state(request)`; ``authenticator.authenticate(header)``
    checks an ``Authorization`` header outside FastAPI's dependencies (e.g. in a mounted ASGI
    app).
    """

    agents: dict[str, Agent]
    db: SessionStore
    settings: ServeSettings
    authenticator: Authenticator
    name: str | None = None
    description: str | None = None
    os_id: str = "pilothouse"
    worker_id: str = field(default_factory=lambda: f"{os.getpid()}-{time.time_ns():x}")
    started_at: float = field(default_factory=time.time)
    agent_views: dict[str, dict[str, Any]] = field(default_factory=dict)
    _log: EventLog | None = None
    _runs: RunManager | None = None

    @property
    def log(self) -> EventLog:
        """This worker's event log (available while the app runs)."""
        if self._log is None:
            raise ApiError(503, "the server is starting or stopping")
        return self._log

    @property
    def runs(self) -> RunManager:
        """This worker's live runs (available while the app runs)."""
        if self._runs is None:
            raise ApiError(503, "the server is starting or stopping")
        return self._runs

    def agent(self, agent_id: str) -> Agent:
        """The served agent with this id; 404 when there is none."""
        agent = self.agents.get(agent_id)
        if agent is None:
            raise ApiError(404, f"agent {agent_id!r} not found", field="agent_id")
        return agent


def serve_state(request: Request) -> ServeState:
    """The `ServeState` of the app serving ``request``."""
    state: ServeState = request.app.state.pilothouse
    return state
