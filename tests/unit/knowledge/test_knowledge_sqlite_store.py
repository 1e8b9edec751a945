"""SqliteVecDb: connections with sqlite-vec, schema, documents, keyword and hybrid search."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import sqlean

from pilothouse.knowledge import EQ, GT, Chunk, SqliteVecDb
from pilothouse.knowledge.vectordb.base import SearchType
from pilothouse.knowledge.vectordb.sqlite_connect import open_with_vec


def _chunks(name: str, texts: list[str], metadata: dict[str, object]) -> list[Chunk]:
    return [
        Chunk(id=f"{name}-{i}", name=name, content=t, metadata=dict(metadata), index=i,
              content_hash=f"h-{name}")
        for i, t in enumerate(texts)
    ]  # fmt: skip


def _unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values]


def test_standard_library_first_then_sqlean(caplog: pytest.LogCaptureFixture) -> None:
    # This machine's Python has no enable_load_extension: the store falls back to sqlean and
    # says why. Where the standard library can load extensions, it is used as is.
    caplog.set_level(logging.INFO, logger="pilothouse")
    opened = open_with_vec(":memory:")
    stdlib_can = hasattr(sqlite3.Connection, "enable_load_extension")
    if stdlib_can:
        assert opened.driver is sqlite3
    else:
        assert opened.driver is sqlean
        assert "cannot load extensions" in caplog.text
    opened.connection.close()


def test_the_extension_loading_path_with_a_module_that_can(tmp_path: Path) -> None:
    # The same code path the standard library takes where it can load extensions, driven
    # with a DB-API module that can (sqlean), as the only driver.
    store = SqliteVecDb(tmp_path / "kb.db", drivers=[sqlean])
    assert store.driver == "sqlean"
    store.replace_document("a", "h-a", _chunks("a", ["text"], {}), [_unit(1, 0, 0)])
    assert [c.id for c in store.vector_search(_unit(1, 0, 0), 1, None)] == ["a-0"]
    store.close()


def test_no_driver_able_is_a_clear_error() -> None:
    import types

    no_extensions = types.ModuleType("fake_sqlite")
    no_extensions.Connection = type("Connection", (), {})  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="fake_sqlite: this Python's SQLite module cannot"):
        open_with_vec(":memory:", [no_extensions])


def test_documents_are_replaced_atomically_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    store = SqliteVecDb(path)
    assert store.replace_document(
        "a", "h1", _chunks("a", ["one", "two"], {"v": 1}), [_unit(1, 0), _unit(0, 1)]
    )
    assert not store.replace_document("a", "h1", _chunks("a", ["x"], {}), [_unit(1, 1)])
    assert store.count() == 2
    new = [Chunk(id="a2-0", name="a", content="three", metadata={"v": 2}, content_hash="h2")]
    assert store.replace_document("a", "h2", new, [_unit(1, 1)])
    assert (
        store.count() == 1 and store.has_document("a", "h2") and not store.has_document("a", "h1")
    )
    store.close()
    reopened = SqliteVecDb(path)
    assert [c.content for c in reopened.vector_search(_unit(1, 0), 5, None)] == ["three"]
    with pytest.raises(ValueError, match="2-dimension vectors; these have 3"):
        reopened.replace_document("b", "h", _chunks("b", ["x"], {}), [_unit(1, 0, 0)])
    assert reopened.count() == 1  # the failed insert changed nothing
    reopened.drop()
    assert reopened.count() == 0 and reopened.vector_search(_unit(1, 0), 5, None) == []
    reopened.close()


def test_declared_metadata_columns_are_required_and_fixed(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    store = SqliteVecDb(path, metadata_columns={"tag": str, "year": int})
    with pytest.raises(ValueError, match=r"metadata\['year'\] must be a int"):
        store.replace_document("a", "h", _chunks("a", ["x"], {"tag": "t"}), [_unit(1, 0)])
    store.replace_document("a", "h", _chunks("a", ["x"], {"tag": "t", "year": 1}), [_unit(1, 0)])
    store.close()
    with pytest.raises(ValueError, match="created with metadata_columns"):
        SqliteVecDb(path, metadata_columns={"tag": str})
    with pytest.raises(TypeError, match="must be str, int, float or bool"):
        SqliteVecDb(metadata_columns={"tag": list})
    with pytest.raises(ValueError, match="plain identifier"):
        SqliteVecDb(table="bad name")


def test_keyword_and_hybrid_search_with_filters() -> None:
    store = SqliteVecDb()
    store.replace_document(
        "k",
        "h",
        _chunks("k", ["The kettle boils water fast", "Kettles and teapots"], {"tag": "home"}),
        [_unit(1, 0), _unit(0.9, 0.1)],
    )
    store.replace_document(
        "d",
        "h",
        _chunks("d", ["Deploy the service to production"], {"tag": "ops", "year": 2024}),
        [_unit(0, 1)],
    )
    found = store.keyword_search("kettle boiling", 5, None)
    assert [c.id for c in found] == ["k-0", "k-1"]  # stemming: kettles, boiling
    assert found[0].score is not None and found[0].score > found[1].score  # type: ignore[operator]
    assert store.keyword_search("kettle", 5, EQ("tag", "ops")) == []
    assert store.keyword_search("!!! ???", 5, None) == []
    hybrid = store.search(
        "deploy production",
        _unit(0, 1),
        limit=2,
        filter=GT("year", 2000),
        search_type=SearchType.hybrid,
    )
    assert [c.id for c in hybrid] == ["d-0"]
    assert store.metadata_keys() == ["tag", "year"]
    assert store.delete(filter=EQ("tag", "home")) == 2 and store.count() == 1
    with pytest.raises(ValueError, match="name or a filter"):
        store.delete()


def test_plain_comparisons_on_declared_columns_go_to_vec0_the_rest_to_the_side_table() -> None:
    from pilothouse.knowledge import CONTAINS, IN, NOT, OR
    from pilothouse.knowledge.vectordb.sqlite_filters import split_for_vec0

    columns = {"tag": str, "year": int, "draft": bool}
    pushed, params, rest = split_for_vec0(
        EQ("tag", "a") & NOT(GT("year", 2020)) & IN("tag", ["a", "b"]) & EQ("draft", True)
        & OR(EQ("tag", "x"), EQ("tag", "y")) & CONTAINS("tag", "a") & EQ("other", 1)
        & GT("year", 1.5),
        columns,
    )  # fmt: skip
    assert pushed == ["m_tag = ?", "m_year <= ?", "m_tag IN (?, ?)", "m_draft = ?"]
    assert params == ["a", 2020, "a", "b", 1]
    assert repr(rest) == (
        "AND(OR(EQ('tag', 'x'), EQ('tag', 'y')), CONTAINS('tag', 'a'), EQ('other', 1), "
        "GT('year', 1.5))"
    )
    assert split_for_vec0(None, columns) == ([], [], None)
