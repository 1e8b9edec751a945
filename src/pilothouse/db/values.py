"""Checking and converting what callers hand to a store, shared by every store.

Every store applies the same checks here so that the conformance suite sees the same errors
from all of them, whatever the database underneath would or would not have accepted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RunRow",
    "check_id",
    "check_limit",
    "check_ttl",
    "dump_json",
    "json_copy",
    "load_json",
    "normalise_statuses",
    "normalise_topics",
    "run_row",
    "run_row_json",
    "store_json",
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


# Text is text: a NUL character, or a lone surrogate (what os.listdir gives for a file name
# that is not UTF-8, what json.loads("\"\\ud800\"") gives), is stored like any other. But
# PostgreSQL's JSONB cannot hold \u0000, and no database driver can encode a lone surrogate
# to UTF-8. So in the stored JSON, strings spell these characters with an escape of their
# own: MARK then "0" for NUL, "s" and four hex digits for a surrogate, and "m" for MARK
# itself, so that every string reads back exactly as it was written. MARK is a Unicode
# noncharacter, meant for a program's internal use and never for interchange.
MARK = "\ufdd0"
_MARK_BYTES = MARK.encode()
# In json.dumps(ensure_ascii=False) output, NUL is the escape \u0000 (a string holding a
# backslash then "u0000" also matches: it only takes the slower, still exact, path).
_ODD_IN_JSON = re.compile("\\\\u0000|[\ud800-\udfff\ufdd0]")
_ODD_CHAR = re.compile("[\x00\ud800-\udfff\ufdd0]")
_ESCAPED = re.compile("\ufdd0(?:[0m]|s[0-9a-f]{4})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\x00":
        return MARK + "0"
    if char == MARK:
        return MARK + "m"
    return f"{MARK}s{ord(char):04x}"


def _unescape(match: re.Match[str]) -> str:
    code = match.group()
    if code[1] == "0":
        return "\x00"
    if code[1] == "m":
        return MARK
    return chr(int(code[2:], 16))


def _map_strings(value: Any, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> Any:
    """``value`` with ``pattern`` replaced in every string in it, dict keys included."""
    if isinstance(value, str):
        return pattern.sub(repl, value)
    if isinstance(value, dict):
        return {
            pattern.sub(repl, k) if isinstance(k, str) else k: _map_strings(v, pattern, repl)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_map_strings(v, pattern, repl) for v in value]
    return value


def dump_json(value: Any, *, what: str) -> str:
    """Return ``value`` as JSON text, the form the SQL stores keep it in (NUL characters and
    lone surrogates escaped, see `MARK`; `load_json` reads it back).

    Raises TypeError for values JSON cannot hold and ValueError for NaN/infinity, which
    PostgreSQL's JSONB rejects: refusing them everywhere keeps the stores interchangeable.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        if _ODD_IN_JSON.search(text) is None:
            return text
        return json.dumps(_map_strings(value, _ODD_CHAR, _escape), ensure_ascii=False)
    except TypeError as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from exc


def store_json(value: Any) -> str:
    """`dump_json` for a database driver's JSON columns."""
    return dump_json(value, what="a JSON value")


def load_json(text: str | bytes) -> Any:
    """Read JSON text written by `dump_json` (or a driver's raw JSON bytes) back into the
    value that was written."""
    value = json.loads(text)
    if (_MARK_BYTES if isinstance(text, bytes) else MARK) in text:  # type: ignore[operator]
        value = _map_strings(value, _ESCAPED, _unescape)
    return value


def json_copy(value: Any, *, what: str) -> Any:
    """Return a deep copy of ``value`` as JSON would store it (errors as `dump_json`)."""
    return load_json(dump_json(value, what=what))


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
