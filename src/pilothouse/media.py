"""Media given to a run or produced by one: `Image`, `Audio`, `Video`, `File`.

Each holds exactly one source: a ``url``, a local ``filepath`` or raw ``content`` bytes. Model
adapters decide how to send each source (a URL as is where the provider accepts URLs, bytes
and files as base64); Pilothouse itself never downloads a URL.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.run.ids import new_id

__all__ = ["Audio", "File", "Image", "Media", "Video"]


@dataclass(slots=True, kw_only=True)
class Media:
    """Base of the media types: one source (url, filepath or content) and its format."""

    url: str | None = None
    filepath: str | Path | None = None
    content: bytes | None = None
    format: str | None = None
    id: str = field(default_factory=new_id)

    kind = "media"

    def __post_init__(self) -> None:
        given = [n for n in ("url", "filepath", "content") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"{type(self).__name__}() takes exactly one of url=, filepath= or content= "
                f"(got {', '.join(given) or 'none'})."
            )
        if self.content is not None and not isinstance(self.content, bytes | bytearray):
            raise TypeError(
                f"{type(self).__name__}(content=...) must be bytes, not "
                f"{type(self.content).__name__}; for text use File(content=text.encode())."
            )
        if self.filepath is not None and not Path(self.filepath).is_file():
            raise ValueError(
                f"{type(self).__name__}(filepath={str(self.filepath)!r}): no such file."
            )

    def get_mime_type(self) -> str | None:
        """The MIME type, from ``format`` or else guessed from the file name or URL."""
        if self.format:
            return f"{self.kind}/{self.format}" if "/" not in self.format else self.format
        name = str(self.filepath or self.url or "")
        guessed, _ = mimetypes.guess_type(name)
        return guessed

    def read_bytes(self) -> bytes:
        """Return the content: the bytes given or the file's; a URL is never fetched."""
        if self.content is not None:
            return bytes(self.content)
        if self.filepath is not None:
            return Path(self.filepath).read_bytes()
        raise ValueError(
            f"{type(self).__name__}(url=...) has no local content: Pilothouse does not download "
            "URLs; pass filepath= or content= for a model that needs the bytes."
        )

    def to_base64(self) -> str:
        """The content as base64 text."""
        return base64.b64encode(self.read_bytes()).decode("ascii")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (content as base64)."""
        data: dict[str, Any] = {"type": type(self).__name__, "id": self.id}
        if self.url is not None:
            data["url"] = self.url
        if self.filepath is not None:
            data["filepath"] = str(self.filepath)
        if self.content is not None:
            data["content"] = base64.b64encode(self.content).decode("ascii")
        if self.format is not None:
            data["format"] = self.format
        for name in ("detail", "name", "mime_type"):
            value = getattr(self, name, None)
            if value is not None:
                data[name] = value
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Media:
        """Rebuild a media object from `to_dict` output."""
        cls: type[Media] = {"Image": Image, "Audio": Audio, "Video": Video, "File": File}[
            data["type"]
        ]
        values = {k: v for k, v in data.items() if k != "type"}
        if "content" in values:
            values["content"] = base64.b64decode(values["content"])
        return cls(**values)


@dataclass(slots=True, kw_only=True)
class Image(Media):
    """An image: ``detail`` ("low", "high", "auto") is passed to providers that take it."""

    detail: str | None = None
    kind = "image"


@dataclass(slots=True, kw_only=True)
class Audio(Media):
    """A sound recording; ``format`` such as "wav" or "mp3"."""

    kind = "audio"


@dataclass(slots=True, kw_only=True)
class Video(Media):
    """A video."""

    kind = "video"


@dataclass(slots=True, kw_only=True)
class File(Media):
    """A document such as a PDF: ``name`` is shown to the model; ``mime_type`` is guessed from
    the name or path when not given."""

    name: str | None = None
    mime_type: str | None = None
    kind = "application"

    def get_mime_type(self) -> str | None:
        """The MIME type: ``mime_type`` when given, else guessed from the name or path."""
        if self.mime_type:
            return self.mime_type
        for source in (self.name, self.filepath, self.url):
            if source:
                guessed, _ = mimetypes.guess_type(str(source))
                if guessed:
                    return guessed
        return None
