"""Building ModelProviderError from HTTP failures: the retry rule and retry-after parsing."""

from __future__ import annotations

import email.utils

import pytest

from pilothouse.models.errors import is_retryable_status, parse_retry_after, provider_error
from pilothouse.models.test import TestModel


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (None, True),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (529, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (422, False),
    ],
)
def test_retry_rule(status: int | None, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable
    assert provider_error("x", status).retryable is retryable


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"retry-after": "12"}, 12.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "3"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "tomorrow"}, None),
        ({"retry-after": b"4"}, 4.0),
    ],
)
def test_parse_retry_after(headers: dict[str, object] | None, expected: float | None) -> None:
    assert parse_retry_after(headers) == expected  # type: ignore[arg-type]


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    now = 1_700_000_000.0
    headers = {"retry-after": email.utils.formatdate(now + 30, usegmt=True)}
    assert parse_retry_after(headers, now=now) == pytest.approx(30.0)
    past = {"retry-after": email.utils.formatdate(now - 30, usegmt=True)}
    assert parse_retry_after(past, now=now) == 0.0


def test_provider_error_carries_status_delay_and_model() -> None:
    error = provider_error(
        "slow down", 429, {"retry-after": "2"}, model=TestModel(), retryable=False
    )
    assert str(error) == "slow down"
    assert (error.status_code, error.retry_after, error.retryable) == (429, 2.0, False)
    assert (error.model_name, error.model_id) == ("TestModel", "test")
