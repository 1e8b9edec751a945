"""Stopping a generation that has started repeating itself.

Small models sometimes fall into a loop: the same sentence (or word, or punctuation) again and
again until the token limit. `RepetitionGuard` watches the generated text one piece at a time.
For every period ``p`` (in characters) it keeps how many of the last characters equal the one
``p`` characters earlier; when the text ends with the same unit three times in a row (and
those copies span enough characters to be more than a word's own letters), the text is
degenerate: the guard says so and gives back the text up to the end of the unit's first
occurrence.

So that the copies never reach the reader, text that is currently copying earlier text is held
back until it either stops copying (it is released) or becomes a repetition (it is dropped).
Ordinary text copies earlier text for a few characters at most, so the hold-back is short.
Digits count as equal, so that a numbered list of the same line ("5. Use the API.", "6. Use
the API.", ...) is a loop too; a unit with digits needs words besides (counting "1, 2, 3, ..."
or listing times is not a loop). A character costs one step per occurrence of it among the
last ``max_period`` characters (about 8 µs per token of English text).
"""

from __future__ import annotations

from collections import deque

__all__ = ["RepetitionGuard", "find_repetition"]

_MIN_LETTERS_WITH_DIGITS = 8


class RepetitionGuard:
    """Watches streamed text and stops it at the first degenerate repetition.

    Args:
        max_period: The longest repeated unit looked for, in characters.
        copies: How many consecutive copies of a unit make a repetition.
        min_span: The copies together span at least this many characters (so that "ha ha ha"
            are not a loop, but 24 of the same character are).
    """

    __slots__ = (
        "_active",
        "_chars",
        "_emitted",
        "_keys",
        "_where",
        "copies",
        "max_period",
        "min_span",
        "repeated",
    )

    def __init__(self, *, max_period: int = 200, copies: int = 3, min_span: int = 24) -> None:
        if max_period < 1 or copies < 2 or min_span < 1:
            raise ValueError("RepetitionGuard: max_period >= 1, copies >= 2, min_span >= 1")
        self.max_period = max_period
        self.copies = copies
        self.min_span = min_span
        self._chars: list[str] = []
        self._keys: list[str] = []  # the characters as compared: every digit is "0"
        # period p -> how many of the last characters equal the character p positions earlier
        # (only the periods where that is more than none).
        self._active: dict[int, int] = {}
        # Where each character was seen within the last max_period positions: only those
        # positions can continue or start a copy, so a character costs as many steps as it
        # has recent occurrences, not max_period.
        self._where: dict[str, deque[int]] = {}
        self._emitted = 0
        self.repeated = False

    def feed(self, piece: str) -> str:
        """Take the next piece of text; return the text that can be shown now.

        Once a repetition is found (``repeated`` turns true) the returned text ends the answer:
        it completes the unit's first occurrence; later pieces are ignored.
        """
        if self.repeated:
            return ""
        chars, keys, where = self._chars, self._keys, self._where
        copies, min_span, max_period = self.copies - 1, self.min_span, self.max_period
        active = self._active
        for char in piece:
            key = "0" if char.isdigit() else char
            index = len(chars)
            chars.append(char)
            keys.append(key)
            seen = where.get(key)
            if seen is None:
                seen = where[key] = deque()
            while seen and index - seen[0] > max_period:
                seen.popleft()
            runs: dict[int, int] = {}
            for position in reversed(seen):  # the shortest period first
                period = index - position
                run = active.get(period, 0) + 1
                runs[period] = run
                if run >= copies * period and run + period >= min_span and _worded(chars, period):
                    self._active = runs
                    return self._cut(len(chars) - run, period)
            seen.append(index)
            active = runs
        self._active = active
        held = max(active.values(), default=0)
        end = max(self._emitted, len(chars) - held)
        out = "".join(chars[self._emitted : end])
        self._emitted = end
        return out

    def flush(self) -> str:
        """The text still held back, at the end of a generation that did not repeat."""
        if self.repeated:
            return ""
        out = "".join(self._chars[self._emitted :])
        self._emitted = len(self._chars)
        return out

    def _cut(self, end: int, period: int) -> str:
        self.repeated = True
        # Where the copies start is ambiguous by the characters the unit shares with the text
        # before it ("Hi. Me too. Me too." repeats from its first "."): end on a word's end.
        chars = self._chars
        limit = min(len(chars), end + period - 1)
        while end < limit and not chars[end - 1].isspace() and not chars[end].isspace():
            end += 1
        # The first occurrence often ends with the space or newline before the next copy.
        while end > self._emitted and self._chars[end - 1].isspace():
            end -= 1
        out = "".join(self._chars[self._emitted : end])
        self._emitted = end
        return out


def _worded(chars: list[str], period: int) -> bool:
    """Whether the last unit of ``period`` characters is a loop even though its digits may
    differ from copy to copy: it has none, or it has a few words besides."""
    unit = chars[-period:]
    if not any(char.isdigit() for char in unit):
        return True
    return sum(char.isalpha() for char in unit) >= _MIN_LETTERS_WITH_DIGITS


def find_repetition(text: str, **settings: int) -> int | None:
    """Where a degenerate repetition in ``text`` starts to repeat (the end of the first
    occurrence), or None when there is none. Settings as for `RepetitionGuard`."""
    guard = RepetitionGuard(**settings)
    kept = guard.feed(text)
    if not guard.repeated:
        return None
    return len(kept)
