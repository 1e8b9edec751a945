"""Tracing fixtures: the SDK's in-memory span exporter and metric reader, wired with
`pilothouse.observe.instrument` (never the process-wide providers, which can be set once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_recorder import Recorded


@pytest.fixture
def otel() -> Iterator[Recorded]:
    """Runs traced into memory, content not captured (the default)."""
    recorded = Recorded()
    yield recorded
    recorded.close()


@pytest.fixture
def otel_with_content() -> Iterator[Recorded]:
    """Runs traced into memory, with messages and tool arguments and results captured."""
    recorded = Recorded(capture_content=True)
    yield recorded
    recorded.close()
