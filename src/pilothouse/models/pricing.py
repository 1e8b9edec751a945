"""The cost in USD of a model call, from the prices bundled with the ``genai-prices`` package.

Prices come only from the data shipped inside the installed package: Pilothouse never starts
genai-prices' background updater, so pricing makes no network request. A provider or model
the data does not know has no price (None), never an estimate.

Token counts follow the OpenAI convention that genai-prices expects: ``input_tokens`` counts
every prompt token, cached ones included, and ``cache_read_tokens`` / ``cache_write_tokens``
say how many of those were read from or written to the provider's cache (adapters of
providers that report cache tokens separately add them into ``input_tokens``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from pilothouse.run.metrics import Usage

__all__ = ["known_provider", "preload", "price"]

logger = logging.getLogger("pilothouse")

# (provider, model id) pairs the bundled data has no price for: looked up once, not per call.
_unknown: set[tuple[str, str]] = set()
_providers: frozenset[str] | None = None
_lock = threading.Lock()


def _provider_ids() -> frozenset[str]:
    global _providers
    if _providers is None:
        with _lock:
            if _providers is None:
                from genai_prices.data_snapshot import get_snapshot

                _providers = frozenset(p.id for p in get_snapshot().providers)
    return _providers


def preload() -> None:
    """Import genai-prices and load its bundled data now.

    Both take a noticeable fraction of a second; adapters call this from a worker thread
    before their first call so that the first `price` does not block an event loop.
    """
    with contextlib.suppress(ImportError):
        _provider_ids()


def known_provider(provider: str) -> bool:
    """Whether genai-prices has prices for this provider id (exact id, e.g. "openai")."""
    try:
        return provider in _provider_ids()
    except ImportError:
        return False


def _price_usage(usage: Usage) -> Any:
    from genai_prices import Usage as PriceUsage

    values = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "input_audio_tokens": usage.audio_input_tokens,
        "output_audio_tokens": usage.audio_output_tokens,
    }
    # Reasoning tokens are already part of the output tokens and billed as output.
    return PriceUsage(**{key: value for key, value in values.items() if value})


def price(provider: str, model_id: str, usage: Usage) -> float | None:
    """Return the cost in USD of one call, or None when the price is not known.

    Args:
        provider: A genai-prices provider id such as ``"openai"`` or ``"anthropic"``; it must
            match exactly (no fuzzy matching, so that a self-hosted model is never billed at
            a hosted provider's rates).
        model_id: The model id as sent to the provider; genai-prices matches dated variants.
        usage: The token counts of the call.
    """
    key = (provider, model_id)
    if key in _unknown:
        return None
    try:
        if provider not in _provider_ids():
            _unknown.add(key)
            return None
        from genai_prices import calc_price

        result = calc_price(_price_usage(usage), model_id, provider_id=provider)
    except ImportError:
        _unknown.add(key)
        return None
    except LookupError:
        logger.debug("no price known for %s model %r", provider, model_id)
        _unknown.add(key)
        return None
    except ValueError as exc:
        # The usage cannot be priced unambiguously (e.g. cached tokens and audio tokens
        # without a split between them): no number rather than a wrong one.
        logger.debug("cannot price %s model %r for %s: %s", provider, model_id, usage, exc)
        return None
    return float(result.total_price)
