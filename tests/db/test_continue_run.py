"""A run paused by one process is continued by another, from the store (SQLite, PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pausing_process
import pytest
from storekit import PG_URL, new_id

from pilothouse import RunStatus
from pilothouse.exceptions import ContinueRunError

HERE = Path(__file__).parent


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_paused_run_continued_by_another_process(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = tmp_path / "note.txt"
    prefix = new_id("c") + "_"
    if kind == "sqlite":
        target = str(tmp_path / "runs.db")
    else:
        target = f"{PG_URL}#{request.getfixturevalue('pg_schema')}"
    session_id = new_id("s")

    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "pausing_process.py"),
            kind,
            target,
            prefix,
            str(note),
            session_id,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status, run_id = done.stdout.split()
    assert status == RunStatus.paused.value
    assert not note.exists()

    monkeypatch.setattr(pausing_process, "NOTE_PATH", str(note))
    agent = pausing_process.agent_for(pausing_process.open_store(kind, target, prefix))
    stored = agent.get_run_output(run_id)
    assert stored is not None and stored.is_paused
    [waiting] = stored.tools_requiring_confirmation
    assert waiting.tool_args == {"path": str(note), "text": "hello"}

    waiting.confirmed = True
    continued = agent.continue_run(run_id=run_id, updated_tools=[waiting], session_id=session_id)

    assert continued.status is RunStatus.completed
    assert continued.run_id == run_id
    assert continued.content == "Done: wrote 5 characters"
    assert note.read_text() == "hello"
    again = agent.get_run_output(run_id)
    assert again is not None and again.status is RunStatus.completed
    assert [m.role for m in again.messages] == ["user", "assistant", "tool", "assistant"]
    history = agent.get_chat_history(session_id)
    assert history[0].content == "Write hello"
    assert history[-1].content == "Done: wrote 5 characters"
    # A second continue finds the run completed: it is refused and nothing runs twice.
    note.unlink()
    with pytest.raises(ContinueRunError, match="is COMPLETED"):
        agent.continue_run(run_id=run_id, updated_tools=[waiting], session_id=session_id)
    assert not note.exists()
