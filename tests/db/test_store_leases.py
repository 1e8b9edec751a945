"""Conformance: session leases (exclusive, re-entrant, expiring, released) on every store."""

from __future__ import annotations

import asyncio

import pytest

from pilothouse.db import LeaseUnavailableError, SessionStore, new_lease_owner


async def test_a_lease_is_exclusive_until_released(store: SessionStore) -> None:
    assert await store.acquire_session_lease("s-1", "alice", 30) is True
    assert await store.acquire_session_lease("s-1", "bob", 30) is False
    # Another session's lease is independent.
    assert await store.acquire_session_lease("s-2", "bob", 30) is True

    assert await store.release_session_lease("s-1", "bob") is False
    assert await store.acquire_session_lease("s-1", "bob", 30) is False
    assert await store.release_session_lease("s-1", "alice") is True
    assert await store.release_session_lease("s-1", "alice") is False
    assert await store.acquire_session_lease("s-1", "bob", 30) is True


async def test_the_holder_may_acquire_again(store: SessionStore) -> None:
    assert await store.acquire_session_lease("s-1", "alice", 30)
    assert await store.acquire_session_lease("s-1", "alice", 30)
    assert not await store.acquire_session_lease("s-1", "bob", 30)


async def test_an_expired_lease_can_be_taken_over(store: SessionStore) -> None:
    # A holder that crashed never releases: its lease must lapse by itself. The TTL leaves
    # room for a slow commit on a loaded machine between the two acquisitions.
    assert await store.acquire_session_lease("s-1", "crashed", 1.5)
    assert not await store.acquire_session_lease("s-1", "bob", 30)
    await asyncio.sleep(1.6)
    assert await store.acquire_session_lease("s-1", "bob", 30)
    assert not await store.renew_session_lease("s-1", "crashed", 30)
    assert not await store.release_session_lease("s-1", "crashed")
    assert not await store.acquire_session_lease("s-1", "crashed", 30)


async def test_renewal_keeps_a_lease_alive(store: SessionStore) -> None:
    # Renewed every 0.3 s, well before its 1.2 s TTL, even when a commit is slow; four renewals
    # outlive the first TTL.
    assert await store.acquire_session_lease("s-1", "alice", 1.2)
    for _ in range(5):
        await asyncio.sleep(0.3)
        assert await store.renew_session_lease("s-1", "alice", 1.2)
        assert not await store.acquire_session_lease("s-1", "bob", 30)
    assert not await store.renew_session_lease("s-1", "bob", 30)
    assert not await store.renew_session_lease("s-2", "alice", 30)


async def test_concurrent_acquirers_get_one_winner(store: SessionStore) -> None:
    owners = [f"owner-{i}" for i in range(20)]
    won = await asyncio.gather(*(store.acquire_session_lease("s-1", o, 30) for o in owners))
    assert sum(won) == 1


async def test_ttl_must_be_positive(store: SessionStore) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire_session_lease("s-1", "alice", 0)
    with pytest.raises(ValueError, match="ttl"):
        await store.renew_session_lease("s-1", "alice", -1)


async def test_session_lease_block_serialises_read_modify_write(store: SessionStore) -> None:
    await store.set_session_state("s-1", {"n": 0}, expected_version=0)

    async def bump() -> None:
        async with store.session_lease("s-1", ttl=5):
            state, version = await store.get_session_state("s-1")
            await asyncio.sleep(0.01)  # a tool doing work between reading and writing
            new = await store.set_session_state(
                "s-1", {"n": state["n"] + 1}, expected_version=version
            )
            assert new == version + 1  # never stale: nobody else writes while we hold it

    await asyncio.gather(*(bump() for _ in range(8)))
    assert await store.get_session_state("s-1") == ({"n": 8}, 9)
    # Released at the end of every block.
    assert await store.acquire_session_lease("s-1", "after", 30)


async def test_session_lease_renews_while_held_and_times_out_others(
    store: SessionStore,
) -> None:
    # A ttl long enough that renewals (every ttl/3) still land in time on a loaded machine.
    async with store.session_lease("s-1", ttl=1.5) as lease:
        assert lease.owner and not lease.lost
        await asyncio.sleep(3.5)  # more than two ttls: only renewal keeps it
        assert not await store.acquire_session_lease("s-1", "intruder", 30)
        with pytest.raises(LeaseUnavailableError):
            async with store.session_lease("s-1", ttl=5, wait=0.2):
                pytest.fail("entered a lease that another owner holds")
        assert not lease.lost
    assert await store.acquire_session_lease("s-1", "intruder", 30)


async def test_lease_owners_are_unique() -> None:
    assert len({new_lease_owner() for _ in range(100)}) == 100
