"""Argument checks shared by the Agent constructor and its run methods.

Misuse of the API raises at once with a message that says what to do, so these checks run
eagerly — and cheaply, since they sit on the construction and run paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_type", "reject_unknown"]


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
