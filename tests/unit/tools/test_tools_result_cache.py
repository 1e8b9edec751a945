from __future__ import annotations

import asyncio

import pytest

from pilothouse.tools import tool
from pilothouse.tools.cache import ResultCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = ResultCache(ttl=10, clock=clock)
    cache.put("k", None)
    assert cache.get("k") == (True, None)
    clock.now += 9.9
    assert cache.get("k") == (True, None)
    clock.now += 0.1
    assert cache.get("k") == (False, None)
    assert len(cache) == 0


def test_least_recently_used_entry_evicted() -> None:
    cache = ResultCache(ttl=60, maxsize=2, clock=FakeClock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == (True, 1)  # "b" is now the least recently used
    cache.put("c", 3)
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 1)
    assert cache.get("c") == (True, 3)
    assert len(cache) == 2


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        ResultCache(ttl=1, maxsize=0)


async def test_tool_results_expire() -> None:
    calls: list[int] = []

    @tool(cache_results=True, cache_ttl=1.0)
    def now() -> int:
        calls.append(1)
        return len(calls)

    assert await now.acall({}) == 1
    assert await now.acall({}) == 1
    await asyncio.sleep(1.1)
    assert await now.acall({}) == 2


async def test_tool_result_cache_is_bounded() -> None:
    @tool(cache_results=True)
    def echo(n: int) -> int:
        return n

    for n in range(300):
        await echo.acall({"n": n}, inline_sync=True)
    assert echo._results is not None
    assert len(echo._results) == 256
