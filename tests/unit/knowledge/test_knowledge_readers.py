"""Readers: text, Markdown, PDF, HTML, directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from pdfkit import text_pdf

from pilothouse.knowledge.readers import ReaderError, files_in, read_bytes, read_file
from pilothouse.knowledge.readers.html import html_to_text


def test_text_and_markdown_are_read_as_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Tïtle\n\nBody", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffplain".encode())
    assert read_file(tmp_path / "a.md") == "# Tïtle\n\nBody"
    assert read_file(tmp_path / "b.txt") == "plain"  # the BOM is dropped


def test_pdf_pages_become_paragraphs(tmp_path: Path) -> None:
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(text_pdf([["The Zephyr kettle", "boils in 90 seconds."], ["Page two text."]]))
    text = read_file(pdf)
    assert "Zephyr kettle" in text and "90 seconds" in text
    assert text.index("Page two text.") > text.index("90 seconds")
    assert "\n\n" in text


def test_html_keeps_headings_drops_scripts_and_keeps_code() -> None:
    html = (
        "<html><head><title>Guide</title><style>p{}</style></head><body>"
        "<nav>menu</nav><h1>Install</h1><p>Run <b>pip</b>  install.</p>"
        "<script>alert(1)</script><ul><li>one</li><li>two</li></ul>"
        "<pre>x = 1\n    y = 2</pre><h2>Next</h2><p>More &amp; more.</p></body></html>"
    )
    text, title = html_to_text(html)
    assert title == "Guide"
    assert "# Install" in text and "## Next" in text
    assert "Run pip install." in text and "More & more." in text
    assert "alert" not in text and "menu" not in text and "p{}" not in text
    assert "- one" in text and "- two" in text
    assert "```\nx = 1\n    y = 2\n```" in text


def test_directory_listing_is_sorted_and_skips_hidden_and_unknown(tmp_path: Path) -> None:
    for name in ("b.md", "a.txt", "sub/c.html", ".hidden/d.md", "e.png", ".f.md"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in files_in(tmp_path)]
    assert found == ["a.txt", "b.md", "sub/c.html"]
    assert [p.name for p in files_in(tmp_path, recursive=False)] == ["a.txt", "b.md"]


def test_unreadable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="cannot read"):
        read_file(tmp_path / "missing.md")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ReaderError, match="not UTF-8"):
        read_file(tmp_path / "bin.txt")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    with pytest.raises(ReaderError, match="not a readable PDF"):
        read_file(tmp_path / "broken.pdf")
    with pytest.raises(ReaderError, match="binary"):
        read_bytes(b"a\x00b", "text", "blob")
