"""The keyword options of `Agent.run` and its siblings, as TypedDicts.

`run()` takes ``**options`` (cheaper than two dozen keyword parameters on every call), typed
with ``Unpack[RunOptions]`` so that editors complete them and type checkers check them. The
option names the Agent accepts are read from these classes, so they are written once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from pilothouse.media import Audio, File, Image, Video
    from pilothouse.run.output import ToolExecution

__all__ = ["CONTINUE_OPTIONS", "RUN_OPTIONS", "ContinueOptions", "PrintOptions", "RunOptions"]


class RunOptions(TypedDict, total=False):
    """Optional arguments of `Agent.run` / `Agent.arun` (each overrides the agent's own)."""

    stream_events: bool
    user_id: str | None
    session_id: str | None
    session_state: dict[str, Any] | None
    images: Sequence[Image] | Image | None
    audio: Sequence[Audio] | Audio | None
    videos: Sequence[Video] | Video | None
    files: Sequence[File] | File | None
    dependencies: dict[str, Any] | None
    metadata: dict[str, Any] | None
    retries: int | None
    knowledge_filters: dict[str, Any] | None
    output_schema: type[Any] | None
    add_history_to_context: bool | None
    add_dependencies_to_context: bool | None
    add_session_state_to_context: bool | None
    debug_mode: bool
    request_limit: int | None
    timeout: float | None
    run_id: str | None
    rerun: bool


class ContinueOptions(TypedDict, total=False):
    """Optional arguments of `Agent.continue_run` / `Agent.acontinue_run`."""

    run_id: str | None
    updated_tools: Sequence[ToolExecution] | None
    session_id: str | None
    stream_events: bool
    dependencies: dict[str, Any] | None
    retries: int | None
    debug_mode: bool
    request_limit: int | None
    timeout: float | None
    rerun: bool


class PrintOptions(RunOptions, total=False):
    """Optional arguments of `Agent.print_response`: the run's, and how to show it."""

    markdown: bool
    show_message: bool


RUN_OPTIONS: tuple[str, ...] = tuple(RunOptions.__annotations__)
# What a continued run may set anew; the rest belongs to the stored run.
CONTINUE_OPTIONS: tuple[str, ...] = tuple(
    name
    for name in ContinueOptions.__annotations__
    if name not in ("run_id", "updated_tools", "session_id")
)
