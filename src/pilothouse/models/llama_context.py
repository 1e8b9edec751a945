"""Fitting a conversation into a local model's context window.

A GGUF file records the context length its model was trained for; `gguf_context_length` reads
it from the file's header (without loading the weights), so that `LlamaCpp` can size its
context from the file. `fit_messages` then makes each request fit that window before anything
is generated: the oldest history goes first (whole turns, with a debug line), the current turn
and the instructions stay, and a request that still does not fit is refused with an error that
says by how much and what to change, rather than failing or being cut inside llama.cpp.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from pilothouse.exceptions import ModelProviderError

__all__ = ["MIN_ANSWER_TOKENS", "Fitted", "fit_messages", "gguf_context_length"]

logger = logging.getLogger("pilothouse")

# A request is refused when the prompt leaves less room than this for the answer.
MIN_ANSWER_TOKENS = 16
# Room kept for the answer when trimming a request without max_tokens.
_DEFAULT_ANSWER_ROOM = 256

# GGUF value types: fixed sizes by type id (8 is a string, 9 an array).
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}


def gguf_context_length(path: Path) -> int | None:
    """The ``<architecture>.context_length`` recorded in a GGUF file, or None when the file
    has none or is not a GGUF file this reader understands (versions 2 and 3)."""
    try:
        with path.open("rb") as file:
            if file.read(4) != b"GGUF":
                return None
            (version,) = struct.unpack("<I", file.read(4))
            if version not in (2, 3):
                return None
            _tensors, count = struct.unpack("<QQ", file.read(16))
            for _ in range(count):
                key = _string(file)
                (kind,) = struct.unpack("<I", file.read(4))
                if key.endswith(".context_length") and kind in _INTS:
                    (value,) = struct.unpack(_INTS[kind], file.read(_FIXED[kind]))
                    return int(value) if value > 0 else None
                _skip(file, kind)
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        logger.debug("could not read the context length of %s", path, exc_info=True)
    return None


def _string(file: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", file.read(8))
    return file.read(length).decode("utf-8")


def _skip(file: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        file.seek(_FIXED[kind], 1)
    elif kind == 8:
        (length,) = struct.unpack("<Q", file.read(8))
        file.seek(length, 1)
    elif kind == 9:
        item_kind, length = struct.unpack("<IQ", file.read(12))
        if item_kind in _FIXED:
            file.seek(_FIXED[item_kind] * length, 1)
        else:
            for _ in range(length):
                _skip(file, item_kind)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


class Fitted:
    """A request made to fit: the messages to send and the most tokens the answer may have."""

    __slots__ = ("dropped", "max_tokens", "messages", "prompt_tokens")

    def __init__(
        self, messages: list[dict[str, Any]], max_tokens: int, prompt_tokens: int, dropped: int
    ) -> None:
        self.messages = messages
        self.max_tokens = max_tokens
        self.prompt_tokens = prompt_tokens
        self.dropped = dropped


def fit_messages(
    messages: list[dict[str, Any]],
    *,
    count: Callable[[Sequence[dict[str, Any]]], int],
    n_ctx: int,
    max_tokens: int | None,
    model_id: str,
) -> Fitted:
    """Fit ``messages`` and the answer into ``n_ctx`` tokens.

    ``count`` gives the prompt tokens of a list of messages (tools included). Whole turns of
    history are dropped oldest first (a user message; an assistant message with the tool
    results that answer it) until the prompt leaves room for the answer (``max_tokens``, or
    256 tokens when there is no limit); the leading system messages and the current turn (from
    the last user message on) always stay. When even those leave less than
    `MIN_ANSWER_TOKENS` the request is refused; when they leave less than ``max_tokens`` the
    answer gets what is left.

    Raises:
        ModelProviderError: The request cannot fit (not retryable).
    """
    wanted = min(max_tokens or _DEFAULT_ANSWER_ROOM, max(n_ctx - MIN_ANSWER_TOKENS, 1))
    tokens = count(messages)
    kept = messages
    dropped = 0
    if tokens + wanted > n_ctx:
        kept, dropped = list(messages), 0
        for start, end in _droppable_turns(messages):
            del kept[start - dropped : end - dropped]
            dropped += end - start
            tokens = count(kept)
            if tokens + wanted <= n_ctx:
                break
        if dropped:
            logger.debug(
                "the request did not fit the context of %s (%d tokens): dropped the %d oldest "
                "of %d messages",
                model_id,
                n_ctx,
                dropped,
                len(messages),
            )
    room = n_ctx - tokens
    if room < MIN_ANSWER_TOKENS:
        raise ModelProviderError(
            f"The request does not fit the context of the local model {model_id}: its prompt "
            f"takes {tokens} tokens even without the earlier history, and the context holds "
            f"{n_ctx} tokens with at least {MIN_ANSWER_TOKENS} kept for the answer. Shorten "
            "the input, the instructions or the tools, or use LlamaCpp(n_ctx=...) with a "
            "larger context.",
            retryable=False,
            model_name="LlamaCpp",
            model_id=model_id,
        )
    limit = room if max_tokens is None else min(max_tokens, room)
    return Fitted(kept, limit, tokens, dropped)


def _droppable_turns(messages: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    """The (start, end) slices of the history that may go, oldest first.

    Leading system messages and everything from the last user message on stay; an assistant
    message goes together with the tool results that follow it.
    """
    first = 0
    while first < len(messages) and messages[first].get("role") == "system":
        first += 1
    last_user = max(
        (i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages)
    )
    turns: list[tuple[int, int]] = []
    index = first
    while index < last_user:
        end = index + 1
        if messages[index].get("role") == "assistant":
            while end < last_user and messages[end].get("role") == "tool":
                end += 1
        turns.append((index, end))
        index = end
    return turns
