"""Durable runs on DBOS: `DBOSAgent` makes each run of an Agent a DBOS workflow and each model
request and tool call a DBOS step, so that a run survives the death of its process.

Needs the ``durable`` extra (``pip install "pilothouse[durable]"``). See docs/durable.md.
"""

from __future__ import annotations

try:
    import dbos  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError('pilothouse.durable needs DBOS: pip install "pilothouse[durable]"') from exc

from pilothouse.durable.agent import DBOSAgent
from pilothouse.durable.model import DBOSModel
from pilothouse.durable.stops import DurableRunError
from pilothouse.durable.stream import DurableRunStream
from pilothouse.durable.tools import DBOSFunction

__all__ = ["DBOSAgent", "DBOSFunction", "DBOSModel", "DurableRunError", "DurableRunStream"]
