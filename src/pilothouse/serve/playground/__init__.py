"""The playground: a chat page for the served agents, at ``/`` of the serving app.

Plain HTML, CSS and JavaScript modules shipped in this package (``static/``): no build step,
nothing fetched from any other host (a Content-Security-Policy allows only the app itself).
The page talks to the app's own API: ``GET /agents``, the AG-UI endpoint for runs (streamed
markdown, tool calls, approvals and requested input), ``POST .../runs/{run_id}/cancel``,
``GET /sessions`` and ``GET /sessions/{id}/runs`` to reopen a conversation. The security key
(or a JWT) is asked for once, when the app refuses a request, and kept in the browser's
session storage (or local storage, if the person asks to be remembered).

The files are public: they hold no secret, and every API request they make is authenticated.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

from pilothouse.serve.errors import ApiError

__all__ = ["CONTENT_SECURITY_POLICY", "router"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _load() -> dict[str, tuple[bytes, str]]:
    """The static files, by name, read once (they are small)."""
    files: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files(__name__).joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


_FILES = _load()
router = APIRouter(include_in_schema=False)


def _file(name: str) -> Response:
    found = _FILES.get(name)
    if found is None:
        raise ApiError(404, f"no file {name!r} in the playground")
    content, media_type = found
    return Response(content, media_type=media_type, headers=_HEADERS)


@router.get("/")
async def page() -> Response:
    """The playground page."""
    return _file("index.html")


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    """A script or style sheet of the playground."""
    return _file(name)
