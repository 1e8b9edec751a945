"""Media are stored once per run: in its RunInput, not again in its messages or later history."""

from __future__ import annotations

from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.db import InMemoryDb
from pilothouse.media import Image
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_media_are_stored_once_and_come_back_as_media_objects() -> None:
    seen: list[list[Message]] = []

    def decide(messages: list[Message], tools: Any) -> str:
        seen.append(list(messages))
        return "a black square"

    db = InMemoryDb()
    agent = Agent(model=FunctionModel(decide), db=db, add_history_to_context=True)
    first = await agent.arun("Describe", images=[Image(content=PNG, format="png")], session_id="m")
    second = await agent.arun("And its size?", session_id="m")
    assert first.status is RunStatus.completed and second.status is RunStatus.completed

    stored_first = await db.get_run(first.run_id)
    stored_second = await db.get_run(second.run_id)
    assert stored_first is not None and stored_second is not None
    assert len(stored_first["input"]["images"]) == 1
    for stored in (stored_first, stored_second):
        assert all("images" not in m for m in stored["messages"])

    # The model still saw the image: with the input, and again in the next run's history.
    assert seen[0][-1].images is not None
    history_user = next(m for m in seen[1] if m.role == "user" and m.from_history)
    assert history_user.images is not None and history_user.images[0].content == PNG

    # Read back, the run has its media as objects, on its input and on its input message.
    restored = await agent.aget_run_output(first.run_id)
    assert restored is not None and restored.input is not None
    assert restored.input.images is not None and isinstance(restored.input.images[0], Image)
    assert restored.input.images[0].content == PNG
    user = next(m for m in restored.messages if m.role == "user")
    assert user.images is not None and user.images[0].content == PNG
