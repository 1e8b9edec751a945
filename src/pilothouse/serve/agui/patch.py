"""JSON Patch (RFC 6902) between two JSON documents: what a STATE_DELTA carries."""

from __future__ import annotations

from typing import Any

__all__ = ["json_patch", "pointer"]


def pointer(path: tuple[str, ...]) -> str:
    """The JSON Pointer (RFC 6901) of ``path``: ``~`` and ``/`` in keys escaped."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in path)


def json_patch(old: Any, new: Any) -> list[dict[str, Any]]:
    """The operations that turn ``old`` into ``new``.

    Objects are compared key by key (``add``, ``remove``, ``replace`` at the deepest key that
    changed); any other changed value, lists included, is replaced whole. Applying the result
    to ``old`` gives ``new``; equal documents give an empty patch.
    """
    operations: list[dict[str, Any]] = []
    _diff(old, new, (), operations)
    return operations


def _diff(old: Any, new: Any, path: tuple[str, ...], out: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                out.append({"op": "remove", "path": pointer((*path, str(key)))})
        for key, value in new.items():
            if key not in old:
                out.append({"op": "add", "path": pointer((*path, str(key))), "value": value})
            else:
                _diff(old[key], value, (*path, str(key)), out)
        return
    if old != new or type(old) is not type(new):
        out.append({"op": "replace", "path": pointer(path), "value": new})
