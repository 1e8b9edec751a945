"""`resolve_toolset`: the run loop's resolved tools, cached per list of entries."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import pilothouse.tools.resolve as resolve_module
from pilothouse.tools import Function, Toolkit, ToolSet, resolve_tools, resolve_toolset, tool


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    resolve_module._toolsets.clear()
    yield
    resolve_module._toolsets.clear()


def search(query: str) -> str:
    """Search the web."""
    return query


@tool(description="Delete a file.")
def delete(path: str) -> None:
    return None


class Notes(Toolkit):
    def __init__(self) -> None:
        super().__init__(name="notes", tools=[self.add_note, self.list_notes])

    def add_note(self, text: str) -> str:
        """Add a note."""
        return text

    def list_notes(self) -> list[str]:
        """List the notes."""
        return []


def test_toolset_matches_resolve_tools() -> None:
    notes = Notes()
    toolset = resolve_toolset([search, delete, notes])
    assert isinstance(toolset, ToolSet)
    assert toolset.functions == tuple(resolve_tools([search, delete, notes]))
    assert [f.name for f in toolset.functions] == ["search", "delete", "add_note", "list_notes"]
    assert toolset.definitions == tuple(f.definition for f in toolset.functions)
    assert toolset.definitions[1].description == "Delete a file."
    assert dict(toolset.by_name) == {f.name: f for f in toolset.functions}


def test_no_tools() -> None:
    empties: tuple[list[object] | tuple[object, ...] | None, ...] = (None, [], ())
    for empty in empties:
        toolset = resolve_toolset(empty)
        assert (toolset.functions, toolset.definitions, dict(toolset.by_name)) == ((), (), {})


def test_same_entries_give_the_same_toolset() -> None:
    notes = Notes()
    tools: list[object] = [search, delete, notes]
    first = resolve_toolset(tools)
    assert resolve_toolset(tools) is first
    assert resolve_toolset(list(tools)) is first  # another list with the same entries
    assert resolve_toolset(tuple(tools)) is first
    assert resolve_toolset([delete, search, notes]) is not first  # order matters
    assert resolve_toolset([search, delete, Notes()]) is not first  # another toolkit instance


def test_toolset_is_read_only() -> None:
    toolset = resolve_toolset([search])
    with pytest.raises(TypeError):
        toolset.by_name["other"] = delete  # type: ignore[index]
    with pytest.raises(AttributeError):
        toolset.functions = ()  # type: ignore[misc]


def test_entries_are_compared_by_identity_not_equality() -> None:
    class Lookup:
        """Equal whenever the tables are equal; unhashable, as __eq__ without __hash__ makes it."""

        def __init__(self, table: dict[str, str]) -> None:
            self.table = table

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Lookup) and other.table == self.table

        def __call__(self, key: str) -> str:
            return self.table[key]

    class SameNameToolkits(Toolkit):
        def __eq__(self, other: object) -> bool:
            return isinstance(other, Toolkit) and other.name == self.name

        def __hash__(self) -> int:
            return hash(self.name)

    first, second = Lookup({"a": "1"}), Lookup({"a": "1"})
    assert first == second
    one = resolve_toolset([first])
    other = resolve_toolset([second])
    assert one is not other
    assert other.functions[0].entrypoint is second

    kit_a = SameNameToolkits(name="kit", tools=[search])
    kit_b = SameNameToolkits(name="kit", tools=[delete])
    assert kit_a == kit_b
    assert resolve_toolset([kit_a]).functions[0].name == "search"
    assert resolve_toolset([kit_b]).functions[0].name == "delete"


def test_description_change_is_not_hidden_by_the_cache() -> None:
    function = Function.from_callable(search)
    tools = [function, delete]
    before = resolve_toolset(tools)
    assert before.definitions[0].description == "Search the web."
    function.description = "Search the web, in English."
    after = resolve_toolset(tools)
    assert after.definitions[0].description == "Search the web, in English."
    assert resolve_toolset(tools) is after


def test_rename_is_not_hidden_by_the_cache() -> None:
    function = Function.from_callable(search)
    tools = [function, delete]
    assert set(resolve_toolset(tools).by_name) == {"search", "delete"}
    function.name = "web_search"
    after = resolve_toolset(tools)
    assert set(after.by_name) == {"web_search", "delete"}
    assert after.definitions[0].name == "web_search"
    assert function.definition.name == "web_search"
    function.name = "delete"
    with pytest.raises(ValueError, match="two tools are named 'delete'"):
        resolve_toolset(tools)


def test_renaming_a_toolkit_tool_is_not_hidden_by_the_cache() -> None:
    notes = Notes()
    tools = [notes]
    assert resolve_toolset(tools).definitions[0].name == "add_note"
    notes.functions[0].name = "note"
    assert resolve_toolset(tools).definitions[0].name == "note"


def test_new_functions_do_not_invalidate_cached_toolsets() -> None:
    tools = [search, delete]
    first = resolve_toolset(tools)
    Function.from_callable(search, name="another")
    tool(name="yet_another")(search)
    assert resolve_toolset(tools) is first


def test_toolkit_with_its_own_functions_is_resolved_every_time() -> None:
    class Listed(Toolkit):
        """Tools listed by a server, which may change between runs."""

        def __init__(self) -> None:
            super().__init__(name="listed")
            self.listed: list[Function] = [Function.from_callable(search)]

        @property
        def functions(self) -> list[Function]:
            return list(self.listed)

    listed = Listed()
    tools = [delete, listed]
    assert [f.name for f in resolve_toolset(tools).functions] == ["delete", "search"]
    listed.listed.append(Function.from_callable(search, name="search_again"))
    assert [f.name for f in resolve_toolset(tools).functions] == [
        "delete",
        "search",
        "search_again",
    ]
    assert resolve_module._toolsets == {}


@pytest.mark.parametrize(
    ("tools", "error", "match"),
    [
        ([search, 42], TypeError, r"tools\[1\] is a int"),
        ([Notes], TypeError, "create an instance"),
        ([search, search], ValueError, "two tools are named 'search'"),
        ("search", TypeError, "tools must be a list"),
        ({search}, TypeError, "tools must be a list"),
        (iter([search]), TypeError, "tools must be a list"),
    ],
)
def test_invalid_tools_raise_every_time(tools: Any, error: type[Exception], match: str) -> None:
    for _ in range(2):
        with pytest.raises(error, match=match):
            resolve_toolset(tools)


def test_a_set_is_refused_even_when_its_entries_are_cached() -> None:
    resolve_toolset([search])
    with pytest.raises(TypeError, match="tools must be a list"):
        resolve_toolset({search})  # type: ignore[arg-type]


def test_tools_whose_schema_fails_are_not_cached() -> None:
    class Opaque:
        pass

    def broken(thing: Opaque) -> None: ...

    for _ in range(2):
        with pytest.raises(TypeError, match="parameter 'thing'"):
            resolve_toolset([broken])
    assert resolve_module._toolsets == {}


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_module, "_TOOLSET_CACHE_SIZE", 2)
    lists: list[list[object]] = [[search], [delete], [search, delete]]
    first = resolve_toolset(lists[0])
    for tools in lists[1:]:
        resolve_toolset(tools)
    assert len(resolve_module._toolsets) == 2
    again = resolve_toolset(lists[0])  # evicted (the oldest), so built anew
    assert again is not first
    assert again.functions == first.functions
    assert len(resolve_module._toolsets) == 2


def test_evicted_entries_are_released(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve_module, "_TOOLSET_CACHE_SIZE", 1)

    def temporary(x: int) -> int:
        return x

    ref = weakref.ref(temporary)
    resolve_toolset([temporary])
    del temporary
    resolve_toolset([search])
    gc.collect()
    assert ref() is None


def test_concurrent_resolution() -> None:
    notes = Notes()
    lists: list[list[object]] = [[search], [delete, notes], [search, delete, notes]]
    expected = [[f.name for f in resolve_tools(tools)] for tools in lists]
    resolve_module._toolsets.clear()
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def work(offset: int) -> None:
        barrier.wait()
        for i in range(300):
            index = (i + offset) % len(lists)
            toolset = resolve_toolset(lists[index])
            if [f.name for f in toolset.functions] != expected[index]:
                failures.append(f"{index}: {toolset.functions}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(resolve_module._toolsets) == len(lists)
