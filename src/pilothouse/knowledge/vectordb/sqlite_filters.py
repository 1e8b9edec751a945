"""Filters as SQLite SQL: over the JSON metadata column, and over vec0 metadata columns.

vec0 applies constraints on its metadata columns during the KNN search, but only plain
comparisons joined by AND: an OR is not passed to the virtual table at all (SQLite then filters
the k nearest rows afterwards and returns too few), and LIKE or functions are refused. So
`split_for_vec0` pushes what vec0 does handle into its WHERE clause and leaves the rest, which
`json_sql` compiles for a subquery on the chunks table, passed to vec0 as ``rowid IN (...)``:
also evaluated during the search.

Every compiled leaf is wrapped in ``coalesce(..., 0)``, so that a missing key makes a condition
false rather than NULL, and NOT keeps its plain boolean meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pilothouse.knowledge.filters import (
    AND,
    CONTAINS,
    EQ,
    GT,
    GTE,
    IN,
    LT,
    LTE,
    NEQ,
    NOT,
    OR,
    STARTSWITH,
    Comparison,
    Filter,
    Scalar,
)

__all__ = ["COLUMN_TYPES", "json_sql", "split_for_vec0", "vec0_column"]

# Python type of a declared metadata column -> vec0 column type.
COLUMN_TYPES: dict[type, str] = {str: "text", int: "integer", float: "float", bool: "boolean"}
_ORDER_SQL: dict[type, str] = {GT: ">", GTE: ">=", LT: "<", LTE: "<="}
_NEGATED: dict[type, type[Comparison]] = {EQ: NEQ, NEQ: EQ, GT: LTE, GTE: LT, LT: GTE, LTE: GT}


def vec0_column(key: str) -> str:
    """The vec0 column of a declared metadata key (prefixed: vec0 reserves some names)."""
    return f"m_{key}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- JSON metadata column


def json_sql(node: Filter, column: str = "metadata") -> tuple[str, list[Any]]:
    """Compile a filter to a SQLite condition on a JSON metadata column, with its parameters."""
    params: list[Any] = []
    return _json(node, column, params), params


def _json(node: Filter, column: str, params: list[Any]) -> str:
    if isinstance(node, AND | OR):
        joiner = " AND " if isinstance(node, AND) else " OR "
        return "(" + joiner.join(_json(f, column, params) for f in node.filters) + ")"
    if isinstance(node, NOT):
        return f"(NOT {_json(node.filter, column, params)})"
    assert isinstance(node, Comparison)
    return f"coalesce({_leaf(node, column, params)}, 0)"


def _typed_equal(value: Scalar, kind: str, extracted: str, params: list[Any]) -> str:
    """SQL for "the JSON value (its json_type in ``kind``) equals ``value``", like with like."""
    if isinstance(value, bool):
        return f"{kind} = '{'true' if value else 'false'}'"
    if _is_number(value):
        params.append(value)
        return f"({kind} IN ('integer', 'real') AND {extracted} = ?)"
    params.append(value)
    return f"({kind} = 'text' AND {extracted} = ?)"


def _leaf(node: Comparison, column: str, params: list[Any]) -> str:
    path = f"'$.{node.key}'"
    kind = f"json_type({column}, {path})"
    value = f"json_extract({column}, {path})"
    if isinstance(node, EQ):
        return _typed_equal(node.value, kind, value, params)
    if isinstance(node, NEQ):
        equal = _typed_equal(node.value, kind, value, params)
        return f"({kind} IS NOT NULL AND NOT {equal})"
    if isinstance(node, IN):
        if not node.value:
            return "0"
        return "(" + " OR ".join(_typed_equal(v, kind, value, params) for v in node.value) + ")"
    if isinstance(node, GT | GTE | LT | LTE):
        op = _ORDER_SQL[type(node)]
        params.append(node.value)
        wanted = "IN ('integer', 'real')" if _is_number(node.value) else "= 'text'"
        return f"({kind} {wanted} AND {value} {op} ?)"
    if isinstance(node, CONTAINS):
        substring = ""
        if isinstance(node.value, str):
            params.append(node.value)
            substring = f"({kind} = 'text' AND instr({value}, ?) > 0) OR "
        element = _typed_equal(node.value, "e.type", "e.value", params)
        return (
            f"({substring}({kind} = 'array' AND EXISTS (SELECT 1 FROM json_each({column}, "
            f"{path}) AS e WHERE {element})))"
        )
    if isinstance(node, STARTSWITH):
        params.extend([node.value, node.value])
        return f"({kind} = 'text' AND substr({value}, 1, length(?)) = ?)"
    raise TypeError(f"unknown filter {node!r}")  # pragma: no cover - every leaf is handled


# ---------------------------------------------------------------- vec0 metadata columns


def split_for_vec0(
    node: Filter | None, columns: Mapping[str, type]
) -> tuple[list[str], list[Any], Filter | None]:
    """Split a filter into vec0 constraints (ANDed) and the rest (for the side-table subquery).

    Returns the vec0 conditions, their parameters, and the filter still to apply (or None).
    """
    if node is None:
        return [], [], None
    parts = list(_and_parts(node))
    conditions: list[str] = []
    params: list[Any] = []
    rest: list[Filter] = []
    for part in parts:
        pushed = _vec0_condition(part, columns, params)
        if pushed is None:
            rest.append(part)
        else:
            conditions.append(pushed)
    remaining = None if not rest else rest[0] if len(rest) == 1 else AND(*rest)
    return conditions, params, remaining


def _and_parts(node: Filter) -> list[Filter]:
    if isinstance(node, AND):
        return [p for f in node.filters for p in _and_parts(f)]
    return [node]


def _fits(value: object, column_type: type) -> bool:
    if column_type is bool:
        return isinstance(value, bool)
    if column_type is str:
        return isinstance(value, str)
    if column_type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return _is_number(value)


def _vec0_condition(node: Filter, columns: Mapping[str, type], params: list[Any]) -> str | None:
    """The vec0 condition for a plain comparison on a declared column, else None."""
    if isinstance(node, NOT) and type(node.filter) in _NEGATED:
        inner = node.filter
        assert isinstance(inner, Comparison)
        node = _NEGATED[type(inner)](inner.key, inner.value)
    if not isinstance(node, Comparison) or node.key not in columns:
        return None
    column_type = columns[node.key]
    name = vec0_column(node.key)
    if isinstance(node, IN):
        # vec0 takes IN on text and integer columns.
        if not node.value or column_type not in (str, int):
            return None
        if not all(_fits(v, column_type) for v in node.value):
            return None
        params.extend(node.value)
        return f"{name} IN ({', '.join('?' for _ in node.value)})"
    ops: dict[type, str] = {EQ: "=", NEQ: "!=", **_ORDER_SQL}
    op = ops.get(type(node))
    if op is None or not _fits(node.value, column_type):
        return None
    if column_type is bool and op not in ("=", "!="):
        return None
    value = node.value
    params.append(
        int(value) if column_type is bool else float(value) if column_type is float else value
    )
    return f"{name} {op} ?"
