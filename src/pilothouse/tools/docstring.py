"""Reading a tool's description and parameter descriptions out of its docstring.

Three common styles are understood, and may be mixed:

* Google: an ``Args:`` (or ``Arguments:``, ``Parameters:``, ``Keyword Args:``...) section with
  ``name (type): text`` items, continuation lines indented further.
* reST / Sphinx: ``:param name: text`` or ``:param type name: text`` fields.
* numpy: a ``Parameters`` header underlined with dashes, ``name : type`` items and the text
  indented below them.

The tool description is everything before the first section or field.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

__all__ = ["ParsedDocstring", "parse_docstring"]

_GOOGLE_PARAM_HEADERS = frozenset(
    {
        "args",
        "arguments",
        "parameters",
        "params",
        "keyword args",
        "keyword arguments",
        "kwargs",
        "other parameters",
    }
)
_GOOGLE_HEADERS = _GOOGLE_PARAM_HEADERS | {
    "attributes",
    "example",
    "examples",
    "except",
    "exceptions",
    "methods",
    "note",
    "notes",
    "raise",
    "raises",
    "references",
    "return",
    "returns",
    "see also",
    "todo",
    "warning",
    "warnings",
    "yield",
    "yields",
}
_REST_PARAM_FIELDS = frozenset({"param", "parameter", "arg", "argument", "key", "keyword"})
_REST_FIELDS = _REST_PARAM_FIELDS | {
    "except",
    "exception",
    "ivar",
    "cvar",
    "meta",
    "raise",
    "raises",
    "return",
    "returns",
    "rtype",
    "type",
    "var",
    "yield",
    "yields",
}

_GOOGLE_HEADER_RE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*$")
_GOOGLE_ITEM_RE = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:(?:\s+(.*))?$")
_NUMPY_UNDERLINE_RE = re.compile(r"^\s*-{3,}\s*$")
_NUMPY_ITEM_RE = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*(?::.*)?$")
_REST_FIELD_RE = re.compile(r"^\s*:(\w+)([^:]*):(?:\s+(.*))?$")


@dataclass(frozen=True, slots=True)
class ParsedDocstring:
    """A docstring split into the tool description and per-parameter descriptions."""

    description: str | None
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Split a docstring into its description and its parameter descriptions.

    Args:
        doc: The raw docstring; indentation is normalised here.

    Returns:
        The description (None when empty) and a mapping of parameter name to description.
    """
    if not doc or not doc.strip():
        return ParsedDocstring(None)
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    description_end = len(lines)
    i = 0
    while i < len(lines):
        kind = _section_kind(lines, i)
        if kind is None:
            i += 1
            continue
        description_end = min(description_end, i)
        if kind == "google":
            header = lines[i].strip()[:-1].strip().lower()
            target = params if header in _GOOGLE_PARAM_HEADERS else None
            i = _read_google_section(lines, i, target)
        elif kind == "numpy":
            header = lines[i].strip().lower()
            target = params if header in _GOOGLE_PARAM_HEADERS else None
            i = _read_numpy_section(lines, i, target)
        else:
            i = _read_rest_field(lines, i, params)
    description = "\n".join(lines[:description_end]).strip()
    return ParsedDocstring(description or None, params)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _section_kind(lines: list[str], i: int) -> str | None:
    line = lines[i]
    if not line.strip():
        return None
    if i + 1 < len(lines) and _NUMPY_UNDERLINE_RE.match(lines[i + 1]):
        return "numpy"
    match = _GOOGLE_HEADER_RE.match(line)
    if match and match.group(1).lower() in _GOOGLE_HEADERS:
        return "google"
    match = _REST_FIELD_RE.match(line)
    if match and match.group(1).lower() in _REST_FIELDS:
        return "rest"
    return None


class _Items:
    """Collects ``name -> text`` items whose text may continue over several lines."""

    def __init__(self, target: dict[str, str] | None) -> None:
        self._target = target
        self._names: list[str] = []
        self._parts: list[str] = []

    def start(self, names: list[str], text: str | None) -> None:
        self.flush()
        self._names = names
        self._parts = [text.strip()] if text and text.strip() else []

    def add(self, text: str) -> None:
        if self._names and text.strip():
            self._parts.append(text.strip())

    def flush(self) -> None:
        if self._target is not None and self._parts:
            for name in self._names:
                # The first description wins: a name documented twice keeps its first text.
                self._target.setdefault(name, " ".join(self._parts))
        self._names, self._parts = [], []


def _read_google_section(lines: list[str], header: int, target: dict[str, str] | None) -> int:
    header_indent = _indent(lines[header])
    items = _Items(target)
    item_indent: int | None = None
    i = header + 1
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        indent = _indent(line)
        if item_indent is None:
            item_indent = indent
        if indent < item_indent or (indent <= header_indent and _section_kind(lines, i)):
            break
        match = _GOOGLE_ITEM_RE.match(line.strip()) if indent == item_indent else None
        if match:
            items.start([match.group(1)], match.group(2))
        elif indent == item_indent and indent <= header_indent:
            # Unindented items: a line that is not an item ends the section.
            break
        else:
            items.add(line)
        i += 1
    items.flush()
    return i


def _read_numpy_section(lines: list[str], header: int, target: dict[str, str] | None) -> int:
    items = _Items(target)
    base: int | None = None
    i = header + 2
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        indent = _indent(line)
        if base is None:
            base = indent
        if indent < base or _section_kind(lines, i):
            break
        if indent == base:
            match = _NUMPY_ITEM_RE.match(line.strip())
            if match is None:
                break
            names = [name.strip().lstrip("*") for name in match.group(1).split(",")]
            items.start(names, None)
        else:
            items.add(line)
        i += 1
    items.flush()
    return i


def _read_rest_field(lines: list[str], start: int, target: dict[str, str]) -> int:
    match = _REST_FIELD_RE.match(lines[start])
    assert match is not None  # _section_kind only calls this for matching lines
    words = match.group(2).split()
    is_param = match.group(1).lower() in _REST_PARAM_FIELDS and bool(words)
    items = _Items(target if is_param else None)
    # ":param int x:" names the parameter last.
    items.start([words[-1].lstrip("*")] if words else [], match.group(3))
    field_indent = _indent(lines[start])
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if line.strip() and (_indent(line) <= field_indent or _section_kind(lines, i)):
            break
        items.add(line)
        i += 1
    items.flush()
    return i
