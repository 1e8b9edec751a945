"""Filters as PostgreSQL conditions over a JSONB metadata column.

Each leaf checks the JSON type first (``jsonb_typeof``), so that a str never equals a number and
a comparison of mismatched types is false rather than an error; CASE guarantees that the cast
only runs on a value of the right type. Strings compare by code point (``COLLATE "C"``), as in
Python. Every leaf is wrapped in ``coalesce(..., false)``: a missing key is false, never NULL, so
NOT keeps its plain boolean meaning.
"""

from __future__ import annotations

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

__all__ = ["pg_sql"]

_ORDER_SQL = {GT: ">", GTE: ">=", LT: "<", LTE: "<="}


def pg_sql(node: Filter, column: str = "metadata") -> tuple[str, list[Any]]:
    """Compile a filter to a PostgreSQL condition (psycopg ``%s`` placeholders) and its params."""
    params: list[Any] = []
    return _sql(node, column, params), params


def _sql(node: Filter, column: str, params: list[Any]) -> str:
    if isinstance(node, AND | OR):
        joiner = " AND " if isinstance(node, AND) else " OR "
        return "(" + joiner.join(_sql(f, column, params) for f in node.filters) + ")"
    if isinstance(node, NOT):
        return f"(NOT {_sql(node.filter, column, params)})"
    assert isinstance(node, Comparison)
    return f"coalesce({_leaf(node, column, params)}, false)"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(value: Scalar, field: str, text: str, params: list[Any]) -> str:
    """SQL for "the JSONB value ``field`` (as text: ``text``) equals ``value``", like with like."""
    if isinstance(value, bool):
        params.append(value)
        return f"(CASE WHEN jsonb_typeof({field}) = 'boolean' THEN ({text})::boolean = %s END)"
    if _is_number(value):
        params.append(float(value))
        return (
            f"(CASE WHEN jsonb_typeof({field}) = 'number' THEN ({text})::float8 = %s::float8 END)"
        )
    params.append(value)
    return f"(jsonb_typeof({field}) = 'string' AND {text} = %s)"


def _leaf(node: Comparison, column: str, params: list[Any]) -> str:
    # Keys are identifiers (checked when the filter was made), so they can be literals.
    field = f"{column}->'{node.key}'"
    text = f"{column}->>'{node.key}'"
    if isinstance(node, EQ):
        return _equal(node.value, field, text, params)
    if isinstance(node, NEQ):
        equal = _equal(node.value, field, text, params)
        return f"({field} IS NOT NULL AND NOT coalesce({equal}, false))"
    if isinstance(node, IN):
        if not node.value:
            return "false"
        return (
            "("
            + " OR ".join(f"coalesce({_equal(v, field, text, params)}, false)" for v in node.value)
            + ")"
        )
    if isinstance(node, GT | GTE | LT | LTE):
        op = _ORDER_SQL[type(node)]
        if _is_number(node.value):
            params.append(float(node.value))
            return (
                f"(CASE WHEN jsonb_typeof({field}) = 'number' "
                f"THEN ({text})::float8 {op} %s::float8 END)"
            )
        params.append(node.value)
        return f"(jsonb_typeof({field}) = 'string' AND ({text}) COLLATE \"C\" {op} %s)"
    if isinstance(node, CONTAINS):
        substring = ""
        if isinstance(node.value, str):
            params.append(node.value)
            substring = f"(jsonb_typeof({field}) = 'string' AND strpos({text}, %s) > 0) OR "
        element = _element(node.value, params)
        return f"({substring}(jsonb_typeof({field}) = 'array' AND {field} @> {element}))"
    if isinstance(node, STARTSWITH):
        params.append(node.value)
        return f"(jsonb_typeof({field}) = 'string' AND starts_with({text}, %s))"
    raise TypeError(f"unknown filter {node!r}")  # pragma: no cover - every leaf is handled


def _element(value: Scalar, params: list[Any]) -> str:
    """A one-element JSONB array holding ``value``, for array containment."""
    if isinstance(value, bool):
        params.append(value)
        return "jsonb_build_array(%s::boolean)"
    if _is_number(value):
        params.append(float(value))
        return "jsonb_build_array(%s::float8)"
    params.append(value)
    return "jsonb_build_array(%s::text)"
