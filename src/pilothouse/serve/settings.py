"""`ServeSettings`: the limits and timings of the service, with bounded defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ServeSettings"]


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Limits and timings; every one has a bounded default.

    Args:
        max_body_bytes: The largest request body accepted (413 above it).
        max_files: The most files one run may upload.
        max_file_bytes: The largest single uploaded file.
        max_concurrent_runs: Runs one worker drives at once; more get 429 with Retry-After.
        disconnect_grace: Seconds a foreground stream's run waits for its client to come back
            (e.g. with Last-Event-ID, on any worker) before it is cancelled.
        drain_timeout: On shutdown (SIGTERM), seconds in-flight runs get to finish before they
            are cancelled (and stored ``cancelled``).
        keepalive: Seconds between SSE comments on a quiet stream.
        follow_idle_timeout: A stream that follows another worker's run ends after this many
            seconds without an event (the client may reconnect).
        cancel_wait: Seconds a cancel request waits to report the run's final status.
        event_retention: Seconds the event log keeps a run's events for reconnecting clients.
        retry_after: The Retry-After seconds sent with 429 and 503.
    """

    max_body_bytes: int = 16 * 1024 * 1024
    max_files: int = 10
    max_file_bytes: int = 10 * 1024 * 1024
    max_concurrent_runs: int = 1000
    disconnect_grace: float = 3.0
    drain_timeout: float = 30.0
    keepalive: float = 15.0
    follow_idle_timeout: float = 300.0
    cancel_wait: float = 5.0
    event_retention: float = 24 * 3600.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value: Any = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"create_app(): {f.name} must be a number >= 0, not {value!r}.")
        if self.max_concurrent_runs < 1:
            raise ValueError("create_app(): max_concurrent_runs must be at least 1.")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The setting names (also accepted as create_app keyword arguments)."""
        return tuple(f.name for f in fields(cls))
