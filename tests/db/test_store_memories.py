"""Conformance: user memories on every store."""

from __future__ import annotations

from pilothouse.db import MemoryRecord, SessionStore


async def test_add_and_read_memories_oldest_first(store: SessionStore) -> None:
    first = await store.add_memory("u-1", "likes green tea", topics=["food", "drinks"])
    second = await store.add_memory("u-1", "lives in Lyon")
    await store.add_memory("u-2", "someone else")

    assert isinstance(first, MemoryRecord)
    assert first.memory_id != second.memory_id
    assert (first.user_id, first.memory, first.topics) == (
        "u-1",
        "likes green tea",
        ["food", "drinks"],
    )
    assert second.topics == []
    assert await store.get_user_memories("u-1") == [first, second]
    assert await store.get_user_memories("nobody") == []


async def test_limit_gives_the_newest_memories_oldest_first(store: SessionStore) -> None:
    added = [await store.add_memory("u-1", f"fact {i}") for i in range(5)]
    latest = await store.get_user_memories("u-1", limit=2)
    assert [m.memory for m in latest] == ["fact 3", "fact 4"]
    assert latest == added[3:]
    assert await store.get_user_memories("u-1", limit=0) == []


async def test_update_memory(store: SessionStore) -> None:
    memory = await store.add_memory("u-1", "likes tea", topics=["food"])

    changed = await store.update_memory(memory.memory_id, "likes coffee now")
    assert changed is not None
    assert (changed.memory, changed.topics) == ("likes coffee now", ["food"])
    assert changed.updated_at >= memory.updated_at
    retopiced = await store.update_memory(memory.memory_id, "likes coffee", topics=["drinks"])
    assert retopiced is not None and retopiced.topics == ["drinks"]
    assert await store.get_user_memories("u-1") == [retopiced]
    assert await store.update_memory("missing", "x") is None


async def test_delete_and_clear_memories(store: SessionStore) -> None:
    kept = await store.add_memory("u-1", "one")
    gone = await store.add_memory("u-1", "two")
    await store.add_memory("u-2", "other user")

    assert await store.delete_memory(gone.memory_id) is True
    assert await store.delete_memory(gone.memory_id) is False
    assert await store.get_user_memories("u-1") == [kept]

    assert await store.clear_memories("u-1") == 1
    assert await store.get_user_memories("u-1") == []
    assert [m.memory for m in await store.get_user_memories("u-2")] == ["other user"]
