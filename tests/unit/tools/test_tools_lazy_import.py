"""``import pilothouse.tools`` must not import Pydantic; first schema or validation use does."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# `pilothouse/__init__.py` imports the agent, which is not this package's to keep light: the
# child process registers a bare `pilothouse` package module (same search path, no __init__
# run), so that what it then imports is exactly `pilothouse.tools` and its own dependencies.
_ONLY_TOOLS = """
import importlib.util
import sys
import types

found = importlib.util.find_spec("pilothouse")
parent = types.ModuleType("pilothouse")
parent.__path__ = list(found.submodule_search_locations)
sys.modules["pilothouse"] = parent


def pydantic_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))

"""


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _ONLY_TOOLS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_tools_package_does_not_import_pydantic() -> None:
    out = _run(
        """
        import pilothouse.tools
        from pilothouse.tools import (
            INJECTED_PARAMETERS, Function, ToolSet, Toolkit, resolve_tools, resolve_toolset,
            tool, validate_tools,
        )
        assert "pilothouse.tools.function" in sys.modules
        print(pydantic_modules())
        """
    )
    assert out.strip() == "[]"


def test_making_tools_and_formatting_results_do_not_import_pydantic() -> None:
    out = _run(
        """
        from pilothouse.tools import Toolkit, resolve_tools, tool, validate_tools
        from pilothouse.tools.result import format_result

        @tool(description="Add.")
        def add(a: int, b: int) -> int:
            return a + b

        def mul(a: int, b: int) -> int:
            return a * b

        validate_tools([add, Toolkit(name="maths", tools=[mul])])
        assert [f.name for f in resolve_tools([add, mul])] == ["add", "mul"]
        assert format_result({"x": [1, 2]}) == '{"x": [1, 2]}'
        print(pydantic_modules())
        """
    )
    assert out.strip() == "[]"


def test_pydantic_is_imported_on_first_schema_and_everything_works() -> None:
    out = _run(
        """
        import asyncio

        from pilothouse.tools import resolve_toolset, tool

        @tool
        def add(a: int, b: int = 1) -> int:
            \"\"\"Add two numbers.\"\"\"
            return a + b

        toolset = resolve_toolset([add])
        assert "pydantic" in sys.modules
        assert toolset.definitions[0].parameters["required"] == ["a"]
        assert asyncio.run(add.acall('{"a": "2"}')) == 3
        try:
            asyncio.run(add.acall({"a": "two"}))
        except Exception as exc:
            print(type(exc).__name__)
        """
    )
    assert out.strip() == "ToolArgumentsError"
