"""`DynamicToolkit` and `aresolve_toolset`: tools loaded asynchronously before each run."""

from __future__ import annotations

import asyncio
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.models.message import Message, ToolCall
from pilothouse.models.test import FunctionModel
from pilothouse.run import events as ev
from pilothouse.tools import (
    DynamicToolkit,
    Function,
    SchemaFunction,
    aresolve_toolset,
    cached_toolset,
    resolve_toolset,
)


def _tool(name: str) -> SchemaFunction:
    async def call(arguments: dict[str, Any], run_context: Any) -> str:
        return f"{name} ran for {run_context.user_id}"

    return SchemaFunction(
        call, name=name, description=None, parameters={"type": "object", "properties": {}}
    )


class Remote(DynamicToolkit):
    """Tools 'listed by a server': the names to offer change between loads."""

    def __init__(self, *names: str, failure: str | None = None) -> None:
        super().__init__(name="remote")
        self.names = list(names)
        self.failure = failure
        self.loads: list[Any] = []
        self._functions: list[Function] = []

    async def aload(self, run_context: Any) -> None:
        await asyncio.sleep(0)
        self.loads.append(run_context)
        if self.failure is not None:
            raise RuntimeError(self.failure)
        if [f.name for f in self._functions] != self.names:
            self._functions = [_tool(name) for name in self.names]

    def loaded_functions(self) -> list[Function]:
        return list(self._functions)


def search(query: str) -> str:
    """Search."""
    return query


def _call_everything(messages: list[Message], tools: list[Any]) -> Any:
    if messages[-1].role == "tool":
        return " | ".join(str(m.content) for m in messages if m.role == "tool")
    return [
        ToolCall(name=t.name, arguments={"query": "q"} if t.name == "search" else {}) for t in tools
    ]


async def test_each_run_loads_the_toolkit_first_and_sees_its_current_tools() -> None:
    remote = Remote("alpha")
    agent = Agent(model=FunctionModel(_call_everything), tools=[search, remote])
    first = await agent.arun("Go", user_id="ada")
    assert first.content == "q | alpha ran for ada"
    remote.names = ["alpha", "beta"]
    second = await agent.arun("Go", user_id="bob")
    assert second.content == "q | alpha ran for bob | beta ran for bob"
    assert [ctx.user_id for ctx in remote.loads] == ["ada", "bob"]
    assert [ctx.run_id for ctx in remote.loads] == [first.run_id, second.run_id]


async def test_a_list_with_a_dynamic_toolkit_is_not_served_from_the_cache() -> None:
    remote = Remote("alpha")
    tools = [search, remote]
    built = await aresolve_toolset(tools)
    assert [f.name for f in built.functions] == ["search", "alpha"]
    assert cached_toolset(tools) is None
    static = [search]
    built_static = resolve_toolset(static)
    assert cached_toolset(static) is built_static


async def test_a_toolkit_that_cannot_load_ends_the_run_with_an_error_event() -> None:
    remote = Remote(failure="the tool server is down")
    agent = Agent(model=FunctionModel(lambda m, t: "unreachable"), tools=[remote])
    events = [e async for e in agent.arun("Go", stream=True, stream_events=True)]
    failed = events[-1]
    assert isinstance(failed, ev.RunErrorEvent)
    assert failed.content == "the tool server is down"
    output = await agent.arun("Go")
    assert output.status is RunStatus.error


async def test_several_dynamic_toolkits_load_concurrently() -> None:
    started: list[str] = []
    both_started = asyncio.Event()
    release = asyncio.Event()

    class Slow(Remote):
        async def aload(self, run_context: Any) -> None:
            started.append(self.names[0])
            if len(started) == 2:
                both_started.set()
            await release.wait()
            await super().aload(run_context)

    one, two = Slow("one"), Slow("two")
    resolving = asyncio.create_task(aresolve_toolset([one, two]))
    # Both loads start before either finishes: they run concurrently.
    await asyncio.wait_for(both_started.wait(), 5)
    release.set()
    toolset = await asyncio.wait_for(resolving, 5)
    assert [f.name for f in toolset.functions] == ["one", "two"]


async def test_once_the_static_tools_are_built_resolution_stays_on_the_event_loop(
    monkeypatch: Any,
) -> None:
    threads: list[object] = []
    to_thread = asyncio.to_thread

    async def counting(fn: Any, *args: Any) -> Any:
        threads.append(fn)
        return await to_thread(fn, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting)

    def lookup(key: str) -> str:
        """Look something up."""
        return key

    remote = Remote("alpha")
    tools = [lookup, remote]
    first = await aresolve_toolset(tools)
    assert len(threads) == 1
    remote.names = ["alpha", "beta"]
    second = await aresolve_toolset(tools)
    assert len(threads) == 1, "the second resolution should not need a worker thread"
    assert [f.name for f in first.functions] == ["lookup", "alpha"]
    assert [f.name for f in second.functions] == ["lookup", "alpha", "beta"]
    assert second.functions[0] is first.functions[0]
