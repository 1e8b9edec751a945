"""Token counts, timing and cost of model calls, summed per run."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Metrics", "Usage"]


@dataclass(slots=True)
class Usage:
    """Token usage reported by a provider for one model call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0


@dataclass(slots=True)
class Metrics:
    """Metrics of one model call, or summed over a run.

    ``time_to_first_token`` is measured from sending the model request to receiving the first
    streamed token (for a run: that of its first model call); ``duration`` is wall time in
    seconds; ``cost`` is in USD and stays None unless the model's price is known.
    ``usage_reported`` is False when a model call's provider reported no token usage (some
    OpenAI-compatible servers send none in streams): the token counts then leave that call
    out rather than being a true 0. ``finish_reason`` is why the model stopped writing (as the
    provider says it, e.g. ``"stop"``, ``"length"``, ``"tool_calls"``; ``"repetition"`` when
    the embedded model's repetition guard cut a loop); for a run, that of its last model call.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    audio_total_tokens: int = 0
    time_to_first_token: float | None = None
    duration: float | None = None
    cost: float | None = None
    model_calls: int = 0
    usage_reported: bool = True
    finish_reason: str | None = None

    @classmethod
    def from_usage(
        cls,
        usage: Usage | None,
        *,
        time_to_first_token: float | None,
        duration: float,
        cost: float | None = None,
        finish_reason: str | None = None,
    ) -> Metrics:
        """Build the metrics of one model call."""
        reported = usage is not None
        if usage is None:
            usage = Usage()
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.input_tokens + usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            audio_input_tokens=usage.audio_input_tokens,
            audio_output_tokens=usage.audio_output_tokens,
            audio_total_tokens=usage.audio_input_tokens + usage.audio_output_tokens,
            time_to_first_token=time_to_first_token,
            duration=duration,
            cost=cost,
            model_calls=1,
            usage_reported=reported,
            finish_reason=finish_reason,
        )

    def add_call(self, call: Metrics) -> None:
        """Add one model call's metrics into these run totals (duration is the run's own)."""
        # Spelled out rather than looped over field names: this runs after every model call.
        self.input_tokens += call.input_tokens
        self.output_tokens += call.output_tokens
        self.total_tokens += call.total_tokens
        self.cache_read_tokens += call.cache_read_tokens
        self.cache_write_tokens += call.cache_write_tokens
        self.reasoning_tokens += call.reasoning_tokens
        self.audio_input_tokens += call.audio_input_tokens
        self.audio_output_tokens += call.audio_output_tokens
        self.audio_total_tokens += call.audio_total_tokens
        if self.time_to_first_token is None:
            self.time_to_first_token = call.time_to_first_token
        if call.cost is not None:
            self.cost = (self.cost or 0.0) + call.cost
        self.model_calls += call.model_calls
        if not call.usage_reported:
            self.usage_reported = False
        if call.finish_reason is not None:
            self.finish_reason = call.finish_reason

    def __add__(self, other: Metrics) -> Metrics:
        total = Metrics()
        total.add_call(self)
        total.add_call(other)
        total.time_to_first_token = self.time_to_first_token
        if self.duration is not None or other.duration is not None:
            total.duration = (self.duration or 0.0) + (other.duration or 0.0)
        return total

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        """Rebuild Metrics from `to_dict` output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
