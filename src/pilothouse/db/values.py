"""Checking and converting what callers hand to a store, shared by every store.

Every store applies the same checks here so that the conformance suite sees the same errors
from all of them, whatever the database underneath would or would not have accepted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RunRow",
    "check_id",
    "check_limit",
    "check_ttl",
    "dump_json",
    "json_copy",
    "normalise_statuses",
    "normalise_topics",
    "run_row",
    "run_row_json",
]


def check_id(name: str, value: object) -> str:
    """Return ``value`` when it is a non-empty string, else raise ValueError naming it."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_limit(limit: int | None, *, name: str = "limit") -> int | None:
    """Return ``limit`` when it is None or a non-negative int, else raise ValueError."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"{name} must be a non-negative int or None, got {limit!r}")
    return limit


def check_ttl(ttl: float) -> float:
    """Return ``ttl`` when it is a positive number of seconds, else raise ValueError."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return float(ttl)


def dump_json(value: Any, *, what: str) -> str:
    """Return ``value`` as JSON text, the form the SQL stores keep it in.

    Raises TypeError for values JSON cannot hold and ValueError for NaN/infinity, which
    PostgreSQL's JSONB rejects: refusing them everywhere keeps the stores interchangeable.
    """
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except TypeError as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from exc


def json_copy(value: Any, *, what: str) -> Any:
    """Return a deep copy of ``value`` as JSON would store it (errors as `dump_json`)."""
    return json.loads(dump_json(value, what=what))


def normalise_statuses(statuses: Iterable[str] | str | None) -> frozenset[str] | None:
    """Turn a status filter (RunStatus members or names, any case) into the upper-case wire
    form stored in the status column; None means no filter."""
    if statuses is None:
        return None
    if isinstance(statuses, str):
        # A bare string would otherwise be iterated letter by letter.
        statuses = [statuses]
    # RunStatus is a StrEnum, so str() gives its wire value; upper() accepts "completed".
    return frozenset(str(s).upper() for s in statuses)


def normalise_topics(topics: Iterable[str] | None) -> list[str]:
    """Return the topics as a list of strings (empty when None)."""
    if topics is None:
        return []
    if isinstance(topics, str):
        return [topics]
    return [str(t) for t in topics]


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run dict split into the indexed columns and the JSON document stored beside them."""

    run_id: str
    session_id: str
    user_id: str | None
    agent_id: str | None
    status: str
    created_at: float
    data: dict[str, Any]


def run_row(run: Mapping[str, Any]) -> RunRow:
    """Extract the indexed columns from a run dict (``RunOutput.to_dict()``).

    ``run_id`` and ``session_id`` are required; ``status`` defaults to RUNNING and
    ``created_at`` to now. ``data`` is a JSON copy of the whole dict.
    """
    columns = _run_columns(run)
    return RunRow(**columns, data=json_copy(dict(run), what="a run"))


def run_row_json(run: Mapping[str, Any]) -> tuple[RunRow, str]:
    """Like `run_row`, but serialise the run once, to the JSON text a SQL store writes:
    the row's ``data`` is the caller's dict (shallow copy), not a JSON copy of it."""
    columns = _run_columns(run)
    data = dict(run)
    return RunRow(**columns, data=data), dump_json(data, what="a run")


def _run_columns(run: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(run, Mapping):
        raise TypeError(f"a run must be a dict (RunOutput.to_dict()), got {type(run).__name__}")
    run_id = check_id("run['run_id']", run.get("run_id"))
    session_id = check_id("run['session_id']", run.get("session_id"))
    user_id = run.get("user_id")
    agent_id = run.get("agent_id")
    created_at = run.get("created_at")
    if isinstance(created_at, bool) or not isinstance(created_at, int | float):
        created_at = time.time()
    return {
        "run_id": run_id,
        "session_id": session_id,
        "user_id": None if user_id is None else str(user_id),
        "agent_id": None if agent_id is None else str(agent_id),
        "status": str(run.get("status") or "RUNNING").upper(),
        "created_at": float(created_at),
    }
