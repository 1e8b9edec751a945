"""Authentication: the security key, JWT (HS256 and RS256), scopes, and the dependency that
other routers reuse."""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends

from pilothouse import Agent
from pilothouse.models.test import TestModel
from pilothouse.serve import (
    ApiError,
    Authenticator,
    JWTConfig,
    Principal,
    create_app,
    protect,
    require_scope,
)

SECRET = "s3cret-for-tests-" + "x" * 16


def _hs(claims: dict[str, Any], secret: str = SECRET) -> str:
    return str(jwt.encode({"exp": int(time.time()) + 60, **claims}, secret, algorithm="HS256"))


def _refused(auth: Authenticator, header: str | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        auth.authenticate(header)
    assert caught.value.status_code == 401
    return caught.value


def test_auth_off_is_anonymous_and_may_act_for_anyone() -> None:
    principal = Authenticator().authenticate(None)
    assert principal.kind == "anonymous" and principal.is_admin
    assert principal.user_for("ann") == "ann" and principal.allows("agents:run")


def test_security_key() -> None:
    auth = Authenticator(security_key="the-key")
    assert auth.authenticate("Bearer the-key").kind == "key"
    assert auth.authenticate("bearer   the-key").kind == "key"
    for header in (None, "", "Bearer", "Bearer other", "Basic the-key", "the-key"):
        error = _refused(auth, header)
        assert "the-key" not in error.detail
        assert error.headers == {"WWW-Authenticate": "Bearer"}


def test_hs256_token_gives_user_and_scopes() -> None:
    auth = Authenticator(jwt=JWTConfig(key=SECRET))
    principal = auth.authenticate("Bearer " + _hs({"sub": "ann", "scope": "agents:run x:y"}))
    assert (principal.kind, principal.user_id) == ("jwt", "ann")
    assert principal.scopes == {"agents:run", "x:y"}
    assert principal.allows("agents:run") and not principal.allows("sessions:read")
    assert not principal.is_admin
    assert principal.user_for("bob") == "ann"
    assert principal.owns("ann") and not principal.owns("bob") and not principal.owns(None)
    listed = auth.authenticate("Bearer " + _hs({"sub": "ann", "scopes": ["memories:read"]}))
    assert listed.allows("memories:read")
    admin = auth.authenticate("Bearer " + _hs({"sub": "root", "scope": "admin"}))
    assert admin.is_admin and admin.allows("sessions:write") and admin.user_for("bob") == "bob"


def test_bad_tokens_are_refused_without_echoing_them() -> None:
    auth = Authenticator(jwt=JWTConfig(key=SECRET, audience="pilothouse", issuer="https://idp"))
    good = {"sub": "ann", "aud": "pilothouse", "iss": "https://idp"}
    assert auth.authenticate("Bearer " + _hs(good)).user_id == "ann"
    bad = [
        _hs(good, secret="another-secret-of-32-bytes-length!"),
        _hs({**good, "exp": int(time.time()) - 10}),
        _hs({**good, "aud": "elsewhere"}),
        _hs({**good, "iss": "https://evil"}),
        _hs({"aud": "pilothouse", "iss": "https://idp"}),
        _hs({**good, "sub": ""}),
        str(jwt.encode({**good, "exp": int(time.time()) + 60}, key=None, algorithm="none")),
        "not.a.token",
    ]
    for token in bad:
        error = _refused(auth, "Bearer " + token)
        assert token not in error.detail and error.detail.startswith("invalid token")


def test_rs256_with_a_public_key_and_no_algorithm_confusion() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    config = JWTConfig(key=public_pem)
    assert config.resolved_algorithms() == ["RS256"]
    auth = Authenticator(jwt=config)
    signed = jwt.encode({"sub": "ann", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    assert auth.authenticate(f"Bearer {signed}").user_id == "ann"
    # An HS256 token made with the public key as its secret must not pass.
    forged = jwt.encode(
        {"sub": "mallory", "exp": int(time.time()) + 60},
        "forged-with-a-32-byte-secret-key!",
        algorithm="HS256",
    )
    _refused(auth, f"Bearer {forged}")


def test_key_and_jwt_together() -> None:
    auth = Authenticator(security_key="k" * 20, jwt=JWTConfig(key=SECRET))
    assert auth.authenticate("Bearer " + "k" * 20).kind == "key"
    assert auth.authenticate("Bearer " + _hs({"sub": "ann"})).kind == "jwt"
    _refused(auth, "Bearer nope")


def test_unenforced_scopes_allow_every_route_but_keep_the_user() -> None:
    auth = Authenticator(jwt=JWTConfig(key=SECRET, enforce_scopes=False))
    principal = auth.authenticate("Bearer " + _hs({"sub": "ann"}))
    assert principal.allows("sessions:write") and principal.user_for("bob") == "ann"


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="security_key"):
        Authenticator(security_key="")
    with pytest.raises(TypeError, match="JWTConfig"):
        Authenticator(jwt={"key": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown scope"):
        require_scope("agents")


async def test_other_routers_reuse_the_dependency() -> None:
    router = APIRouter()

    @router.get("/whoami")
    async def whoami(principal: Annotated[Principal, Depends(require_scope("agents:read"))]) -> Any:
        return {"user": principal.user_id, "kind": principal.kind}

    app = create_app(Agent(model=TestModel()), jwt=JWTConfig(key=SECRET), routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        assert (await client.get("/whoami")).status_code == 401
        no_scope = {"Authorization": "Bearer " + _hs({"sub": "ann"})}
        assert (await client.get("/whoami", headers=no_scope)).status_code == 403
        ok = {"Authorization": "Bearer " + _hs({"sub": "ann", "scope": "agents:read"})}
        assert (await client.get("/whoami", headers=ok)).json() == {"user": "ann", "kind": "jwt"}


async def test_a_mounted_asgi_app_is_protected_by_the_same_auth() -> None:
    seen: list[Principal] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["state"]["principal"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})

    app = create_app(
        Agent(model=TestModel()),
        jwt=JWTConfig(key=SECRET),
        mounts={"/mcp": protect(inner, "agents:run")},
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        refused = await client.post("/mcp/")
        assert refused.status_code == 401 and refused.json()["field"] is None
        reader = {"Authorization": "Bearer " + _hs({"sub": "ann", "scope": "agents:read"})}
        assert (await client.post("/mcp/", headers=reader)).status_code == 403
        runner = {"Authorization": "Bearer " + _hs({"sub": "ann", "scope": "agents:run"})}
        ok = await client.post("/mcp/", headers=runner)
        assert ok.status_code == 200 and ok.text == "inner"
        assert [p.user_id for p in seen] == ["ann"]
