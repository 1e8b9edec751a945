"""The options a tool can be given, shared by `Function`, `tool` and their argument checks."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["TOOL_OPTION_NAMES", "ToolOptions", "check_option_names"]


class ToolOptions(TypedDict, total=False):
    """Keyword options of `pilothouse.tools.tool` and `Function.from_callable`."""

    name: str | None
    description: str | None
    requires_confirmation: bool
    requires_user_input: bool
    user_input_fields: list[str] | None
    external_execution: bool
    stop_after_tool_call: bool
    show_result: bool
    cache_results: bool
    cache_ttl: float


TOOL_OPTION_NAMES: tuple[str, ...] = tuple(ToolOptions.__annotations__)


def check_option_names(options: dict[str, Any], caller: str) -> None:
    """Raise TypeError naming the accepted options when ``options`` has an unknown key."""
    unknown = sorted(set(options) - set(TOOL_OPTION_NAMES))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise TypeError(
            f"{caller}() got unexpected keyword argument{plural} {', '.join(unknown)}; "
            f"accepted: {', '.join(TOOL_OPTION_NAMES)}"
        )
