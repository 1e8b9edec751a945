"""Assembling what the model sees: the system message, the user's input and dependencies."""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pilothouse.models.message import Message
from pilothouse.run.run_context import RunContext

if TYPE_CHECKING:
    from pilothouse.agent.agent import Agent

__all__ = [
    "attach_media",
    "build_system_message",
    "build_user_messages",
    "resolve_dependencies",
]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _call_with_context(fn: Callable[..., Any], agent: Agent, ctx: RunContext) -> Any:
    """Call a user callback with whichever of ``agent`` / ``run_context`` it declares."""
    params = _parameter_names(fn)
    kwargs: dict[str, Any] = {}
    if "agent" in params:
        kwargs["agent"] = agent
    if "run_context" in params:
        kwargs["run_context"] = ctx
    if "session_state" in params:
        kwargs["session_state"] = ctx.session_state
    return fn(**kwargs)


# Keyed weakly, by the function itself (by ``__func__`` for a bound method, which is new at
# every attribute access), so that callables made per request do not pile up here.
_param_cache: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()
_method_param_cache: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def _parameter_names(fn: Callable[..., Any]) -> frozenset[str]:
    target = getattr(fn, "__func__", None)
    cache = _param_cache if target is None else _method_param_cache
    key = fn if target is None else target
    try:
        return cache[key]
    except (KeyError, TypeError):
        pass
    try:
        names = frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = frozenset()
    # Callables that cannot be weakly referenced (or hashed) are inspected at every call.
    with contextlib.suppress(TypeError):
        cache[key] = names
    return names


async def resolve_dependencies(
    dependencies: Mapping[str, Any] | None, agent: Agent, ctx: RunContext
) -> dict[str, Any]:
    """Return the dependencies with every callable called (and awaited) for this run."""
    if not dependencies:
        return {}
    resolved: dict[str, Any] = {}
    for key, value in dependencies.items():
        if callable(value):
            value = _call_with_context(value, agent, ctx)
            if inspect.isawaitable(value):
                value = await value
        resolved[key] = value
    return resolved


def _fill_placeholders(text: str, values: Mapping[str, Any]) -> str:
    """Replace ``{name}`` with a known value; leave other braces (JSON examples) alone."""
    if not values or "{" not in text:
        return text

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        return str(values[key]) if key in values else match.group(0)

    return _PLACEHOLDER.sub(sub, text)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def build_system_message(
    agent: Agent,
    ctx: RunContext,
    *,
    add_dependencies: bool,
    add_session_state: bool,
    memories: str = "",
) -> Message | None:
    """Build the system message from the agent's configuration, or None when it has none."""
    values: dict[str, Any] = {}
    if ctx.dependencies or ctx.session_state:
        values = {**ctx.session_state, **ctx.dependencies}

    system = agent.system_message
    if system is not None:
        if isinstance(system, Message):
            return system
        if callable(system):
            system = _call_with_context(system, agent, ctx)
        return Message(role="system", content=_fill_placeholders(str(system), values))

    parts: list[str] = []
    if agent.description:
        parts.append(agent.description)
    instructions = agent.instructions
    if callable(instructions):
        instructions = _call_with_context(instructions, agent, ctx)
    if isinstance(instructions, str):
        if instructions:
            parts.append(instructions)
    elif instructions:
        items = list(instructions)
        if len(items) == 1:
            parts.append(items[0])
        else:
            parts.append(
                "<instructions>\n" + "\n".join(f"- {i}" for i in items) + "\n</instructions>"
            )
    if agent.expected_output:
        parts.append(f"<expected_output>\n{agent.expected_output}\n</expected_output>")
    if agent.additional_context:
        parts.append(agent.additional_context)
    if agent.markdown:
        parts.append("Use markdown to format your answers.")
    if add_dependencies and ctx.dependencies:
        parts.append(f"<dependencies>\n{_dumps(ctx.dependencies)}\n</dependencies>")
    if add_session_state and ctx.session_state:
        parts.append(f"<session_state>\n{_dumps(ctx.session_state)}\n</session_state>")
    if memories:
        parts.append(memories)
    if not parts:
        return None
    return Message(role="system", content=_fill_placeholders("\n\n".join(parts), values))


def input_to_text(value: Any) -> str:
    """Render one piece of structured input as the text the model reads."""
    if isinstance(value, str):
        return value
    dump_json = getattr(value, "model_dump_json", None)
    if dump_json is not None:
        return str(dump_json(indent=2))
    return _dumps(value)


_ROLES = frozenset({"system", "user", "assistant", "tool"})
_MESSAGE_KEYS = frozenset(Message.__dataclass_fields__)


def _is_message_dict(value: Any) -> bool:
    """True for a dict shaped like a `Message` (``{"role": "user", "content": "hi"}``).

    Anything else, e.g. ``{"role": "reviewer", "text": "..."}``, is structured input.
    """
    return (
        isinstance(value, dict)
        and value.get("role") in _ROLES
        and ("content" in value or "tool_calls" in value)
        and value.keys() <= _MESSAGE_KEYS
    )


def build_user_messages(value: Any) -> list[Message]:
    """Turn any accepted run input into the messages that follow the system message.

    A str is one user message; a pydantic model or a dict is sent as JSON, unless the dict is
    a message (a known ``role``, ``content`` or ``tool_calls``, only keys a message has); a
    Message is used as is; a list of messages (or of message dicts) is a whole conversation;
    any other list is joined into one message.
    """
    if isinstance(value, str):
        return [Message(role="user", content=value)]
    if isinstance(value, Message):
        return [value]
    if isinstance(value, dict):
        if _is_message_dict(value):
            return [Message.from_dict(value)]
        return [Message(role="user", content=input_to_text(value))]
    if isinstance(value, list | tuple):
        if value and all(isinstance(m, Message) or _is_message_dict(m) for m in value):
            return [m if isinstance(m, Message) else Message.from_dict(m) for m in value]
        return [Message(role="user", content="\n".join(input_to_text(v) for v in value))]
    return [Message(role="user", content=input_to_text(value))]


def attach_media(messages: list[Message], media: Mapping[str, list[Any]]) -> None:
    """Attach the run's media to its last user message (the input the media goes with)."""
    for message in reversed(messages):
        if message.role == "user":
            for kind, items in media.items():
                setattr(message, kind, [*(getattr(message, kind) or ()), *items])
            return
