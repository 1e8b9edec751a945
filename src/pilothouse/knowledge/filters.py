"""Metadata filters for knowledge searches: a dict, or expressions combined with ``& | ~``.

``{"tag": "docs", "year": 2024}`` means every key equals its value (a list value means "any
of"). Expressions say more: ``EQ("tag", "docs") & (GT("year", 2020) | ~IN("lang", ["de"]))``.

The meaning is the same in every store, and `Filter.matches` is its reference:

* Metadata values are str, int, float, bool, or lists of those.
* ``EQ``/``NEQ``/``IN`` compare like with like: a number equals a number of the same value
  (``1 == 1.0``), a bool only a bool, a str only a str. ``NEQ`` needs the key to be present.
* ``GT``/``GTE``/``LT``/``LTE`` compare two numbers, or two strings by code point; anything
  else (a missing key, a str against a number) does not match.
* ``CONTAINS`` matches a substring of a str value (case-sensitive), or an element of a list.
  ``STARTSWITH`` matches a str value's prefix.
* ``AND``/``OR``/``NOT`` are plain boolean logic: ``NOT(EQ("tag", "a"))`` also matches
  documents without a ``tag``.

Stores translate a filter into their own query (SQL over JSON, vec0 metadata columns) so that it
is applied inside the vector search, never to the top results afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "AND",
    "CONTAINS",
    "EQ",
    "GT",
    "GTE",
    "IN",
    "LT",
    "LTE",
    "NEQ",
    "NOT",
    "OR",
    "STARTSWITH",
    "Comparison",
    "Filter",
    "FilterInput",
    "Scalar",
    "check_key",
    "check_metadata",
    "combine",
    "filter_from_dict",
    "to_filter",
]

Scalar: TypeAlias = str | int | float | bool
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_key(key: object) -> str:
    """Return ``key`` if it can name a metadata field, else raise ValueError.

    Keys are identifiers (letters, digits, ``_``), so that every store can address them in a
    query without quoting.
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"invalid metadata key {key!r}: use 1 to 63 letters, digits or '_', not starting "
            "with a digit"
        )
    return key


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_scalar(value: object, where: str) -> Scalar:
    if not isinstance(value, str | int | float | bool):
        raise TypeError(f"{where}: the value must be a str, int, float or bool, not {value!r}")
    return value


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a document's metadata and return a copy: identifier keys, scalar or list values.

    Raises:
        TypeError: A value is not a str, int, float, bool or a list of those.
        ValueError: A key is not an identifier.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
    checked: dict[str, Any] = {}
    for key, value in metadata.items():
        check_key(key)
        if isinstance(value, list | tuple):
            checked[key] = [_check_scalar(v, f"metadata[{key!r}]") for v in value]
        else:
            checked[key] = _check_scalar(value, f"metadata[{key!r}]")
    return checked


def same_value(a: object, b: object) -> bool:
    """Equality as filters mean it: like with like, bool apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return False


class Filter:
    """A condition on a chunk's metadata. Combine with ``&`` (and), ``|`` (or), ``~`` (not)."""

    __slots__ = ()

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a chunk with this metadata passes the filter (the reference semantics)."""
        raise NotImplementedError

    def keys(self) -> Iterator[str]:
        """The metadata keys the filter reads."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; `filter_from_dict` reads it back."""
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        return AND(self, _as_filter(other))

    def __or__(self, other: Filter) -> Filter:
        return OR(self, _as_filter(other))

    def __invert__(self) -> Filter:
        return NOT(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


def _as_filter(value: object) -> Filter:
    if isinstance(value, Filter):
        return value
    if isinstance(value, Mapping):
        return to_filter(value)  # type: ignore[return-value]
    raise TypeError(f"a filter combines with another filter or a dict, not {value!r}")


class Comparison(Filter):
    """A leaf: one metadata key against one value (``IN``: a list of values)."""

    __slots__ = ("key", "value")
    op: ClassVar[str] = ""

    def __init__(self, key: str, value: Any) -> None:
        self.key = check_key(key)
        self.value = self._check(value)

    def _check(self, value: Any) -> Any:
        return _check_scalar(value, f"{type(self).__name__}({self.key!r}, ...)")

    def keys(self) -> Iterator[str]:
        yield self.key

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"op": self.op, "key": self.key, "value": value}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r}, {self.value!r})"


class EQ(Comparison):
    """The key's value equals ``value``."""

    __slots__ = ()
    op = "EQ"

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return self.key in metadata and same_value(metadata[self.key], self.value)


class NEQ(Comparison):
    """The key is present and its value differs from ``value``."""

    __slots__ = ()
    op = "NEQ"

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return self.key in metadata and not same_value(metadata[self.key], self.value)


class _Order(Comparison):
    __slots__ = ()

    def _check(self, value: Any) -> Any:
        if not (_is_number(value) or isinstance(value, str)):
            raise TypeError(
                f"{type(self).__name__}({self.key!r}, ...): compare with a number or a str, "
                f"not {value!r}"
            )
        return value

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        found = metadata.get(self.key)
        if _is_number(found) and _is_number(self.value):
            return self._holds(found, self.value)
        if isinstance(found, str) and isinstance(self.value, str):
            return self._holds(found, self.value)
        return False

    def _holds(self, found: Any, value: Any) -> bool:
        raise NotImplementedError


class GT(_Order):
    """The key's value is greater than ``value`` (numbers, or strings by code point)."""

    __slots__ = ()
    op = "GT"

    def _holds(self, found: Any, value: Any) -> bool:
        return bool(found > value)


class GTE(_Order):
    """The key's value is greater than or equal to ``value``."""

    __slots__ = ()
    op = "GTE"

    def _holds(self, found: Any, value: Any) -> bool:
        return bool(found >= value)


class LT(_Order):
    """The key's value is less than ``value``."""

    __slots__ = ()
    op = "LT"

    def _holds(self, found: Any, value: Any) -> bool:
        return bool(found < value)


class LTE(_Order):
    """The key's value is less than or equal to ``value``."""

    __slots__ = ()
    op = "LTE"

    def _holds(self, found: Any, value: Any) -> bool:
        return bool(found <= value)


class IN(Comparison):
    """The key's value equals one of ``values``."""

    __slots__ = ()
    op = "IN"

    def _check(self, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            raise TypeError(f"IN({self.key!r}, ...): give a list of values, not {value!r}")
        return tuple(_check_scalar(v, f"IN({self.key!r}, ...)") for v in value)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        if self.key not in metadata:
            return False
        found = metadata[self.key]
        return any(same_value(found, v) for v in self.value)


class CONTAINS(Comparison):
    """The key's str value contains ``value`` (case-sensitive), or its list has it."""

    __slots__ = ()
    op = "CONTAINS"

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        found = metadata.get(self.key)
        if isinstance(found, str):
            return isinstance(self.value, str) and self.value in found
        if isinstance(found, list):
            return any(same_value(item, self.value) for item in found)
        return False


class STARTSWITH(Comparison):
    """The key's str value starts with ``value``."""

    __slots__ = ()
    op = "STARTSWITH"

    def _check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(f"STARTSWITH({self.key!r}, ...): the prefix must be a str")
        return value

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        found = metadata.get(self.key)
        return isinstance(found, str) and found.startswith(self.value)


class AND(Filter):
    """Every one of the filters holds."""

    __slots__ = ("filters",)

    def __init__(self, *filters: Filter) -> None:
        if not filters:
            raise ValueError("AND() needs at least one filter")
        self.filters = tuple(_as_filter(f) for f in filters)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return all(f.matches(metadata) for f in self.filters)

    def keys(self) -> Iterator[str]:
        for f in self.filters:
            yield from f.keys()

    def to_dict(self) -> dict[str, Any]:
        return {"op": "AND", "filters": [f.to_dict() for f in self.filters]}

    def __repr__(self) -> str:
        return f"AND({', '.join(map(repr, self.filters))})"


class OR(Filter):
    """At least one of the filters holds."""

    __slots__ = ("filters",)

    def __init__(self, *filters: Filter) -> None:
        if not filters:
            raise ValueError("OR() needs at least one filter")
        self.filters = tuple(_as_filter(f) for f in filters)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return any(f.matches(metadata) for f in self.filters)

    def keys(self) -> Iterator[str]:
        for f in self.filters:
            yield from f.keys()

    def to_dict(self) -> dict[str, Any]:
        return {"op": "OR", "filters": [f.to_dict() for f in self.filters]}

    def __repr__(self) -> str:
        return f"OR({', '.join(map(repr, self.filters))})"


class NOT(Filter):
    """The filter does not hold."""

    __slots__ = ("filter",)

    def __init__(self, filter: Filter) -> None:
        self.filter = _as_filter(filter)

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return not self.filter.matches(metadata)

    def keys(self) -> Iterator[str]:
        yield from self.filter.keys()

    def to_dict(self) -> dict[str, Any]:
        return {"op": "NOT", "filter": self.filter.to_dict()}

    def __repr__(self) -> str:
        return f"NOT({self.filter!r})"


FilterInput: TypeAlias = Filter | Mapping[str, Any]
_LEAVES: dict[str, type[Comparison]] = {
    cls.op: cls for cls in (EQ, NEQ, GT, GTE, LT, LTE, IN, CONTAINS, STARTSWITH)
}


def to_filter(filters: FilterInput | None) -> Filter | None:
    """Turn a dict (key equals value; a list value: any of) or a `Filter` into a `Filter`.

    Returns None for no filter (None or an empty dict).

    Raises:
        TypeError: Not a dict or a Filter, or a value of the wrong type.
        ValueError: A key that cannot name a metadata field.
    """
    if filters is None:
        return None
    if isinstance(filters, Filter):
        return filters
    if not isinstance(filters, Mapping):
        raise TypeError(
            "knowledge filters must be a dict such as {'tag': 'docs'} or a filter expression "
            f"such as EQ('tag', 'docs') | GT('year', 2020), not {type(filters).__name__}"
        )
    parts: list[Filter] = []
    for key, value in filters.items():
        if isinstance(value, list | tuple | set | frozenset):
            parts.append(IN(key, list(value)))
        else:
            parts.append(EQ(key, value))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AND(*parts)


def combine(*filters: FilterInput | None) -> Filter | None:
    """All the given filters at once (AND), skipping the empty ones."""
    found = [f for f in (to_filter(x) for x in filters) if f is not None]
    if not found:
        return None
    return found[0] if len(found) == 1 else AND(*found)


def filter_from_dict(data: Mapping[str, Any]) -> Filter:
    """Rebuild a filter from `Filter.to_dict` output.

    Raises:
        ValueError: An unknown operator or a malformed entry.
    """
    if not isinstance(data, Mapping) or "op" not in data:
        raise ValueError(f"not a filter: {data!r}")
    op = str(data["op"]).upper()
    if op in ("AND", "OR"):
        items = data.get("filters")
        if not isinstance(items, list) or not items:
            raise ValueError(f"{op} needs a non-empty list of filters")
        parts = [filter_from_dict(item) for item in items]
        return AND(*parts) if op == "AND" else OR(*parts)
    if op == "NOT":
        return NOT(filter_from_dict(data.get("filter", {})))
    leaf = _LEAVES.get(op)
    if leaf is None:
        known = ", ".join([*_LEAVES, "AND", "OR", "NOT"])
        raise ValueError(f"unknown filter operator {data['op']!r}; known: {known}")
    return leaf(data.get("key"), data.get("value"))  # type: ignore[arg-type]
