"""The model interface every adapter implements, and the normalised stream it returns.

A model has one job: take the normalised messages and tool definitions and return an async
iterator of `ModelDelta` values (text, reasoning, tool-call fragments, usage). A non-streaming
call is the same iterator collected by `Model.response`. Adapters translate to and from their
provider's wire format; nothing provider-specific leaks past `pilothouse.models`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pilothouse.models.message import Message, ToolCall
from pilothouse.run.metrics import Usage

__all__ = [
    "Model",
    "ModelDelta",
    "ModelRequest",
    "ModelResponse",
    "ToolCallChunk",
    "ToolChoice",
    "ToolDefinition",
]

# "auto", "none", "required", or the name of the one tool the model must call.
ToolChoice = str


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """What a model is told about one tool: its name, description and JSON schema."""

    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(slots=True)
class ToolCallChunk:
    """A fragment of a tool call in a stream.

    Fragments with the same ``index`` belong to one call: the first usually carries ``id`` and
    ``name``, later ones more ``arguments`` text. A model that knows a whole call at once
    sends one chunk with everything.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ModelDelta:
    """One piece of a model's streamed answer."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallChunk] | None = None
    usage: Usage | None = None
    # Why the model stopped ("stop", "length", "tool_calls", "repetition", ...), on the delta
    # that ends the answer; None when the provider does not say.
    finish_reason: str | None = None


@dataclass(slots=True)
class ModelRequest:
    """Everything one model call needs besides the messages."""

    tools: Sequence[ToolDefinition] = ()
    tool_choice: ToolChoice | None = None
    output_schema: Any = None
    # Whether the run streams its answer: an adapter may then make a whole (non-streamed)
    # request when it does not, which some servers need to report token usage.
    stream: bool = True


@dataclass(slots=True)
class ModelResponse:
    """A whole model answer: assembled from deltas by `ResponseAssembler`."""

    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None


class ResponseAssembler:
    """Collects streamed deltas into a `ModelResponse`, joining tool-call fragments by index."""

    __slots__ = ("_calls", "_content", "_reasoning", "finish_reason", "usage")

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, ToolCallChunk] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def add(self, delta: ModelDelta) -> None:
        """Take in one delta."""
        if delta.content:
            self._content.append(delta.content)
        if delta.reasoning:
            self._reasoning.append(delta.reasoning)
        if delta.tool_calls:
            for chunk in delta.tool_calls:
                known = self._calls.get(chunk.index)
                if known is None:
                    self._calls[chunk.index] = ToolCallChunk(
                        chunk.index, chunk.id, chunk.name, chunk.arguments
                    )
                else:
                    known.id = known.id or chunk.id
                    known.name = known.name or chunk.name
                    known.arguments += chunk.arguments
        if delta.usage is not None:
            self.usage = _merge_usage(self.usage, delta.usage)
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason

    def response(self) -> ModelResponse:
        """Return what was collected so far as one response."""
        calls = []
        for index in sorted(self._calls):
            chunk = self._calls[index]
            call = ToolCall(name=chunk.name or "", arguments=chunk.arguments)
            if chunk.id:
                call.id = chunk.id
            calls.append(call)
        return ModelResponse(
            content="".join(self._content),
            reasoning="".join(self._reasoning) or None,
            tool_calls=calls,
            usage=self.usage,
            finish_reason=self.finish_reason,
        )


def _merge_usage(old: Usage | None, new: Usage) -> Usage:
    # Providers differ: OpenAI sends usage once at the end, Anthropic sends input tokens at
    # the start and output tokens at the end. Taking the larger of each count covers both.
    if old is None:
        return new
    return Usage(
        *(max(getattr(old, name), getattr(new, name)) for name in Usage.__dataclass_fields__)
    )


class Model:
    """Base class of model adapters.

    Subclasses set ``id`` and ``provider`` and implement `stream`. Constructing a model must
    be cheap: SDK clients are created and heavy modules imported on the first call. (A plain
    class rather than an ABC: ``isinstance(x, Model)`` runs on every Agent construction.)
    """

    id: str
    provider: str = "unknown"

    @property
    def name(self) -> str:
        """A readable name: the class name."""
        return type(self).__name__

    def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Send the messages and yield the answer as it arrives.

        Raise `pilothouse.exceptions.ModelProviderError` for provider failures, with a status
        code where there is one, so that the run loop can decide whether to retry.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement stream()")

    def price(self, usage: Usage) -> float | None:
        """Return the cost in USD of a call with this usage, or None when it is not known."""
        return None

    async def response(
        self, messages: Sequence[Message], request: ModelRequest | None = None
    ) -> ModelResponse:
        """Call the model and return the whole answer at once."""
        assembler = ResponseAssembler()
        async for delta in self.stream(messages, request or ModelRequest()):
            assembler.add(delta)
        return assembler.response()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"
