"""JSON errors: every refusal is ``{"detail": "...", "field": ...}`` with a fitting status.

``detail`` is a sentence a person can act on; ``field`` names the request field at fault when
there is one (``None`` otherwise). Errors never echo a key or a token.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

logger = logging.getLogger("pilothouse")

__all__ = [
    "ApiError",
    "api_error_handler",
    "error_body",
    "http_error_handler",
    "store_error_handler",
    "store_error_response",
    "validation_error_handler",
]


class ApiError(Exception):
    """A request refused with ``status_code``; raised by routes and dependencies, answered as JSON.

    ``extra`` adds fields to the body (e.g. the tools a continue left unanswered); ``headers``
    go on the response (e.g. ``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.field = field
        self.headers = headers
        self.extra = extra


def error_body(detail: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {"detail": detail, "field": field, **extra}


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Answer an `ApiError` with its status and JSON body."""
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.detail, exc.field, **exc.extra),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def store_error_response(exc: Exception) -> JSONResponse:
    """503 for a session store that failed (the database is down or unreachable)."""
    logger.error("serve: the session store failed: %s", exc)
    return JSONResponse(
        error_body("the database is unavailable; try again"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def store_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Answer a `StoreError` with 503."""
    return store_error_response(exc)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own HTTP errors (unknown path, wrong method...), in the same shape."""
    status = int(getattr(exc, "status_code", 500))
    detail = str(getattr(exc, "detail", "") or "error")
    return JSONResponse(
        error_body(detail), status_code=status, headers=getattr(exc, "headers", None)
    )


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation errors, in the same shape (422, the field named)."""
    errors: list[dict[str, Any]] = list(getattr(exc, "errors", lambda: [])())
    if not errors:
        return JSONResponse(error_body("the request is not valid"), status_code=422)
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = str(first.get("msg", "is not valid"))
    detail = f"{field}: {message}" if field else message
    return JSONResponse(error_body(detail, field), status_code=422)
