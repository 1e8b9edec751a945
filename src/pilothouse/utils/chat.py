"""The terminal chat of ``pilothouse chat``: answers stream as they are written.

`chat` reads a question per line and keeps the conversation for the session. While the model
has not written anything yet a spinner turns (on a terminal); then the answer is printed as
it arrives. Ctrl-C during an answer cancels that answer (the run is stored ``cancelled``) and
the chat goes on; Ctrl-C or Ctrl-D at the prompt, or an empty line, ends the session.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pilothouse.agent import Agent
    from pilothouse.models.message import Message

__all__ = ["chat", "printable"]

_PROMPT = "you> "
_ANSWER = "pilothouse> "
_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
# Escape sequences (CSI, OSC, ...) and control characters but newline and tab: text from a
# model must not move the cursor, retitle the window or clear the screen.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: cursor, colours, clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks
    r"|\x1b[@-_]?"  # other escapes
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # control characters
)


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (but newlines and
    tabs)."""
    return _CONTROL.sub("", text)


class _Spinner:
    """Turns on the terminal's current line until stopped; nothing when not a terminal."""

    def __init__(self, out: TextIO, label: str = "thinking") -> None:
        self._out = out
        self._label = label
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        isatty = getattr(self._out, "isatty", None)
        if callable(isatty) and isatty():
            self._thread = threading.Thread(target=self._spin, name="pilothouse-spinner")
            self._thread.daemon = True
            self._thread.start()

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1 if frame else 0):
            with self._lock:
                if self._stop.is_set():
                    return
                self._out.write(f"\r{_FRAMES[frame % len(_FRAMES)]} {self._label}…")
                self._out.flush()
            frame += 1

    def stop(self) -> None:
        """Stop turning and clear the line (back to where the answer starts)."""
        if self._thread is None or self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
            self._out.write("\r\x1b[K")
            self._out.flush()
        self._thread.join(timeout=1)


class _Turn:
    """One answer being shown: streamed text, tool lines, and Ctrl-C cancelling it."""

    def __init__(self, agent: Agent, out: TextIO, *, stream: bool) -> None:
        self.agent = agent
        self.out = out
        self.stream = stream
        self.run_id = f"run-{uuid.uuid4().hex}"
        self.spinner = _Spinner(out)
        self.interrupted = False
        self.cancel_sent = False
        self.text: list[str] = []
        self.status = "running"

    def on_interrupt(self, _signum: int, _frame: Any) -> None:
        if self.interrupted:
            raise KeyboardInterrupt  # a second Ctrl-C leaves the chat
        self.interrupted = True
        # The run's loop may be running in this very thread, under this handler: ask from
        # another thread, which wakes the loop up.
        threading.Thread(target=self._cancel, name="pilothouse-cancel", daemon=True).start()

    def _cancel(self) -> None:
        self.cancel_sent = self.agent.cancel_run(self.run_id, reason="cancelled with Ctrl-C")

    def show(self, history: list[Message]) -> None:
        from pilothouse.run.events import (
            RunCancelledEvent,
            RunCompletedEvent,
            RunContentEvent,
            RunErrorEvent,
            ToolCallCompletedEvent,
        )

        self.spinner.start()
        started = False
        events = self.agent.run(list(history), stream=True, stream_events=True, run_id=self.run_id)
        try:
            for event in events:
                if self.interrupted and not self.cancel_sent:
                    # Ctrl-C came before the run was in flight: ask again now that it is.
                    self._cancel()
                if isinstance(event, RunContentEvent) and isinstance(event.content, str):
                    if self.stream and event.content:
                        if not started:
                            self.spinner.stop()
                            self.out.write(_ANSWER)
                            started = True
                        self.out.write(printable(event.content))
                        self.out.flush()
                    self.text.append(event.content)
                elif isinstance(event, ToolCallCompletedEvent) and event.tool is not None:
                    self._tool_line(event.tool, started)
                    started = False
                    self.spinner = _Spinner(self.out)
                    self.spinner.start()
                elif isinstance(event, RunCompletedEvent):
                    self._finish(event.content, started)
                    self.status = "completed"
                elif isinstance(event, RunCancelledEvent):
                    self._end_line(started, "(answer cancelled)")
                    self.status = "cancelled"
                elif isinstance(event, RunErrorEvent):
                    self._end_line(
                        started, f"error: {printable(event.content or 'the run failed')}"
                    )
                    self.status = "error"
        finally:
            self.spinner.stop()
            close = getattr(events, "close", None)
            if callable(close):
                # A second Ctrl-C in the middle of a step leaves the stream unclosable; the
                # process is leaving anyway.
                with contextlib.suppress(RuntimeError):
                    close()

    def _tool_line(self, tool: Any, started: bool) -> None:
        self.spinner.stop()
        if started:
            self.out.write("\n")
        args = ", ".join(f"{k}={v!r}" for k, v in (tool.tool_args or {}).items())
        result = " ".join(str(tool.result).split())[:160]
        self.out.write(printable(f"  • {tool.tool_name}({args}) → {result}") + "\n")
        self.out.flush()
        self.text.clear()

    def _finish(self, content: Any, started: bool) -> None:
        self.spinner.stop()
        answer = content if isinstance(content, str) else "".join(self.text)
        if started:
            self.out.write("\n")
        else:
            self.out.write(_ANSWER + printable(answer) + "\n")
        self.out.flush()

    def _end_line(self, started: bool, note: str) -> None:
        self.spinner.stop()
        self.out.write(("\n" if started else "") + note + "\n")
        self.out.flush()


@contextmanager
def _ctrl_c(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Route Ctrl-C to ``handler`` (main thread only; elsewhere Ctrl-C stays as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def chat(
    agent: Agent,
    *,
    stream: bool = True,
    out: TextIO | None = None,
    read: Callable[[str], str] = input,
) -> int:
    """Chat with ``agent`` in the terminal until an empty line, Ctrl-D or Ctrl-C at the
    prompt; return the exit code. The whole conversation goes to the agent each turn."""
    from pilothouse.models.message import Message

    out = out or sys.stdout
    history: list[Message] = []
    out.write(
        "Chatting with Pilothouse. An empty line or Ctrl-D ends the session; "
        "Ctrl-C stops an answer.\n"
    )
    out.flush()
    while True:
        # The prompt goes where the answers go: input() would write it to stderr on a terminal.
        out.write(_PROMPT)
        out.flush()
        try:
            question = read("").strip()
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            return 0
        if not question:
            return 0
        history.append(Message(role="user", content=question))
        turn = _Turn(agent, out, stream=stream)
        try:
            with _ctrl_c(turn.on_interrupt):
                turn.show(history)
        except KeyboardInterrupt:
            out.write("\n")
            return 130
        last = agent.get_last_run_output()
        if turn.status == "completed" and last is not None:
            history.append(Message(role="assistant", content=last.get_content_as_string()))
        else:
            history.pop()
