"""Errors raised by session stores."""

from __future__ import annotations

from pilothouse.exceptions import PilothouseError, RunNotFoundError

__all__ = [
    "DuplicateRunError",
    "LeaseUnavailableError",
    "RunNotFoundError",
    "StaleStateError",
    "StoreError",
]


class StoreError(PilothouseError):
    """The store could not do what was asked: the database is unreachable, locked for too
    long, read-only, or holds a schema this release does not know.

    The message names the store and the reason; ``__cause__`` is the driver's exception.
    """


class StaleStateError(StoreError):
    """`update_session_state` lost the compare-and-set race more often than it may retry."""


class DuplicateRunError(StoreError):
    """`insert_run` was given a run id that is already stored."""


class LeaseUnavailableError(StoreError):
    """Another owner held the session lease for longer than the caller was willing to wait."""
