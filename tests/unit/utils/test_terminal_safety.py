"""Model and tool text cannot steer the user's terminal through print_response."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import pytest
from rich.console import Console

from pilothouse import Agent
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel
from pilothouse.run.output import RunOutput, RunStatus, ToolExecution
from pilothouse.utils.pprint import pprint_run_response
from pilothouse.utils.terminal import safe_text

# What a hostile page or model might send: a window title (OSC 0), a hyperlink (OSC 8) whose
# target differs from its text, clear screen and cursor moves (CSI), a DCS string, the 8-bit
# CSI, a bell, a carriage return that overwrites the line, a backspace.
HOSTILE = (
    "\x1b]0;pwned\x07"
    "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\ "
    "\x1b[2J\x1b[H\x1b[31;1mred\x1b[0m "
    "\x1bP1$qm\x1b\\"
    "\x9b2Jeight"
    "\x07bell\rover\x08written\x1b7\x1bc"
)
VISIBLE = "click here red eightbelloverwritten"

# Everything that makes a terminal act rather than show: ESC, BEL, CR, BS, C1 controls.
_CONTROLS = {chr(c) for c in [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]}


def assert_safe(out: str) -> None:
    found = sorted({repr(c) for c in out if c in _CONTROLS})
    assert not found, f"control characters reached the terminal: {found}"


def test_safe_text_keeps_visible_text_newlines_and_tabs() -> None:
    assert safe_text(HOSTILE) == VISIBLE
    assert safe_text("line 1\n\tline 2 — ünïcode ✓") == "line 1\n\tline 2 — ünïcode ✓"
    # An unterminated OSC swallows the rest, as a terminal would, rather than leaking it.
    assert safe_text("ok\x1b]0;title never ends") == "ok"


def render(output: RunOutput, *, markdown: bool = False) -> str:
    console = Console(file=io.StringIO(), width=400, force_terminal=True, color_system=None)
    pprint_run_response(output, markdown=markdown, console=console)
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


@pytest.mark.parametrize("markdown", [False, True])
def test_answer_reasoning_and_tool_text_are_printed_without_control_sequences(
    markdown: bool,
) -> None:
    tool = ToolExecution(
        tool_name="fetch", tool_args={"url": HOSTILE}, tool_call_id="c1", result=HOSTILE
    )
    output = RunOutput(
        run_id="r1",
        content=f"Answer: {HOSTILE}",
        reasoning_content=f"Thinking {HOSTILE}",
        tools=[tool],
        status=RunStatus.completed,
    )
    out = render(output, markdown=markdown)
    assert_safe(out)
    assert "Answer:" in out and "click here" in out and "Thinking" in out
    # Tool arguments are shown as Python literals: their escapes are visible text.
    assert "fetch(url='\\x1b]0;pwned" in out


def test_structured_answer_and_errors_are_printed_without_control_sequences() -> None:
    out = render(RunOutput(run_id="r1", content={"page": HOSTILE}, status=RunStatus.completed))
    assert_safe(out)
    assert "eight" in out
    failed = render(RunOutput(run_id="r2", content=HOSTILE, status=RunStatus.error))
    assert_safe(failed)
    assert "overwritten" in failed
    # The sequences are gone, parameters included, not merely defused.
    assert "pwned" not in failed and "evil.example" not in failed


def fetch(url: str) -> str:
    """Fetch a web page."""
    return f"<title>{HOSTILE}</title>"


def browse(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"The page says {messages[-1].content}"
    return [ToolCall(name="fetch", arguments={"url": "\x1b]0;x\x07https://a.example"})]


@pytest.mark.parametrize("stream", [False, True])
def test_print_response_of_a_run_shows_no_control_sequences(
    stream: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    def stream_browse(messages: list[Message], tools: list[ToolDefinition]) -> Any:
        reply = browse(messages, tools)
        if isinstance(reply, str):
            # Split inside an escape sequence: each chunk alone looks harmless.
            return iter([reply[:20], reply[20:25], reply[25:]])
        return iter(reply)

    agent = Agent(model=FunctionModel(browse, stream_browse), tools=[fetch])
    agent.print_response(HOSTILE, stream=stream)
    out = capsys.readouterr().out
    assert_safe(out)
    assert "The page says" in out and "click here" in out and "fetch(" in out


@pytest.mark.parametrize("stream", [False, True])
def test_the_cli_shows_a_question_with_escapes_without_them(stream: bool) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, "-m", "pilothouse.cli", "run", f"Hi {HOSTILE}", "--model", "test"]
    done = subprocess.run(
        args + (["--stream"] if stream else []),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert_safe(done.stdout)
    assert "Hi click here red" in done.stdout
