from __future__ import annotations

import asyncio
import datetime
import threading
import types
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, BeforeValidator

from pilothouse.exceptions import ToolArgumentsError
from pilothouse.tools import INJECTED_PARAMETERS, Function, tool


class Query(BaseModel):
    text: str
    limit: int = 10


def test_injected_parameter_names() -> None:
    assert (
        frozenset(
            {
                "agent",
                "run_context",
                "session_state",
                "dependencies",
                "images",
                "audio",
                "videos",
                "files",
            }
        )
        == INJECTED_PARAMETERS
    )


async def test_injected_values_passed_and_hidden_from_schema() -> None:
    seen: dict[str, Any] = {}

    @tool
    def remember(fact: str, agent: Any, run_context: Any = None, session_state: Any = None) -> str:
        """Remember a fact."""
        seen.update(agent=agent, run_context=run_context, session_state=session_state)
        return fact

    assert remember.injected == frozenset({"agent", "run_context", "session_state"})
    assert set(remember.parameters["properties"]) == {"fact"}
    assert remember.parameters["required"] == ["fact"]
    agent, context = object(), object()
    result = await remember.acall(
        {"fact": "sky is blue"}, {"agent": agent, "run_context": context, "images": [1]}
    )
    assert result == "sky is blue"
    # Declared but not supplied: None, even over a Python default.
    assert seen == {"agent": agent, "run_context": context, "session_state": None}


async def test_injected_missing_mapping_gives_none() -> None:
    @tool
    def f(agent: Any) -> Any:
        return agent

    assert await f.acall({}) is None


async def test_arguments_converted_before_call() -> None:
    received: list[Any] = []

    @tool
    def search(query: Query, day: datetime.date, count: int) -> None:
        received.extend([query, day, count])

    await search.acall('{"query": {"text": "cats"}, "day": "2024-05-01", "count": "2"}')
    assert received == [Query(text="cats"), datetime.date(2024, 5, 1), 2]
    assert isinstance(received[0], Query)


async def test_invalid_arguments_raise_before_call() -> None:
    calls: list[int] = []

    @tool
    def f(n: int) -> None:
        calls.append(n)

    with pytest.raises(ToolArgumentsError, match="- n: missing required parameter"):
        await f.acall({})
    assert calls == []


async def test_sync_tool_runs_in_worker_thread() -> None:
    @tool
    def where() -> int:
        return threading.get_ident()

    loop_thread = threading.get_ident()
    assert await where.acall({}) != loop_thread
    assert await where.acall({}, inline_sync=True) == loop_thread


async def test_sync_tool_does_not_block_the_loop() -> None:
    started = threading.Event()
    release = threading.Event()

    @tool
    def slow() -> str:
        started.set()
        release.wait(5)
        return "done"

    task = asyncio.create_task(slow.acall({}))
    # The loop stays free while the tool blocks its worker thread.
    while not started.is_set():  # noqa: ASYNC110 - polling a threading.Event
        await asyncio.sleep(0.001)
    assert not task.done()
    release.set()
    assert await task == "done"


async def test_async_tool_awaited_on_loop() -> None:
    @tool
    async def fetch(url: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"url": url, "thread": threading.get_ident()}

    result = await fetch.acall({"url": "https://example.com"})
    assert result == {"url": "https://example.com", "thread": threading.get_ident()}


async def test_sync_generator_collected_in_worker_thread() -> None:
    threads: list[int] = []

    @tool
    def count(n: int) -> Iterator[Any]:
        for i in range(n):
            threads.append(threading.get_ident())
            yield i if i % 2 else str(i)
        yield {"done": True}

    assert await count.acall({"n": 3}) == '012{"done": true}'
    assert threads and all(ident != threading.get_ident() for ident in threads)


async def test_async_generator_collected() -> None:
    @tool
    async def stream(words: list[str]) -> AsyncIterator[str]:
        for word in words:
            await asyncio.sleep(0)
            yield word + " "

    assert await stream.acall({"words": ["a", "b"]}) == "a b "


async def test_exceptions_propagate() -> None:
    @tool
    def broken() -> None:
        raise RuntimeError("boom")

    @tool
    async def broken_async() -> None:
        raise KeyError("missing")

    with pytest.raises(RuntimeError, match="boom"):
        await broken.acall({})
    with pytest.raises(KeyError):
        await broken_async.acall({})


async def test_cache_results_reuses_results_per_arguments() -> None:
    calls: list[tuple[str, int]] = []

    @tool(cache_results=True, cache_ttl=60)
    def lookup(word: str, n: int = 1) -> str:
        calls.append((word, n))
        return word * n

    assert await lookup.acall({"word": "a", "n": 2}) == "aa"
    # Same arguments, spelt differently: key order and lax "2" do not matter.
    assert await lookup.acall('{"n": "2", "word": "a"}') == "aa"
    assert await lookup.acall({"word": "b"}) == "b"
    assert calls == [("a", 2), ("b", 1)]
    lookup.clear_cache()
    await lookup.acall({"word": "a", "n": 2})
    assert len(calls) == 3


async def test_cache_not_used_without_flag_and_errors_not_cached() -> None:
    calls: list[int] = []

    @tool
    def plain() -> int:
        calls.append(1)
        return len(calls)

    @tool(cache_results=True)
    def flaky() -> int:
        calls.append(2)
        if calls.count(2) == 1:
            raise ValueError("first call fails")
        return 42

    assert [await plain.acall({}), await plain.acall({})] == [1, 2]
    with pytest.raises(ValueError):
        await flaky.acall({})
    assert await flaky.acall({}) == 42
    assert await flaky.acall({}) == 42
    assert calls.count(2) == 2


async def test_cached_none_result_is_a_hit() -> None:
    calls: list[int] = []

    @tool(cache_results=True)
    def nothing() -> None:
        calls.append(1)

    assert await nothing.acall({}) is None
    assert await nothing.acall({}) is None
    assert calls == [1]


async def test_positional_only_parameters_passed_positionally() -> None:
    def f(a: int, b: int = 2, /, c: int = 3) -> tuple[int, int, int]:
        return a, b, c

    function = Function.from_callable(f)
    assert await function.acall({"a": 1}) == (1, 2, 3)
    assert await function.acall({"a": 1, "c": 9}) == (1, 2, 9)


async def test_bound_methods_call_their_own_instance() -> None:
    class Counter:
        def __init__(self, start: int) -> None:
            self.value = start

        def add(self, amount: int) -> int:
            """Add to the counter."""
            self.value += amount
            return self.value

    first, second = Counter(0), Counter(100)
    add_first = Function.from_callable(first.add)
    add_second = Function.from_callable(second.add)
    assert add_first.parameters is add_second.parameters
    assert await add_first.acall({"amount": 1}) == 1
    assert await add_second.acall({"amount": "5"}) == 105
    assert (first.value, second.value) == (1, 105)


async def test_callable_instance() -> None:
    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        async def __call__(self, name: str) -> str:
            """Greet someone."""
            return f"{self.greeting}, {name}"

    function = Function.from_callable(Greeter("Hi"), name="greet")
    assert function.description == "Greet someone."
    assert list(function.parameters["properties"]) == ["name"]
    assert await function.acall({"name": "Ann"}) == "Hi, Ann"


async def test_sync_function_returning_awaitable_is_awaited() -> None:
    async def later(x: int) -> int:
        return x * 2

    def f(x: int) -> Any:
        return later(x)

    assert await Function.from_callable(f).acall({"x": 4}) == 8


async def test_cache_key_of_values_json_cannot_hold() -> None:
    calls: list[object] = []

    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    @tool(cache_results=True)
    def describe(thing) -> str:  # type: ignore[no-untyped-def]  # untyped: accepts anything
        calls.append(thing)
        return str(thing)

    first, second = Opaque(), Opaque()
    assert await describe.acall({"thing": first}) == "opaque"
    # The key falls back to str() of values JSON cannot hold: equal strings share an entry.
    assert await describe.acall({"thing": second}) == "opaque"
    assert calls == [first]


async def test_inline_sync_generator_drained_on_the_loop_thread() -> None:
    threads: list[int] = []

    @tool
    def count(n: int) -> Iterator[int]:
        for i in range(n):
            threads.append(threading.get_ident())
            yield i

    assert await count.acall({"n": 3}, inline_sync=True) == "012"
    assert threads == [threading.get_ident()] * 3


async def test_sync_function_returning_async_generator_is_drained() -> None:
    async def words() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    def f() -> AsyncIterator[str]:
        return words()

    assert await Function.from_callable(f).acall({}) == "ab"
    assert await Function.from_callable(f).acall({}, inline_sync=True) == "ab"


async def test_other_awaitables_are_awaited_once() -> None:
    class Later:
        def __await__(self) -> Generator[Any, None, str]:
            yield from asyncio.sleep(0).__await__()
            return "done"

    def f() -> Later:
        return Later()

    assert await Function.from_callable(f).acall({}, inline_sync=True) == "done"


async def test_results_are_returned_as_is() -> None:
    class Text(str):
        pass

    text, mapping, items = Text("hi"), {"a": [1]}, (1, 2)

    @tool
    async def give(which: str) -> Any:
        return {"text": text, "mapping": mapping, "items": items}[which]

    for which, value in (("text", text), ("mapping", mapping), ("items", items)):
        assert await give.acall({"which": which}) is value


async def test_arguments_mapping_kinds_and_no_mutation() -> None:
    seen: list[dict[str, Any]] = []

    @tool
    async def record(items: list[int], limit: int = 1) -> int:
        seen.append({"items": items, "limit": limit})
        return len(items)

    arguments: dict[str, Any] = {"items": ["1", 2]}
    assert await record.acall(arguments) == 2
    assert arguments == {"items": ["1", 2]}
    assert await record.acall(types.MappingProxyType({"items": [3], "limit": "4"})) == 1
    assert seen == [{"items": [1, 2], "limit": 1}, {"items": [3], "limit": 4}]


def _explode(value: object) -> object:
    raise LookupError("not a validation problem")


# At module level: this module's annotations are strings, resolved in its globals.
Exploding = Annotated[int, BeforeValidator(_explode)]


async def test_validator_errors_other_than_validation_errors_propagate() -> None:
    @tool
    async def f(x: Exploding) -> int:
        return x

    with pytest.raises(LookupError, match="not a validation problem"):
        await f.acall({"x": 1})
