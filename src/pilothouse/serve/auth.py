"""Who is calling: a bearer security key, a JWT, or nobody (auth off).

- **Security key** (``create_app(security_key=...)``): ``Authorization: Bearer <key>``,
  compared in constant time. The key identifies a trusted client (your own backend), which may
  act for any user: the ``user_id`` of a request is taken from the request.
- **JWT** (``create_app(jwt=JWTConfig(...))``): RS256/ES256 with a public key, or HS256 with a
  shared secret, checked by PyJWT (signature, ``exp``, and ``aud``/``iss`` when configured).
  ``sub`` is the user id, and every request acts as that user only: another user's sessions,
  runs and memories answer 404, and a ``user_id`` in the request body is ignored. Scopes
  (the ``scope`` claim, space-separated, or a ``scopes`` list) gate the routes:
  ``agents:read``, ``agents:run``, ``sessions:read``, ``sessions:write``, ``memories:read``,
  ``memories:write``; ``admin`` grants them all and lifts the per-user restriction.

Both may be configured: a bearer equal to the key is the key, anything else must be a valid
JWT. Neither the key nor a token is ever logged or echoed in an error.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pilothouse.serve.errors import ApiError, error_body

__all__ = [
    "SCOPES",
    "Authenticator",
    "JWTConfig",
    "Principal",
    "current_principal",
    "protect",
    "require_scope",
]

SCOPES = (
    "agents:read",
    "agents:run",
    "sessions:read",
    "sessions:write",
    "memories:read",
    "memories:write",
    "admin",
)
_BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class JWTConfig:
    """How to verify JSON Web Tokens.

    Args:
        key: The RS256/ES256 public key (PEM) or the HS256 shared secret.
        algorithms: Accepted algorithms; by default RS256 for a PEM key, else HS256. Never
            mix a public-key algorithm with HS256 for one key.
        audience, issuer: When given, tokens must carry this ``aud`` / ``iss``.
        leeway: Seconds of clock skew allowed on ``exp``/``nbf``/``iat``.
        user_id_claim: The claim that holds the user id.
        enforce_scopes: Check the route's scope against the token's scopes. When off, any
            valid token may use every route (still only as its own user).
    """

    key: str | bytes
    algorithms: Sequence[str] | None = None
    audience: str | Sequence[str] | None = None
    issuer: str | None = None
    leeway: float = 0.0
    user_id_claim: str = "sub"
    enforce_scopes: bool = True

    def resolved_algorithms(self) -> list[str]:
        """The algorithms to accept (see ``algorithms``)."""
        if self.algorithms:
            return list(self.algorithms)
        key = self.key.decode() if isinstance(self.key, bytes) else self.key
        return ["RS256"] if key.lstrip().startswith("-----BEGIN") else ["HS256"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request.

    ``kind`` is ``"anonymous"`` (auth is off), ``"key"`` (the security key) or ``"jwt"``;
    ``user_id`` is the token's user for ``"jwt"``, else None.
    """

    kind: Literal["anonymous", "key", "jwt"]
    user_id: str | None = None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)
    enforce_scopes: bool = True

    @property
    def is_admin(self) -> bool:
        """Whether this caller may act for any user (auth off, the key, or an admin token)."""
        return self.kind != "jwt" or "admin" in self.scopes

    def allows(self, scope: str) -> bool:
        """Whether this caller holds ``scope``."""
        if self.kind != "jwt" or not self.enforce_scopes:
            return True
        return scope in self.scopes or "admin" in self.scopes

    def owns(self, user_id: str | None) -> bool:
        """Whether this caller may see what belongs to ``user_id``."""
        return self.is_admin or (user_id is not None and user_id == self.user_id)

    def user_for(self, requested: str | None) -> str | None:
        """The user a request acts for: the token's user, or (for admins) the one asked."""
        if self.is_admin:
            return requested
        return self.user_id


ANONYMOUS = Principal("anonymous")


class Authenticator:
    """Turns an ``Authorization`` header into a `Principal`, or refuses with 401."""

    def __init__(self, security_key: str | None = None, jwt: JWTConfig | None = None) -> None:
        if security_key is not None and (not isinstance(security_key, str) or not security_key):
            raise ValueError("create_app(): security_key must be a non-empty string.")
        if jwt is not None and not isinstance(jwt, JWTConfig):
            raise TypeError("create_app(): jwt must be a pilothouse.serve.JWTConfig.")
        self._key = security_key.encode() if security_key else None
        self._jwt = jwt
        self._algorithms = jwt.resolved_algorithms() if jwt is not None else []
        if jwt is not None:
            import jwt as pyjwt  # imported now, not on the first request

            self._pyjwt: Any = pyjwt

    @property
    def enabled(self) -> bool:
        """Whether requests must authenticate."""
        return self._key is not None or self._jwt is not None

    def authenticate(self, authorization: str | None) -> Principal:
        """Check ``authorization`` (the header's value); raise ApiError(401) when refused."""
        if not self.enabled:
            return ANONYMOUS
        if not authorization:
            raise ApiError(
                401, "authentication required: send Authorization: Bearer <token>", headers=_BEARER
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401, "the Authorization header must be 'Bearer <token>'", headers=_BEARER
            )
        if self._key is not None and hmac.compare_digest(token.encode(), self._key):
            return Principal("key")
        if self._jwt is None:
            raise ApiError(401, "invalid security key", headers=_BEARER)
        return self._decode(token, self._jwt)

    def _decode(self, token: str, config: JWTConfig) -> Principal:
        pyjwt = self._pyjwt
        try:
            claims = pyjwt.decode(
                token,
                config.key,
                algorithms=self._algorithms,
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway,
                options={"require": ["exp", config.user_id_claim]},
            )
        except pyjwt.PyJWTError as exc:
            # PyJWT's messages name the failed check, never the token itself.
            raise ApiError(401, f"invalid token: {exc}", headers=_BEARER) from None
        user = claims.get(config.user_id_claim)
        if not isinstance(user, str) or not user:
            raise ApiError(
                401, f"invalid token: '{config.user_id_claim}' must be a string", headers=_BEARER
            )
        return Principal(
            "jwt",
            user_id=user,
            scopes=_scopes(claims),
            claims=claims,
            enforce_scopes=config.enforce_scopes,
        )


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for name in ("scope", "scp", "scopes"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list | tuple):
            found.update(str(v) for v in value)
    return frozenset(found)


def _authenticator(request: Request) -> Authenticator:
    state = getattr(request.app.state, "pilothouse", None)
    if state is None:
        raise RuntimeError(
            "pilothouse auth dependencies work inside an app made by pilothouse.serve.create_app"
        )
    auth: Authenticator = state.authenticator
    return auth


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (401 when authentication fails).

    Computed once per request and cached on ``request.state.principal``.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    principal = _authenticator(request).authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


def require_scope(*scopes: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """FastAPI dependency factory: the authenticated caller, who must hold one of ``scopes``
    (403 otherwise)::

        @router.get("/things")
        async def things(principal: Principal = Depends(require_scope("agents:read"))): ...
    """
    unknown = [s for s in scopes if s not in SCOPES and ":" not in s]
    if unknown:
        raise ValueError(f"require_scope(): unknown scope {unknown[0]!r}; known: {SCOPES}")

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if scopes and not any(principal.allows(scope) for scope in scopes):
            raise ApiError(403, f"this token lacks the scope {' or '.join(scopes)!s}")
        return principal

    dependency.__name__ = "require_" + "_or_".join(s.replace(":", "_") for s in scopes)
    return dependency


def protect(app: ASGIApp, *scopes: str) -> ASGIApp:
    """Wrap an ASGI app mounted on a `create_app` app (``mounts={"/mcp": protect(mcp_app,
    "agents:run")}``) with the service's authentication: requests without valid credentials
    get 401, without one of ``scopes`` 403 (JSON, as everywhere). The caller's `Principal` is
    put at ``scope["state"]["principal"]`` for the wrapped app.
    """
    check = require_scope(*scopes)

    async def protected(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal = await check(request)
        except ApiError as exc:
            from starlette.responses import JSONResponse

            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = JSONResponse(
                error_body(exc.detail, exc.field), status_code=exc.status_code, headers=exc.headers
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await app(scope, receive, send)

    return protected
