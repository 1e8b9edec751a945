"""Filter expressions: construction, combination, (de)serialisation and reference semantics."""

from __future__ import annotations

import pytest

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
    check_metadata,
    combine,
    filter_from_dict,
    to_filter,
)

DOC = {"tag": "docs", "year": 2021, "score": 0.5, "draft": False, "langs": ["en", "de"], "n": 1}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (EQ("tag", "docs"), True),
        (EQ("tag", "Docs"), False),
        (EQ("year", 2021.0), True),
        (EQ("year", "2021"), False),  # a str never equals a number
        (EQ("n", True), False),  # a bool never equals a number
        (EQ("draft", False), True),
        (EQ("missing", "x"), False),
        (NEQ("tag", "blog"), True),
        (NEQ("tag", "docs"), False),
        (NEQ("missing", "x"), False),  # NEQ needs the key
        (GT("year", 2020), True),
        (GT("year", 2021), False),
        (GTE("year", 2021), True),
        (LT("score", 0.6), True),
        (LTE("score", 0.5), True),
        (GT("tag", "alpha"), True),  # strings by code point
        (GT("tag", 5), False),  # a str against a number: no match
        (GT("missing", 1), False),
        (IN("tag", ["blog", "docs"]), True),
        (IN("year", [1999, 2021]), True),
        (IN("tag", []), False),
        (CONTAINS("tag", "oc"), True),
        (CONTAINS("tag", "OC"), False),  # case-sensitive
        (CONTAINS("langs", "de"), True),
        (CONTAINS("langs", "d"), False),  # list elements match whole
        (CONTAINS("year", 2), False),
        (STARTSWITH("tag", "do"), True),
        (STARTSWITH("tag", "oc"), False),
        (STARTSWITH("year", "20"), False),
        (EQ("tag", "docs") & GT("year", 2022), False),
        (EQ("tag", "blog") | GT("year", 2020), True),
        (~EQ("tag", "docs"), False),
        (~EQ("missing", "x"), True),  # NOT is plain negation
        (NOT(AND(EQ("tag", "docs"), LT("year", 2000))), True),
        (OR(EQ("tag", "x"), AND(CONTAINS("langs", "en"), ~STARTSWITH("tag", "b"))), True),
    ],
)
def test_reference_semantics(condition: object, expected: bool) -> None:
    assert condition.matches(DOC) is expected  # type: ignore[attr-defined]


def test_a_dict_is_equality_and_a_list_value_is_any_of() -> None:
    condition = to_filter({"tag": "docs", "year": [2020, 2021]})
    assert condition == AND(EQ("tag", "docs"), IN("year", [2020, 2021]))
    assert condition is not None and condition.matches(DOC)
    assert to_filter({}) is None
    assert to_filter(None) is None


def test_combine_ands_and_skips_empty_filters() -> None:
    assert combine(None, {}, {"tag": "docs"}) == EQ("tag", "docs")
    assert combine({"tag": "docs"}, GT("year", 1)) == AND(EQ("tag", "docs"), GT("year", 1))
    assert combine(None, None) is None


def test_operators_combine_with_dicts() -> None:
    assert (EQ("a", 1) & {"b": 2}) == AND(EQ("a", 1), EQ("b", 2))
    with pytest.raises(TypeError, match="combines with another filter"):
        EQ("a", 1) & 3  # type: ignore[operator]


@pytest.mark.parametrize(
    "condition",
    [
        EQ("tag", "docs"),
        IN("year", [1, 2.5, "x", True]),
        ~(CONTAINS("langs", "en") | STARTSWITH("tag", "d")) & LTE("score", 3),
    ],
)
def test_to_dict_round_trips(condition: object) -> None:
    data = condition.to_dict()  # type: ignore[attr-defined]
    assert filter_from_dict(data) == condition
    assert repr(filter_from_dict(data)) == repr(condition)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: EQ("bad key", 1), ValueError, "invalid metadata key"),
        (lambda: EQ("1st", 1), ValueError, "invalid metadata key"),
        (lambda: EQ("tag", None), TypeError, "must be a str, int, float or bool"),
        (lambda: EQ("tag", [1]), TypeError, "must be a str, int, float or bool"),
        (lambda: GT("tag", True), TypeError, "compare with a number or a str"),
        (lambda: IN("tag", "abc"), TypeError, "give a list"),
        (lambda: STARTSWITH("tag", 1), TypeError, "prefix must be a str"),
        (lambda: AND(), ValueError, "at least one"),
        (lambda: to_filter("tag=docs"), TypeError, "must be a dict"),
        (lambda: filter_from_dict({"op": "LIKE", "key": "a", "value": "b"}), ValueError, "unknown"),
        (lambda: filter_from_dict({"op": "AND", "filters": []}), ValueError, "non-empty"),
        (lambda: check_metadata({"tag": {"nested": 1}}), TypeError, "metadata"),
        (lambda: check_metadata({"a-b": 1}), ValueError, "invalid metadata key"),
    ],
)
def test_bad_filters_are_clear_errors(make: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()  # type: ignore[operator]


def test_keys_lists_every_key_read() -> None:
    condition = EQ("a", 1) & ~(IN("b", [1]) | CONTAINS("c", "x"))
    assert list(condition.keys()) == ["a", "b", "c"]
