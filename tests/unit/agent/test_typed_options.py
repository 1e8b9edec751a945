"""The options of `run`, `arun`, `continue_run` and `print_response` are typed (`Unpack` of
TypedDicts): a type checker catches a misspelt option or a value of the wrong type, and
editors complete them. Checked here with mypy itself, as a user's project would run it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

CALLER = textwrap.dedent(
    """
    from pilothouse import Agent
    from pilothouse.models.test import TestModel

    agent = Agent(model=TestModel())
    agent.run("hi", session_id="s1", user_id="ada", request_limit=5, timeout=2.5)
    agent.run("hi", sesion_id="s1")
    agent.run("hi", session_state=["not", "a", "dict"])
    agent.print_response("hi", stream=True, markdown=True, show_message=False)
    agent.continue_run(run_id="r1", session_id="s1", retries="3")


    async def main() -> None:
        await agent.arun("hi", request_limit="many")
    """
)


def test_misspelt_options_and_wrong_types_are_type_errors(tmp_path: Path) -> None:
    caller = tmp_path / "caller.py"
    caller.write_text(CALLER)
    report, errors, _status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--show-error-codes",
            str(caller),
        ]
    )
    assert not errors, errors
    flagged = {
        int(line.split(":")[1]) for line in report.splitlines() if line.startswith(str(caller))
    }
    # Line numbers of CALLER (its first line is empty): the calls that are wrong, and only those.
    assert flagged == {7, 8, 10, 14}, report


def test_every_typed_run_option_is_applied_and_no_other() -> None:
    from pilothouse.agent import agent as agent_module
    from pilothouse.agent.options import RUN_OPTIONS

    assert set(agent_module._RUN_OPTION_SETTERS) == set(RUN_OPTIONS)
