"""The serving app continues the trace of an incoming request (``traceparent``)."""

from __future__ import annotations

import httpx
from otel_recorder import Recorded

from pilothouse import Agent
from pilothouse.db import InMemoryDb
from pilothouse.models.test import TestModel
from pilothouse.serve import create_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


async def test_a_served_run_continues_the_callers_trace(otel: Recorded) -> None:
    app = create_app(Agent(id="echo", model=TestModel(text="hi"), db=InMemoryDb()), mcp=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                "/agents/echo/runs",
                json={"message": "hello", "stream": False},
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )
    assert answer.status_code == 200, answer.text
    run = otel.one("invoke_agent")
    assert format(run.context.trace_id, "032x") == TRACE_ID
    assert run.parent is not None and format(run.parent.span_id, "016x") == PARENT_ID
    assert otel.one("chat").context.trace_id == run.context.trace_id
