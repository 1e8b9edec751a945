"""Conformance: session state with optimistic concurrency on every store."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pilothouse.db import SessionStore, StaleStateError


async def test_state_of_an_unknown_session_is_empty_at_version_zero(store: SessionStore) -> None:
    assert await store.get_session_state("s-1") == ({}, 0)


async def test_set_with_the_current_version_wins_and_bumps_it(store: SessionStore) -> None:
    assert await store.set_session_state("s-1", {"n": 1}, expected_version=0) == 1
    assert await store.set_session_state("s-1", {"n": 2}, expected_version=1) == 2

    assert await store.get_session_state("s-1") == ({"n": 2}, 2)
    session = await store.get_session("s-1")
    assert session is not None
    assert (session.session_state, session.state_version) == ({"n": 2}, 2)


async def test_set_with_a_stale_version_changes_nothing(store: SessionStore) -> None:
    await store.set_session_state("s-1", {"n": 1}, expected_version=0)
    await store.set_session_state("s-1", {"n": 2}, expected_version=1)

    assert await store.set_session_state("s-1", {"n": 99}, expected_version=1) is None
    assert await store.set_session_state("s-1", {"n": 99}, expected_version=0) is None
    assert await store.set_session_state("s-2", {"n": 99}, expected_version=3) is None

    assert await store.get_session_state("s-1") == ({"n": 2}, 2)
    assert await store.get_session("s-2") is None


async def test_state_is_stored_as_a_copy(store: SessionStore) -> None:
    state: dict[str, Any] = {"items": [1]}
    await store.set_session_state("s-1", state, expected_version=0)
    state["items"].append(2)
    read, _ = await store.get_session_state("s-1")
    read["items"].append(3)
    assert await store.get_session_state("s-1") == ({"items": [1]}, 1)


async def test_state_must_be_json(store: SessionStore) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await store.set_session_state("s-1", {"x": {1, 2}}, expected_version=0)
    with pytest.raises(ValueError, match="JSON"):
        await store.set_session_state("s-1", {"x": math.nan}, expected_version=0)
    with pytest.raises(TypeError, match="dict"):
        await store.set_session_state("s-1", [1, 2], expected_version=0)  # type: ignore[arg-type]
    assert await store.get_session_state("s-1") == ({}, 0)


async def test_update_session_state_applies_fn(store: SessionStore) -> None:
    await store.set_session_state("s-1", {"cart": ["tea"]}, expected_version=0)

    state, version = await store.update_session_state(
        "s-1", lambda s: {**s, "cart": [*s["cart"], "milk"]}
    )
    assert (state, version) == ({"cart": ["tea", "milk"]}, 2)

    def in_place(s: dict[str, Any]) -> None:
        s["paid"] = True

    state, version = await store.update_session_state("s-1", in_place)
    assert (state, version) == ({"cart": ["tea", "milk"], "paid": True}, 3)
    assert await store.get_session_state("s-1") == (state, 3)


async def test_update_session_state_gives_up_with_stale_state_error(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.set_session_state("s-1", {"n": 1}, expected_version=0)
    calls = 0

    async def always_stale(session_id: str) -> tuple[dict[str, Any], int]:
        # Another writer always moves the version on between our read and our write.
        nonlocal calls
        calls += 1
        return {"n": 1}, 0

    monkeypatch.setattr(store, "get_session_state", always_stale)
    with pytest.raises(StaleStateError):
        await store.update_session_state("s-1", lambda s: {"n": 2}, retries=3)
    assert calls == 4
    monkeypatch.undo()
    assert await store.get_session_state("s-1") == ({"n": 1}, 1)
