"""Fast random ids in the UUID4 text form."""

from __future__ import annotations

import os
from collections import deque

__all__ = ["new_id"]

_BATCH = 128
_pool: deque[str] = deque()
# The version (4) and variant (10xx) bits of every id of a batch, set in one big-integer step.
_KEEP = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * _BATCH, "big")
_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * _BATCH, "big")
# Where each of an id's 36 characters comes from in its 32 hex digits (None: a dash).
_LAYOUT = [*range(8), None, *range(8, 12), None, *range(12, 16), None, *range(16, 20), None]
_LAYOUT += range(20, 32)
_STRIDE = 37  # 36 characters and a space


def _refill() -> None:
    # One getrandom() call, one big-integer mask for the version and variant bits, and one
    # strided copy per character position: the per-id work stays in C, which costs a
    # fraction of formatting each id in Python.
    bits = int.from_bytes(os.urandom(16 * _BATCH), "big") & _KEEP | _SET
    digits = bits.to_bytes(16 * _BATCH, "big").hex().encode()
    text = bytearray(b" " * (_STRIDE * _BATCH))
    for position, source in enumerate(_LAYOUT):
        if source is None:
            text[position::_STRIDE] = b"-" * _BATCH
        else:
            text[position::_STRIDE] = digits[source::32]
    _pool.extend(text.decode().split())


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
