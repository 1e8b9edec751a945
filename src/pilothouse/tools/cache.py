"""An in-process cache of tool results: least recently used eviction plus a time-to-live."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["ResultCache"]


class ResultCache:
    """Remembers tool results by a string key for ``ttl`` seconds, at most ``maxsize`` of them.

    Lookups and stores are guarded by a lock: a tool may be called from several event loops or
    threads at once.
    """

    def __init__(
        self, ttl: float, maxsize: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.ttl = ttl
        self.maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        """Return ``(True, value)`` for a fresh entry, ``(False, None)`` otherwise.

        A flag is returned rather than a sentinel because ``None`` is a valid tool result.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            return True, value

    def put(self, key: str, value: Any) -> None:
        """Store a value, evicting the least recently used entry when full."""
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
