"""``pilothouse chat``'s terminal chat: streaming, history, and Ctrl-C cancelling one answer."""

from __future__ import annotations

import asyncio
import io
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from pilothouse import Agent
from pilothouse.models.base import Model, ModelDelta, ModelRequest
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.utils.chat import chat, printable
from ptyterm import Terminal


def answers(*lines: str) -> Iterator[str]:
    yield from lines


class Screen(io.StringIO):
    """A terminal that is not a terminal (no spinner), recording what was written."""

    def isatty(self) -> bool:
        return False


class WaitsToBeSeen(Model):
    """Streams "Hello " and writes the rest only once "Hello" is on the screen: an answer
    printed only when complete would never finish."""

    id = "waits"
    provider = "test"

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        yield ModelDelta(content="Hello ")
        deadline = time.monotonic() + 5
        while "Hello" not in self.screen.getvalue():
            assert time.monotonic() < deadline, "the first piece was not shown while streaming"
            await asyncio.sleep(0.01)
        yield ModelDelta(content=f"{messages[-1].text()}!")


def test_answers_stream_as_they_are_written() -> None:
    screen = Screen()
    lines = answers("Ada", "")
    code = chat(Agent(model=WaitsToBeSeen(screen)), out=screen, read=lambda _: next(lines))
    assert code == 0
    assert "pilothouse> Hello Ada!\n" in screen.getvalue()


def test_the_conversation_is_kept_across_turns() -> None:
    seen: list[list[str]] = []

    def record(messages: list[Message], tools: object) -> str:
        seen.append([m.text() for m in messages])
        return f"answer {len(seen)}"

    screen = Screen()
    lines = answers("first", "second", "")
    assert chat(Agent(model=FunctionModel(record)), out=screen, read=lambda _: next(lines)) == 0
    assert seen == [["first"], ["first", "answer 1", "second"]]
    assert "pilothouse> answer 2\n" in screen.getvalue()


def test_without_streaming_the_answer_comes_whole() -> None:
    screen = Screen()
    lines = answers("hi", "")
    model = FunctionModel(lambda messages, tools: "one two three")
    assert chat(Agent(model=model), stream=False, out=screen, read=lambda _: next(lines)) == 0
    assert "pilothouse> one two three\n" in screen.getvalue()


def test_model_text_cannot_drive_the_terminal() -> None:
    assert printable("a\x1b]0;owned\x07b\x1b[2Jc\x07d\n\te") == "abcd\n\te"


# ---------------------------------------------------------------------------- in a terminal

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pilothouse import Agent
    from pilothouse.db import SqliteDb
    from pilothouse.models.base import Model, ModelDelta
    from pilothouse.utils.chat import chat

    class Slow(Model):
        id = "slow"
        provider = "test"

        async def stream(self, messages, request):
            await asyncio.sleep(0.5)  # reading the question: the spinner turns meanwhile
            if "long" in messages[-1].text():
                for n in range(2000):  # about 100 s: it only ends by being cancelled
                    yield ModelDelta(content=f"word{n} ")
                    await asyncio.sleep(0.05)
            else:
                yield ModelDelta(content="short answer")

    agent = Agent(model=Slow(), db=SqliteDb(sys.argv[1]), session_id="chat")
    sys.exit(chat(agent))
    """
)


@pytest.fixture
def chat_program(tmp_path: Path) -> tuple[list[str], Path]:
    script = tmp_path / "chat.py"
    script.write_text(SCRIPT)
    return [sys.executable, str(script), str(tmp_path / "chat.db")], tmp_path / "chat.db"


def test_ctrl_c_cancels_the_answer_not_the_chat(chat_program: tuple[list[str], Path]) -> None:
    argv, db_file = chat_program
    terminal = Terminal(argv)
    terminal.read_until("you> ")
    terminal.type("tell me something long\r")
    screen = terminal.read_until("word3 ")  # the answer is streaming
    # Until the first word a spinner turned; it was cleared before the answer began.
    spinner = screen.index("thinking…")
    assert spinner < screen.index("\r\x1b[Kpilothouse> word0 ")
    terminal.type("\x03")  # Ctrl-C
    terminal.read_until("(answer cancelled)")
    terminal.type("and now something short\r")
    screen = terminal.read_until("short answer")
    terminal.type("\r")
    assert terminal.exit_code() == 0, screen
    # The cancelled answer's run is stored as cancelled; the chat went on.
    runs = asyncio.run(_stored_runs(db_file))
    assert [str(run["status"]).lower() for run in runs] == ["cancelled", "completed"]


async def _stored_runs(db_file: Path) -> list[dict[str, object]]:
    from pilothouse.db import SqliteDb

    async with SqliteDb(db_file) as db:
        return await db.get_last_runs("chat", limit=10)
