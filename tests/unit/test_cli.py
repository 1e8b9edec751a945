"""The ``pilothouse`` command, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pilothouse.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_answers_and_exits_zero() -> None:
    done = cli("run", "hello there", "--model", "test")
    assert done.returncode == 0, done.stderr
    assert "hello there" in done.stdout
    assert "success (no tool calls)" in done.stdout


def test_run_streams() -> None:
    done = cli("run", "hi", "--model", "test", "--stream")
    assert done.returncode == 0, done.stderr
    assert "success (no tool calls)" in done.stdout


def test_chat_keeps_the_conversation() -> None:
    done = cli("chat", "--model", "test", stdin="first\nsecond\n\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("success (no tool calls)") == 2


def test_unknown_provider_is_a_clear_error() -> None:
    done = cli("run", "hi", "--model", "nosuch:model")
    assert done.returncode == 2
    assert "Unknown model provider 'nosuch'" in done.stderr


def test_chat_sends_the_whole_conversation_each_turn(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from pilothouse import Agent
    from pilothouse.cli import _chat
    from pilothouse.models.test import FunctionModel

    seen: list[list[str]] = []

    def record(messages, tools):  # type: ignore[no-untyped-def]
        seen.append([m.text() for m in messages])
        return f"answer {len(seen)}"

    answers = iter(["first", "second", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert _chat(Agent(model=FunctionModel(record)), stream=False) == 0
    assert seen == [["first"], ["first", "answer 1", "second"]]
    assert "answer 2" in capsys.readouterr().out


def test_debug_logs_each_runs_messages() -> None:
    done = cli("chat", "--model", "test", "--debug", stdin="first\nsecond\n\n")
    assert done.returncode == 0, done.stderr
    # The second run was sent the whole conversation.
    second_run = done.stderr.split("ended COMPLETED")[2]
    assert "user: first" in second_run and "user: second" in second_run


def test_chat_streams_by_default_and_no_stream_turns_it_off() -> None:
    from pilothouse.cli import _parser

    assert _parser().parse_args(["chat"]).stream is True
    assert _parser().parse_args(["chat", "--no-stream"]).stream is False
    assert _parser().parse_args(["run", "hi"]).stream is False
