"""Costs from genai-prices' bundled data: exact providers only, None when unknown, no network."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from pilothouse.models import pricing
from pilothouse.run.metrics import Usage


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_price_matches_genai_prices_for_an_openai_model() -> None:
    usage = Usage(input_tokens=12_000, output_tokens=3_000)
    expected = calc_price(
        PriceUsage(input_tokens=12_000, output_tokens=3_000), "gpt-5-mini", provider_id="openai"
    ).total_price
    cost = pricing.price("openai", "gpt-5-mini", usage)
    assert cost is not None and cost > 0
    assert Decimal(str(cost)) == pytest.approx(expected)


def test_cached_input_tokens_cost_less() -> None:
    plain = pricing.price("openai", "gpt-5-mini", Usage(input_tokens=10_000, output_tokens=0))
    cached = pricing.price(
        "openai",
        "gpt-5-mini",
        Usage(input_tokens=10_000, output_tokens=0, cache_read_tokens=8_000),
    )
    assert plain is not None and cached is not None
    assert cached < plain


def test_anthropic_cache_writes_are_priced() -> None:
    base = Usage(input_tokens=10_000, output_tokens=100)
    written = Usage(input_tokens=10_000, output_tokens=100, cache_write_tokens=10_000)
    plain = pricing.price("anthropic", "claude-sonnet-4-5", base)
    with_write = pricing.price("anthropic", "claude-sonnet-4-5", written)
    assert plain is not None and with_write is not None
    assert with_write > plain  # cache writes cost more than plain input


@pytest.mark.parametrize(
    ("provider", "model_id"),
    [
        ("openai", "smollm2"),
        ("openai-like", "gpt-5-mini"),  # not an exact provider id: no fuzzy match to openai
        ("no-such-provider", "gpt-5-mini"),
        ("", "gpt-5-mini"),
    ],
)
def test_unknown_provider_or_model_has_no_price(provider: str, model_id: str) -> None:
    usage = Usage(input_tokens=100, output_tokens=100)
    assert pricing.price(provider, model_id, usage) is None
    # Asked again: answered from the cache of misses, still None.
    assert pricing.price(provider, model_id, usage) is None


def test_usage_that_cannot_be_split_unambiguously_has_no_price() -> None:
    # Cached and audio input tokens without saying how many cached tokens were audio.
    usage = Usage(
        input_tokens=1000, output_tokens=10, cache_read_tokens=200, audio_input_tokens=100
    )
    assert pricing.price("openai", "gpt-realtime", usage) is None


def test_known_provider_is_exact() -> None:
    assert pricing.known_provider("openai") and pricing.known_provider("anthropic")
    assert not pricing.known_provider("openai-like")


def test_pricing_never_starts_the_price_updater() -> None:
    from genai_prices import data_snapshot

    pricing.preload()
    pricing.price("openai", "gpt-5-mini", Usage(input_tokens=1, output_tokens=1))
    assert data_snapshot._custom_snapshot is None
