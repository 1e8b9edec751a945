"""The parameter names the run loop fills in itself.

Kept apart from `pilothouse.tools.spec` so that ``import pilothouse.tools`` can export them
without loading Pydantic, which only schema building and argument validation need.
"""

from __future__ import annotations

__all__ = ["INJECTED_PARAMETERS"]

INJECTED_PARAMETERS: frozenset[str] = frozenset(
    {"agent", "run_context", "session_state", "dependencies", "images", "audio", "videos", "files"}
)
"""Parameter names the run loop fills in itself; they are hidden from the model."""
