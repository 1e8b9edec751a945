"""``pilothouse serve``: finding the target, and refusing what cannot be served."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.cli import main
from pilothouse.serve.entry import load_target

MODULE = """
from pilothouse import Agent
from pilothouse.models.test import TestModel
from pilothouse.serve import create_app

agent = Agent(id="helper", model=TestModel())
app = create_app(agent, name="Custom")
number = 7
"""


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "served_here.py"
    path.write_text(MODULE, encoding="utf-8")
    return path


def test_an_agent_is_wrapped_and_an_app_used_as_it_is(
    target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_SECURITY_KEY", "from-the-environment")
    wrapped = load_target(f"{target}:agent")
    assert list(wrapped.state.pilothouse.agents) == ["helper"]
    assert wrapped.state.pilothouse.authenticator.enabled
    app = load_target(f"{target}:app")
    assert app.state.pilothouse.name == "Custom"
    assert not app.state.pilothouse.authenticator.enabled
    # Without an attribute: ``app``, else ``agent``.
    assert load_target(str(target)).state.pilothouse.name == "Custom"


def test_bad_targets_are_refused(target: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="no attribute 'missing'"):
        load_target(f"{target}:missing")
    with pytest.raises(TypeError, match="is a int"):
        load_target(f"{target}:number")
    with pytest.raises(ValueError, match="no such file"):
        load_target("nowhere.py:agent")
    assert main(["serve", f"{target}:missing"]) == 2
    assert "no attribute" in capsys.readouterr().err
    assert main(["serve", "no_such_module_here:agent"]) == 2


def test_several_workers_need_a_shared_store(
    target: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", f"{target}:agent", "--workers", "2"]) == 2
    assert "SqliteDb or PostgresDb" in capsys.readouterr().err
