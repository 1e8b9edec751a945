"""Reading run and continue requests: JSON or form bodies, the same field names either way.

A JSON body is an object; a form body (``multipart/form-data`` with ``files``, or
``application/x-www-form-urlencoded``) carries the same fields as text, with booleans as
``true``/``false`` and objects as JSON text. Unknown fields and wrong types are refused with
422, naming the field. ``message`` is always one user message: text, or for an agent with an
``input_schema`` an object of that shape; messages with roles cannot be sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from pilothouse.serve.errors import ApiError
from pilothouse.serve.settings import ServeSettings

__all__ = ["ContinueRequest", "RunRequest", "read_continue_request", "read_run_request"]

_BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(slots=True)
class RunRequest:
    """The fields of ``POST /agents/{agent_id}/runs``."""

    message: Any
    stream: bool = True
    stream_events: bool = True
    background: bool = False
    session_id: str | None = None
    user_id: str | None = None
    session_state: dict[str, Any] | None = None
    dependencies: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    media: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(slots=True)
class ContinueRequest:
    """The fields of ``POST /agents/{agent_id}/runs/{run_id}/continue``."""

    tools: list[dict[str, Any]]
    stream: bool = True
    stream_events: bool = True
    background: bool = False
    session_id: str | None = None
    user_id: str | None = None


_RUN_FIELDS: dict[str, str] = {
    "message": "message",
    "stream": "bool",
    "stream_events": "bool",
    "background": "bool",
    "session_id": "str",
    "user_id": "str",
    "session_state": "object",
    "dependencies": "object",
    "metadata": "object",
    "files": "files",
}
_CONTINUE_FIELDS: dict[str, str] = {
    "tools": "list",
    "stream": "bool",
    "stream_events": "bool",
    "background": "bool",
    "session_id": "str",
    "user_id": "str",
}


async def read_run_request(
    request: Request, settings: ServeSettings, *, structured_input: bool
) -> RunRequest:
    """Parse and check a run request. ``structured_input``: the agent has an input_schema,
    so ``message`` may be an object."""
    values, uploads = await _read_fields(request, settings, _RUN_FIELDS)
    if "message" not in values:
        raise ApiError(422, "message is required: the user's message to the agent", field="message")
    run = RunRequest(message=_message(values.pop("message"), structured_input))
    files = values.pop("files", None)
    for name, value in values.items():
        setattr(run, name, value)
    run.media = await _media(uploads, files, settings)
    return run


async def read_continue_request(request: Request, settings: ServeSettings) -> ContinueRequest:
    """Parse and check a continue request."""
    values, _ = await _read_fields(request, settings, _CONTINUE_FIELDS)
    tools = values.pop("tools", [])
    if not all(isinstance(t, dict) for t in tools):
        raise ApiError(422, "tools must be a list of tool execution objects", field="tools")
    result = ContinueRequest(tools=tools)
    for name, value in values.items():
        setattr(result, name, value)
    return result


async def _read_fields(
    request: Request, settings: ServeSettings, spec: Mapping[str, str]
) -> tuple[dict[str, Any], list[UploadFile]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    uploads: list[UploadFile] = []
    if content_type == "multipart/form-data":
        raw, uploads = await _read_form(request, settings)
        from_text = True
    elif content_type == "application/x-www-form-urlencoded":
        raw = await _read_urlencoded(request)
        from_text = True
    elif content_type in ("application/json", ""):
        raw = await _read_json(request)
        from_text = False
    else:
        raise ApiError(
            415, f"send the body as application/json or multipart/form-data, not {content_type}"
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        kind = spec.get(name)
        if kind is None:
            raise ApiError(
                422, f"unknown field {name!r}; expected one of: {', '.join(spec)}", field=name
            )
        values[name] = _convert(name, kind, value, from_text)
    return values, uploads


async def _read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(422, "the JSON body must be an object of fields")
    return data


async def _read_urlencoded(request: Request) -> dict[str, Any]:
    # parse_qsl on the whole body: several times cheaper than the streaming form parser, and
    # the body is bounded by the body limit anyway.
    from urllib.parse import parse_qsl

    try:
        pairs = parse_qsl(
            (await request.body()).decode(), keep_blank_values=True, max_num_fields=100
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(422, f"the form could not be read: {exc}") from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise ApiError(422, f"field {name!r} is given more than once", field=name)
        fields[name] = value
    return fields


async def _read_form(
    request: Request, settings: ServeSettings
) -> tuple[dict[str, Any], list[UploadFile]]:
    from starlette.exceptions import HTTPException
    from starlette.formparsers import MultiPartException

    try:
        form = await request.form(
            max_files=settings.max_files, max_fields=100, max_part_size=settings.max_body_bytes
        )
    except (MultiPartException, HTTPException) as exc:
        message = str(getattr(exc, "detail", None) or exc)
        too_many = message.lower().startswith("too many")
        field = "files" if "files" in message.lower() else None
        raise ApiError(
            413 if too_many else 422, f"the form could not be read: {message}", field=field
        ) from None
    fields: dict[str, Any] = {}
    uploads: list[UploadFile] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != "files":
                raise ApiError(422, f"upload files in the 'files' field, not {name!r}", field=name)
            uploads.append(value)
        elif name in fields:
            raise ApiError(422, f"field {name!r} is given more than once", field=name)
        else:
            fields[name] = value
    return fields, uploads


def _convert(name: str, kind: str, value: Any, from_text: bool) -> Any:
    if kind == "message":
        return value
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.strip().lower()]
        raise ApiError(422, f"{name} must be true or false, not {value!r}", field=name)
    if kind == "str":
        if isinstance(value, str) and value:
            return value
        raise ApiError(422, f"{name} must be a non-empty string", field=name)
    if kind in ("object", "list", "files"):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ApiError(422, f"{name} must be JSON ({kind})", field=name) from None
        wanted = dict if kind == "object" else list
        if not isinstance(value, wanted):
            article = "an object" if kind == "object" else "a list"
            raise ApiError(422, f"{name} must be {article}", field=name)
        return value
    raise AssertionError(kind)


def _message(value: Any, structured_input: bool) -> Any:
    if isinstance(value, str):
        if structured_input:
            try:
                value = json.loads(value)
            except ValueError:
                raise ApiError(
                    422,
                    "message must be a JSON object for this agent's input schema",
                    field="message",
                ) from None
            if not isinstance(value, dict):
                raise ApiError(
                    422,
                    "message must be a JSON object for this agent's input schema",
                    field="message",
                )
        return value
    if structured_input and isinstance(value, dict):
        return value
    raise ApiError(
        422,
        "message must be a string: the user's message (a run takes one user message; system, "
        "assistant and tool messages cannot be sent)",
        field="message",
    )


async def _media(
    uploads: list[UploadFile], files: list[Any] | None, settings: ServeSettings
) -> dict[str, list[Any]]:
    """Uploaded files (form) and base64 files (JSON) as media objects, by kind."""
    items: list[tuple[bytes, str | None, str | None]] = []
    for upload in uploads:
        size = upload.size if upload.size is not None else 0
        if size > settings.max_file_bytes:
            raise ApiError(413, _too_large(upload.filename, settings), field="files")
        items.append((await upload.read(), upload.filename, upload.content_type))
    for index, entry in enumerate(files or ()):
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise ApiError(
                422,
                f"files[{index}] must be an object with 'content' (base64), and optionally "
                "'filename' and 'content_type'",
                field="files",
            )
        try:
            content = base64.b64decode(entry["content"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, f"files[{index}].content is not base64", field="files") from None
        if len(content) > settings.max_file_bytes:
            raise ApiError(413, _too_large(entry.get("filename"), settings), field="files")
        items.append((content, entry.get("filename"), entry.get("content_type")))
    if len(items) > settings.max_files:
        raise ApiError(413, f"at most {settings.max_files} files per run", field="files")
    media: dict[str, list[Any]] = {}
    for content, filename, content_type in items:
        kind, item = _as_media(content, filename, content_type)
        media.setdefault(kind, []).append(item)
    return media


def _too_large(filename: str | None, settings: ServeSettings) -> str:
    return f"file {filename or ''!r} is larger than {settings.max_file_bytes} bytes"


def _as_media(content: bytes, filename: str | None, content_type: str | None) -> tuple[str, Any]:
    from pilothouse.media import Audio, File, Image, Video

    mime = (content_type or "").split(";")[0].strip().lower()
    major, _, minor = mime.partition("/")
    if major == "image" and minor:
        return "images", Image(content=content, format=minor)
    if major == "audio" and minor:
        return "audio", Audio(
            content=content, format={"mpeg": "mp3", "x-wav": "wav"}.get(minor, minor)
        )
    if major == "video" and minor:
        return "videos", Video(content=content, format=minor)
    return "files", File(content=content, name=filename, mime_type=mime or None)
