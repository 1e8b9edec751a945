from __future__ import annotations

import functools
from typing import Any

import pytest

from pilothouse.tools import Function, Toolkit, resolve_tools, tool, validate_tools


def search(query: str) -> str:
    """Search the web."""
    return query


def fetch(url: str) -> str:
    """Fetch a page."""
    return url


@tool(requires_confirmation=True)
def delete(path: str) -> None:
    """Delete a file."""


class Notes(Toolkit):
    def __init__(self, owner: str, **kwargs: Any) -> None:
        self.owner = owner
        self.notes: list[str] = []
        super().__init__(
            name="notes",
            tools=[self.add_note, self.list_notes],
            instructions="Keep notes.",
            **kwargs,
        )

    def add_note(self, text: str) -> str:
        """Add a note."""
        self.notes.append(text)
        return f"{self.owner}: {len(self.notes)}"

    def list_notes(self) -> list[str]:
        """List the notes."""
        return self.notes


class Shelf(Toolkit):
    def __init__(self) -> None:
        self.books = ["Dune"]
        super().__init__(name="shelf", tools=[self.books_by])

    @tool(show_result=True)
    def books_by(self, author: str) -> list[str]:
        """Books by an author."""
        return self.books


def test_toolkit_functions() -> None:
    kit = Toolkit(name="web", tools=[search, fetch, delete], instructions="Use the web.")
    functions = kit.functions
    assert [f.name for f in functions] == ["search", "fetch", "delete"]
    assert all(isinstance(f, Function) for f in functions)
    assert functions[2] is delete
    assert kit.instructions == "Use the web."
    # Made once per toolkit.
    assert kit.functions[0] is functions[0]


def test_include_and_exclude() -> None:
    assert [f.name for f in Toolkit(tools=[search, fetch], include_tools=["fetch"]).functions] == [
        "fetch"
    ]
    kit = Toolkit(tools=[search, fetch, delete], exclude_tools={"delete"})
    assert [f.name for f in kit.functions] == ["search", "fetch"]


def test_unknown_filter_names() -> None:
    with pytest.raises(
        ValueError, match=r"include_tools names unknown tools 'serch'.*search, fetch"
    ):
        Toolkit(name="web", tools=[search, fetch], include_tools=["serch"])
    with pytest.raises(ValueError, match="exclude_tools names unknown tools 'nope'"):
        Toolkit(tools=[search], exclude_tools=["nope"])
    with pytest.raises(TypeError, match="must be a list of names"):
        Toolkit(tools=[search], include_tools="search")


def test_toolkit_rejects_bad_entries() -> None:
    with pytest.raises(TypeError, match="must be a callable"):
        Toolkit(tools=["search"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="cannot be nested"):
        Toolkit(tools=[Toolkit(name="inner")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="two tools named 'search'"):
        Toolkit(tools=[search, tool(name="search")(fetch)])


async def test_subclass_with_bound_methods() -> None:
    alice, bob = Notes("alice"), Notes("bob")
    add_alice = alice.functions[0]
    assert add_alice.name == "add_note"
    assert add_alice.description == "Add a note."
    assert await add_alice.acall({"text": "hi"}) == "alice: 1"
    assert await bob.functions[0].acall({"text": "yo"}) == "bob: 1"
    assert (alice.notes, bob.notes) == (["hi"], ["yo"])
    assert add_alice.parameters is bob.functions[0].parameters
    assert Notes("x", exclude_tools=["list_notes"]).functions[0].name == "add_note"


async def test_subclass_with_decorated_methods() -> None:
    shelf = Shelf()
    (books_by,) = shelf.functions
    assert books_by.show_result is True
    assert list(books_by.parameters["properties"]) == ["author"]
    assert await books_by.acall({"author": "Herbert"}) == ["Dune"]


def test_resolve_flattens_everything() -> None:
    notes = Notes("me")
    functions = resolve_tools([search, delete, notes])
    assert [f.name for f in functions] == ["search", "delete", "add_note", "list_notes"]
    assert functions[1] is delete
    assert resolve_tools(None) == []
    assert resolve_tools([]) == []


def test_resolve_reuses_the_function_of_a_plain_function() -> None:
    first = resolve_tools([search])[0]
    second = resolve_tools([search, fetch])[0]
    assert first is second
    assert first.definition is second.definition


def test_resolve_does_not_reuse_a_function_copied_by_functools_wraps() -> None:
    def inner(x: int) -> int:
        return x

    resolve_tools([inner])

    @functools.wraps(inner)
    def outer(x: int) -> int:
        return inner(x) + 1

    (function,) = resolve_tools([outer])
    assert function.entrypoint is outer
    assert function(1) == 2


def test_resolve_duplicate_names() -> None:
    with pytest.raises(ValueError, match="two tools are named 'search'"):
        resolve_tools([search, search])
    clash = Toolkit(name="web", tools=[tool(name="add_note")(fetch)])
    with pytest.raises(ValueError, match=r"'add_note' \(from toolkit 'notes' and toolkit 'web'\)"):
        resolve_tools([Notes("me"), clash])


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("search", r"tools\[0\] is a str \('search'\), not a tool. Accepted: a function"),
        (42, r"tools\[0\] is a int \(42\)"),
        (None, "NoneType"),
        (Notes, r"the class Notes; create an instance: Notes\(...\)"),
        (str, "the class str. Accepted"),
    ],
)
def test_resolve_and_validate_reject_non_tools(entry: object, expected: str) -> None:
    with pytest.raises(TypeError, match=expected):
        resolve_tools([entry])
    with pytest.raises(TypeError, match=expected):
        validate_tools([entry])


def test_validate_tools_requires_a_list() -> None:
    with pytest.raises(TypeError, match="tools must be a list"):
        validate_tools(search)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tools must be a list"):
        validate_tools("search")


def test_validate_tools_builds_no_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    import pilothouse.tools.spec as spec_module

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate_tools must not build schemas")

    monkeypatch.setattr(spec_module, "build_spec", fail)

    def brand_new(x: int) -> int:
        return x

    validate_tools([brand_new, delete, Notes("x"), Function.from_callable(fetch)])
