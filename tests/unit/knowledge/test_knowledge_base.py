"""Knowledge: inserting (idempotent by content hash), searching, deleting; sync and async."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdfkit import text_pdf

from pilothouse.knowledge import (
    EQ,
    Chunker,
    Knowledge,
    MiniLMEmbedder,
    ReaderError,
    SqliteVecDb,
)

GUIDE = "# Install\n\nRun pip install pilothouse.\n\n# Deploy\n\nShip it with make deploy."


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "ops").mkdir(parents=True)
    (root / "guide.md").write_text(GUIDE)
    (root / "faq.txt").write_text("Passwords are reset from the account page.")
    (root / "ops" / "oncall.html").write_text("<h1>On call</h1><p>Page the on-call engineer.</p>")
    (root / "manual.pdf").write_bytes(text_pdf([["The Zephyr kettle boils in ninety seconds."]]))
    (root / "image.png").write_bytes(b"\x89PNG")
    return root


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[Knowledge]:
    knowledge = Knowledge(vector_db=SqliteVecDb(tmp_path / "kb.db"))
    yield knowledge
    knowledge.vector_db.close()


def test_a_directory_inserted_twice_stores_nothing_new(kb: Knowledge, docs: Path) -> None:
    first = kb.insert(path=docs, metadata={"tag": "docs"})
    names = sorted(first.inserted)
    assert names == [
        f"{docs}/{n}" for n in ("faq.txt", "guide.md", "manual.pdf", "ops/oncall.html")
    ]
    stored = kb.vector_db.count()
    assert first.chunks == stored == 5  # the guide has two sections
    before = {c.id for c in kb.vector_db.all_chunks()}  # type: ignore[attr-defined]

    second = kb.insert(path=docs, metadata={"tag": "docs"})
    assert second.inserted == [] and sorted(second.unchanged) == names and second.chunks == 0
    assert {c.id for c in kb.vector_db.all_chunks()} == before  # type: ignore[attr-defined]


def test_a_changed_document_replaces_its_chunks(kb: Knowledge, docs: Path) -> None:
    kb.insert(path=docs)
    (docs / "guide.md").write_text("# Install\n\nUse uv to install pilothouse now.")
    result = kb.insert(path=docs)
    assert result.inserted == [f"{docs}/guide.md"] and len(result.unchanged) == 3
    contents = [c.content for c in kb.vector_db.all_chunks() if c.name.endswith("guide.md")]  # type: ignore[attr-defined]
    assert contents == ["# Install\n\nUse uv to install pilothouse now."]
    # New metadata is a change too.
    assert kb.insert(path=docs / "faq.txt", name=f"{docs}/faq.txt", metadata={"v": 2}).inserted


def test_search_finds_by_meaning_and_filters_restrict(kb: Knowledge, docs: Path) -> None:
    kb.insert(path=docs / "guide.md", metadata={"tag": "docs"})
    kb.insert(path=docs / "manual.pdf", metadata={"tag": "products"})
    best = kb.search("how fast does the kettle heat water?", max_results=1)
    assert best[0].name.endswith("manual.pdf") and best[0].score is not None
    only_docs = kb.search("how fast does the kettle heat water?", filters={"tag": "docs"})
    assert only_docs and all(c.metadata["tag"] == "docs" for c in only_docs)
    assert kb.search("kettle", search_type="keyword")[0].name.endswith("manual.pdf")
    assert kb.search("kettle", filters=EQ("tag", "nothing")) == []
    assert kb.metadata_keys() == ["tag"]


def test_text_content_insert_many_and_delete(kb: Knowledge) -> None:
    result = kb.insert_many(
        [
            {"text_content": "Alpha facts.", "name": "alpha", "metadata": {"n": 1}},
            {"text_content": "Beta facts.", "metadata": {"tag": "own"}},
        ],
        metadata={"tag": "shared", "batch": 7},
    )
    assert result.inserted[0] == "alpha" and result.inserted[1].startswith("text-")
    by_name = {c.name: c.metadata for c in kb.vector_db.all_chunks()}  # type: ignore[attr-defined]
    assert by_name["alpha"] == {"tag": "shared", "batch": 7, "n": 1}
    assert by_name[result.inserted[1]]["tag"] == "own"  # the item's own metadata wins
    assert kb.insert(text_content="Beta facts.", metadata={"tag": "own", "batch": 7}).unchanged
    assert kb.delete(name="alpha") == 1
    assert kb.delete(filters={"tag": "own"}) == 1
    assert kb.vector_db.count() == 0


async def test_async_forms(kb: Knowledge, docs: Path) -> None:
    result = await kb.ainsert(path=docs / "guide.md", metadata={"tag": "docs"})
    assert result.chunks == 2
    assert (await kb.ainsert(path=docs / "guide.md", metadata={"tag": "docs"})).unchanged
    many = await kb.ainsert_many([{"text_content": "Gamma.", "name": "g"}])
    assert many.inserted == ["g"]
    found = await kb.asearch("how do I deploy", max_results=1, filters={"tag": "docs"})
    assert found[0].content.startswith("# Deploy")
    assert await kb.ametadata_keys() == ["tag"]
    assert await kb.adelete(filters={"tag": "docs"}) == 2


def test_changing_the_chunker_re_embeds(tmp_path: Path) -> None:
    store = SqliteVecDb(tmp_path / "kb.db")
    Knowledge(vector_db=store).insert(text_content=GUIDE, name="guide")
    again = Knowledge(vector_db=store, chunker=Chunker(chunk_size=500, repeat_headings=False))
    assert again.insert(text_content=GUIDE, name="guide").inserted == ["guide"]
    assert store.count() == 2
    store.close()


@pytest.fixture
def site(docs: Path) -> Iterator[str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(docs), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_urls_are_read_by_content_type(kb: Knowledge, site: str) -> None:
    result = kb.insert(url=f"{site}/ops/oncall.html", metadata={"tag": "web"})
    assert result.inserted == [f"{site}/ops/oncall.html"]
    assert kb.vector_db.all_chunks()[0].content == "# On call\n\nPage the on-call engineer."  # type: ignore[attr-defined]
    kb.insert(url=f"{site}/manual.pdf", name="manual")
    assert "Zephyr" in kb.search("kettle", filters=None, max_results=1)[0].content
    with pytest.raises(ReaderError, match="answered 404"):
        kb.insert(url=f"{site}/missing.md")


def test_progress_bar_when_asked(
    kb: Knowledge, docs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb.insert(path=docs, show_progress=True)
    assert "Inserting documents" in capsys.readouterr().err
    kb.insert(path=docs)  # not a terminal: no bar by default
    assert "Inserting documents" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda kb: kb.insert(), TypeError, "exactly one of path="),
        (lambda kb: kb.insert(path="a", text_content="b"), TypeError, "exactly one"),
        (lambda kb: kb.insert(url="ftp://x"), ValueError, "http:// or https://"),
        (
            lambda kb: kb.insert(text_content="x", metadata={"a b": 1}),
            ValueError,
            "invalid metadata key",
        ),
        (lambda kb: kb.insert(path="/nonexistent/file.md"), ReaderError, "does not exist"),
        (lambda kb: kb.insert_many([{"paht": "x"}]), TypeError, "unknown argument"),
        (lambda kb: kb.insert_many(["x"]), TypeError, "dict of insert"),
        (lambda kb: kb.search("q", max_results=0), ValueError, "max_results"),
        (lambda kb: kb.search("q", search_type="fuzzy"), ValueError, "search_type"),
        (lambda kb: kb.search("q", filters="tag=docs"), TypeError, "must be a dict"),
        (lambda kb: kb.search(3), TypeError, "query must be a str"),
        (lambda kb: kb.delete(), TypeError, "give name= or filters="),
        (lambda kb: Knowledge(vector_db="kb.db"), TypeError, "vector_db must be"),
        (lambda kb: Knowledge(embedder=MiniLMEmbedder), TypeError, "embedder must be"),
    ],
)
def test_misuse_is_a_clear_error(kb: Knowledge, call: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call(kb)  # type: ignore[operator]
