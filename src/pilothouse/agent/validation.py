"""Argument checks shared by the Agent constructor and its run methods.

Misuse of the API raises at once with a message that says what to do, so these checks run
eagerly — and cheaply, since they sit on the construction and run paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_limit", "check_seconds", "check_storable", "check_type", "reject_unknown"]


def reject_unknown(where: str, unknown: dict[str, Any], known: Iterable[str]) -> None:
    """Raise TypeError for unknown keyword arguments, suggesting the closest known names."""
    if not unknown:
        return
    import difflib

    known = sorted(known)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(
        f"{where} got unknown keyword argument(s): {', '.join(hints)}. "
        f"Accepted arguments: {', '.join(known)}."
    )


def check_type(
    where: str, name: str, value: Any, expected: type | tuple[type, ...], what: str
) -> None:
    """Raise TypeError unless ``value`` is None or an instance of ``expected``."""
    if value is not None and not isinstance(value, expected):
        raise TypeError(f"{where}: {name} must be {what}, not {type(value).__name__}.")


def check_limit(where: str, name: str, value: Any) -> int | None:
    """A count limit: a whole number >= 1, or None for no limit."""
    if value is not None and (type(value) is not int or value < 1):
        raise ValueError(f"{where}: {name} must be a whole number >= 1, or None, not {value!r}.")
    return value


def check_seconds(where: str, name: str, value: Any, *, allow_none: bool = True) -> float | None:
    """A duration in seconds: a number >= 0 (or None when allowed)."""
    if value is None and allow_none:
        return None
    if type(value) not in (int, float) or not 0 <= value < float("inf"):
        what = "a number of seconds >= 0" + (", or None" if allow_none else "")
        raise ValueError(f"{where}: {name} must be {what}, not {value!r}.")
    return float(value)


def check_storable(where: str, name: str, value: Any) -> None:
    """Raise TypeError unless a session store can keep ``value`` (JSON without NaN)."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"{where}: {name} must hold only what a session store keeps (str, int, float "
            f"without NaN or infinity, bool, None, lists and dicts of those): {exc}."
        ) from exc
