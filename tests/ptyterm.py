"""A program in a pseudo-terminal, for tests of what users see in their terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import time

__all__ = ["Terminal"]


class Terminal:
    """A program in a pseudo-terminal: what it writes, and keys typed into it."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the program
            os.execv(argv[0], argv)
        self.output = ""
        # The screen after each read: what the user saw at each moment, in order.
        self.snapshots: list[str] = []

    def read_until(self, text: str, timeout: float = 30, *, count: int = 1) -> str:
        """Read until ``text`` has appeared ``count`` times in all; return all output."""
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} within {timeout} s; the terminal shows:\n{self.output}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:  # the program ended
                    data = b""
                assert data, f"the program ended before {text!r}:\n{self.output}"
                self.output += data.decode("utf-8", "replace")
                self.snapshots.append(self.output)
        return self.output

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:  # keep draining, or a full terminal buffer blocks the program
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.output += os.read(self.fd, 4096).decode("utf-8", "replace")
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"the program did not exit:\n{self.output}")
