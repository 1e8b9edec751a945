"""Building `ModelProviderError` from an HTTP failure, the same way for every provider.

Adapters pass what they know (a message, the status code, the response headers) and get an
error whose ``retryable`` flag and ``retry_after`` delay the run loop can act on. Nothing here
depends on a provider SDK.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pilothouse.exceptions import ModelProviderError, is_retryable_status

if TYPE_CHECKING:
    from pilothouse.models.base import Model

__all__ = ["is_retryable_status", "parse_retry_after", "provider_error"]


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = item
                break
    if value is None:
        return None
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def parse_retry_after(
    headers: Mapping[str, Any] | None, *, now: float | None = None
) -> float | None:
    """The delay in seconds a response asks for, or None.

    ``retry-after-ms`` (milliseconds, sent by OpenAI) wins over ``retry-after``, which is
    either a number of seconds or an HTTP date. Negative, unparsable or non-finite values are
    ignored rather than guessed at.
    """
    if not headers:
        return None
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms is not None:
        try:
            millis = float(raw_ms)
        except ValueError:
            millis = math.nan
        if math.isfinite(millis) and millis >= 0:
            return millis / 1000.0
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def provider_error(
    message: str,
    status_code: int | None = None,
    headers: Mapping[str, Any] | None = None,
    *,
    model: Model | None = None,
    retryable: bool | None = None,
) -> ModelProviderError:
    """Build the error for a failed provider call.

    Args:
        message: What went wrong, for a person to read; it becomes the run's error content.
        status_code: The HTTP status, or None when no response came (connection error,
            timeout).
        headers: The response headers, read for ``retry-after-ms`` / ``retry-after``.
        model: The model that was called, recorded on the error.
        retryable: Overrides the rule of `is_retryable_status`.

    Returns:
        A `ModelProviderError` with ``status_code``, ``retry_after`` and ``retryable`` set.
    """
    return ModelProviderError(
        message,
        status_code,
        parse_retry_after(headers),
        retryable=is_retryable_status(status_code) if retryable is None else retryable,
        model_name=model.name if model is not None else None,
        model_id=model.id if model is not None else None,
    )
