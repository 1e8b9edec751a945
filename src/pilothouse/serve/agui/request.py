"""Reading an AG-UI request: a ``RunAgentInput`` body, and what the run takes from it.

- ``threadId`` is the session: the service keeps the conversation, so of ``messages`` only
  the last one is read, and it must be the user's (its text parts, and images sent inline as
  ``data`` sources, are the run's input).
- ``state``, when it is an object, is merged into the session state for the run.
- ``resume`` answers the interrupts of the thread's paused run (`interrupts`); the messages
  are not read then.
- ``forwardedProps`` may name the agent (``agentId``, for ``POST /agui`` when the app serves
  several) and, for callers that may act for any user (the security key), ``userId``.
- ``tools`` (frontend tools) and ``context`` are not used: the agent's own tools run on the
  server.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import ImagePart, RunAgentInput, TextPart, UserMessage
from pydantic import ValidationError
from starlette.requests import Request

from pilothouse.serve.errors import ApiError
from pilothouse.serve.settings import ServeSettings

__all__ = ["AguiRequest", "read_agui_request"]


@dataclass(slots=True)
class AguiRequest:
    """A validated AG-UI request."""

    input: RunAgentInput
    message: str | None = None
    images: list[Any] = field(default_factory=list)
    state: dict[str, Any] | None = None
    agent_id: str | None = None
    user_id: str | None = None


async def read_agui_request(request: Request, settings: ServeSettings) -> AguiRequest:
    """Parse and check the body; ApiError(422) naming what is wrong."""
    body = await request.body()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}") from None
    try:
        run_input = RunAgentInput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or None
        detail = f"not a RunAgentInput: {where + ': ' if where else ''}{first.get('msg')}"
        raise ApiError(422, detail, field=where) from None
    if not run_input.thread_id:
        raise ApiError(422, "threadId must name the conversation", field="threadId")
    parsed = AguiRequest(input=run_input)
    if run_input.state is not None and run_input.state != {}:
        if not isinstance(run_input.state, dict):
            raise ApiError(422, "state must be an object (the session state)", field="state")
        parsed.state = run_input.state
    props = run_input.forwarded_props
    if isinstance(props, dict):
        parsed.agent_id = _text_prop(props, "agentId")
        parsed.user_id = _text_prop(props, "userId")
    # A resuming request answers the paused run; its messages are only read when the thread
    # turns out to have none.
    _read_message(parsed, settings, required=not run_input.resume)
    return parsed


def _text_prop(props: dict[str, Any], name: str) -> str | None:
    value = props.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(422, f"forwardedProps.{name} must be a non-empty string", field=name)
    return value


def _read_message(parsed: AguiRequest, settings: ServeSettings, *, required: bool) -> None:
    messages = parsed.input.messages
    last = messages[-1] if messages else None
    if not isinstance(last, UserMessage):
        if not required:
            return
        raise ApiError(
            422,
            "the last message must be the user's: the service keeps the conversation of the "
            "thread and answers its newest user message",
            field="messages",
        )
    if isinstance(last.content, str):
        parsed.message = last.content
        return
    texts: list[str] = []
    for index, part in enumerate(last.content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImagePart):
            parsed.images.append(_image(part, index, settings))
        else:
            raise ApiError(
                422,
                f"messages[-1].content[{index}]: only text and inline images are accepted",
                field="messages",
            )
    if len(parsed.images) > settings.max_files:
        raise ApiError(422, f"at most {settings.max_files} images per message", field="messages")
    parsed.message = "\n".join(texts)


def _image(part: ImagePart, index: int, settings: ServeSettings) -> Any:
    from pilothouse.media import Image

    source = part.source
    if getattr(source, "type", None) != "data":
        raise ApiError(
            422,
            f"messages[-1].content[{index}]: send images inline (a data source)",
            field="messages",
        )
    try:
        content = base64.b64decode(source.value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422, f"messages[-1].content[{index}]: the image is not base64", field="messages"
        ) from None
    if len(content) > settings.max_file_bytes:
        raise ApiError(
            413, f"an image is larger than {settings.max_file_bytes} bytes", field="messages"
        )
    mime = getattr(source, "mime_type", None) or "image/png"
    return Image(content=content, format=mime.partition("/")[2] or None)
