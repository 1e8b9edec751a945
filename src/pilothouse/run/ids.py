"""Fast random ids in the UUID4 text form."""

from __future__ import annotations

import os
from collections import deque

__all__ = ["new_id"]

_VARIANT = "89ab"
_BATCH = 128
_pool: deque[str] = deque()


def _refill() -> None:
    # One getrandom() call for a batch of ids: the system call costs more than formatting.
    h = os.urandom(16 * _BATCH).hex()
    _pool.extend(
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{_VARIANT[int(h[i + 16], 16) & 3]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * _BATCH, 32)
    )


def new_id() -> str:
    """Return a random UUID4 string (same form and randomness as ``str(uuid.uuid4())``).

    Called for every run, so ids are made in batches; ``deque.popleft`` is atomic, so threads
    may share the pool.
    """
    try:
        return _pool.popleft()
    except IndexError:
        _refill()
        return _pool.popleft()
