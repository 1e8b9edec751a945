"""Exceptions raised by Pilothouse.

Runs never raise these at the caller: a failing model ends the run with status ``error`` and the
error message as content. They are raised by model adapters inside the run loop, and
`RunCancelledError` / API misuse errors surface to the caller directly.
"""

from __future__ import annotations

__all__ = [
    "ContinueRunError",
    "ModelProviderError",
    "PilothouseError",
    "ReentrantRunError",
    "RunNotFoundError",
    "ToolArgumentsError",
    "is_retryable_status",
]


def is_retryable_status(status_code: int | None) -> bool:
    """Whether a failure with this HTTP status is worth retrying.

    No status (a connection error or timeout), 408, 409, 429 and every 5xx mean "try again
    later"; any other status means the request itself is wrong.
    """
    return status_code is None or status_code in (408, 409, 429) or status_code >= 500


class PilothouseError(Exception):
    """Base class of every error Pilothouse raises."""


class ModelProviderError(PilothouseError):
    """A model call failed.

    ``status_code`` is the HTTP status when there was one (None for connection errors and
    timeouts); ``retry_after`` is the delay in seconds the provider asked for, if any.
    ``retryable`` says whether the run loop may try the call again: connection errors,
    timeouts, 429 and 5xx are; authentication and bad requests are not.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        retry_after: float | None = None,
        *,
        retryable: bool | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.model_name = model_name
        self.model_id = model_id
        if retryable is None:
            retryable = is_retryable_status(status_code)
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class ToolArgumentsError(PilothouseError):
    """The arguments a model gave for a tool call do not fit the tool's parameters."""


class RunNotFoundError(PilothouseError, LookupError):
    """No run with the given id is known."""


class ContinueRunError(PilothouseError, ValueError):
    """A run cannot be continued: it is not paused, or a tool call it waits for has no answer.

    Raised by `Agent.continue_run` before anything changes: the run stays as it was.
    """


class ReentrantRunError(PilothouseError):
    """A tool of a run started another run on the same session with the same store.

    Runs of one session take turns, so the inner run would wait for the outer one, which
    waits for its tool: it fails at once instead.
    """
