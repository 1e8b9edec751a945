"""HTML to text: headings become Markdown headings, so that chunking can follow them."""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP = frozenset({"script", "style", "head", "noscript", "template", "svg", "nav", "footer"})
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "aside", "blockquote", "table",
        "tr", "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "form", "hr",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"\s+")


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.in_pre = 0
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag == "pre":
            self.in_pre += 1
            self.parts.append("\n\n```\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "pre":
            self.in_pre = max(0, self.in_pre - 1)
            self.parts.append("\n```\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is None:
            self.title = data.strip() or None
        if self.skipping:
            return
        if self.in_pre:
            self.parts.append(data)
        else:
            self.parts.append(_SPACES.sub(" ", data))


def html_to_text(html: str) -> tuple[str, str | None]:
    """Return the readable text of an HTML page (headings as ``#`` lines) and its title."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    lines: list[str] = []
    blank = True
    in_fence = False
    for raw in "".join(parser.parts).split("\n"):
        if raw.strip().startswith("```"):
            in_fence = not in_fence
            lines.append("```")
            blank = False
            continue
        line = raw.rstrip() if in_fence else " ".join(raw.split())
        if not line and not in_fence:
            if not blank:
                lines.append("")
            blank = True
            continue
        lines.append(line)
        blank = False
    return "\n".join(lines).strip(), parser.title
