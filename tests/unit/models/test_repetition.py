"""The repetition guard: a loop is stopped at its first occurrence, ordinary text passes."""

from __future__ import annotations

import re

import pytest

from pilothouse.models.repetition import RepetitionGuard, find_repetition


def stream(guard: RepetitionGuard, text: str) -> list[str]:
    """Feed ``text`` token-like (a word and its space at a time); return what was let out."""
    shown = []
    for piece in re.findall(r"\S+\s*|\s+", text):
        shown.append(guard.feed(piece))
        if guard.repeated:
            break
    else:
        shown.append(guard.flush())
    return shown


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Hello! " + "I'm so glad you're here. " * 6, "Hello! I'm so glad you're here."),
        ("Sure:\n" + "- apples\n- pears\n" * 5, "Sure:\n- apples\n- pears"),
        ("Yes" + "!" * 80, "Yes!"),
        ("Paris " * 10, "Paris"),
        (
            "Steps:\n" + "".join(f"{n}. Use the API to get the data.\n" for n in range(1, 30)),
            "Steps:\n1. Use the API to get the data.",
        ),
    ],
)
def test_a_loop_is_cut_after_its_first_occurrence(text: str, kept: str) -> None:
    guard = RepetitionGuard()
    shown = stream(guard, text)
    assert guard.repeated
    assert "".join(shown).rstrip() == kept


@pytest.mark.parametrize(
    "text",
    [
        "The capital of France is Paris. The capital of Spain is Madrid. The capital of "
        "Italy is Rome.",
        "1. Apples\n2. Pears\n3. Plums\n4. Cherries\n5. Grapes\n",
        "Ha ha ha, very funny!",
        "It was a very, very, very good day.",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
        "Counting: " + ", ".join(str(n) for n in range(1, 40)),
        "Open at 10:00, 11:00, 12:00, 13:00, 14:00 and 15:00.",
    ],
)
def test_ordinary_text_passes_whole(text: str) -> None:
    guard = RepetitionGuard()
    assert "".join(stream(guard, text)) == text
    assert not guard.repeated
    assert find_repetition(text) is None


def test_text_is_held_back_only_while_it_copies_earlier_text() -> None:
    guard = RepetitionGuard()
    shown = guard.feed("Good morning! How are you today?")
    assert shown == "Good morning! How are you today?"
    # A second copy starting is held back until it turns out to be something else.
    assert guard.feed(" How are you") == ""
    assert (guard.feed(" doing?") + guard.flush()) == " How are you doing?"


def test_find_repetition_says_where_the_first_occurrence_ends() -> None:
    text = "Hi. " + "Me too. " * 5
    assert find_repetition(text) == len("Hi. Me too.")
    with pytest.raises(ValueError, match="copies"):
        RepetitionGuard(copies=1)
