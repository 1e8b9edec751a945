"""The ``pilothouse`` logger and the debug switch."""

from __future__ import annotations

import logging
import threading

__all__ = ["enable_debug_logging", "logger"]

logger = logging.getLogger("pilothouse")
_lock = threading.Lock()
_enabled = False


def enable_debug_logging() -> None:
    """Send the ``pilothouse`` logger's DEBUG records to stderr (once per process).

    Leaves the logger alone when the application has configured handlers for it.
    """
    global _enabled
    with _lock:
        if _enabled:
            return
        _enabled = True
        logger.setLevel(logging.DEBUG)
        if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
