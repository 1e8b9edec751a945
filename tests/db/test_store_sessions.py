"""Conformance: sessions (create, read, list, delete) on every store."""

from __future__ import annotations

import pytest
from storekit import make_run

from pilothouse.db import SessionRecord, SessionStore


async def test_upsert_creates_a_session_with_every_field(store: SessionStore) -> None:
    created = await store.upsert_session("s-1", user_id="u-1", agent_id="a-1")
    assert isinstance(created, SessionRecord)
    assert (created.session_id, created.user_id, created.agent_id) == ("s-1", "u-1", "a-1")
    assert created.session_state == {}
    assert created.state_version == 0
    assert created.run_count == 0
    assert created.created_at > 0
    assert created.updated_at >= created.created_at
    assert await store.get_session("s-1") == created


async def test_get_session_of_unknown_id_is_none(store: SessionStore) -> None:
    assert await store.get_session("nope") is None


async def test_upsert_never_clobbers_an_existing_session(store: SessionStore) -> None:
    await store.upsert_session("s-1", user_id="u-1")
    assert await store.set_session_state("s-1", {"k": "v"}, expected_version=0) == 1
    await store.insert_run(make_run("s-1"))

    again = await store.upsert_session("s-1", user_id="someone-else", agent_id="a-9")

    # State, version, run count and the existing user stay; only the missing agent is filled.
    assert again.session_state == {"k": "v"}
    assert again.state_version == 1
    assert again.run_count == 1
    assert again.user_id == "u-1"
    assert again.agent_id == "a-9"
    assert await store.get_session("s-1") == again


async def test_list_sessions_newest_first_with_filters_and_paging(store: SessionStore) -> None:
    for i in range(5):
        await store.upsert_session(
            f"s-{i}",
            user_id="u-even" if i % 2 == 0 else "u-odd",
            agent_id="a-1" if i < 3 else "a-2",
        )

    everything = await store.list_sessions()
    assert [s.session_id for s in everything] == ["s-4", "s-3", "s-2", "s-1", "s-0"]
    even = await store.list_sessions(user_id="u-even")
    assert [s.session_id for s in even] == ["s-4", "s-2", "s-0"]
    both = await store.list_sessions(user_id="u-even", agent_id="a-1")
    assert [s.session_id for s in both] == ["s-2", "s-0"]
    page = await store.list_sessions(limit=2, offset=1)
    assert [s.session_id for s in page] == ["s-3", "s-2"]
    assert await store.list_sessions(user_id="nobody") == []


async def test_delete_session_removes_its_runs_and_lease(store: SessionStore) -> None:
    run = make_run("s-1")
    await store.insert_run(run)
    await store.insert_run(make_run("s-2"))
    assert await store.acquire_session_lease("s-1", "holder", 30)

    assert await store.delete_session("s-1") is True

    assert await store.get_session("s-1") is None
    assert await store.get_run(run["run_id"]) is None
    assert await store.list_runs("s-1") == []
    assert await store.acquire_session_lease("s-1", "another", 30)
    assert len(await store.list_runs("s-2")) == 1
    assert await store.delete_session("s-1") is False


@pytest.mark.parametrize("bad", ["", None, 5])
async def test_session_ids_must_be_non_empty_strings(store: SessionStore, bad: object) -> None:
    with pytest.raises(ValueError, match="session_id"):
        await store.upsert_session(bad)  # type: ignore[arg-type]


async def test_listing_rejects_negative_limits(store: SessionStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list_sessions(limit=-1)
    with pytest.raises(ValueError, match="offset"):
        await store.list_sessions(offset=-1)
