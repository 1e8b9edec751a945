"""Pass images, audio, video and files with a run.

Media go with the input as ``images=``, ``audio=``, ``videos=`` and ``files=``: lists of
`pilothouse.media` objects, each from a ``url``, a local ``filepath`` or raw ``content``
bytes. They are recorded on the run's `RunInput`, sent to the model with the user's message
and can be injected into tools. Pilothouse never downloads a URL itself: a URL is passed on to
providers that take URLs (OpenAI, Claude).

Runs offline. The embedded local model reads text only, so a run that gives it an image ends
with status error and a message saying so; a `FunctionModel` stands in for a model that
accepts media and reports what it was sent.
"""

import io
import tempfile
import wave
from pathlib import Path
from typing import Any

from pilothouse import Agent, RunStatus
from pilothouse.media import Audio, File, Image, Video
from pilothouse.models import Message, ToolCall, ToolDefinition
from pilothouse.models.test import FunctionModel


def wav_bytes(seconds: float = 0.1, rate: int = 8000) -> bytes:
    """A short silent WAV recording."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(rate)
        recording.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


audio_bytes = wav_bytes()
file_bytes = b"%PDF-1.4\n% a tiny document\n"

# 1. The embedded model takes text only: a clear error, as the run's status and content.
image = Image(url="https://example.com/img.jpg")
refused = Agent(model="local").run("Describe this", images=[image])
print(f"local model: {refused.status.value}: {refused.content}")
assert refused.status == RunStatus.error
assert "takes text only" in str(refused.content) and "1 image" in str(refused.content)
assert refused.input is not None and refused.input.images == [image]  # recorded all the same


# 2. A model that accepts media: this one tells what it received with the user's message.
def describe(item: Any) -> str:
    source = item.url or (Path(item.filepath).name if item.filepath else "bytes")
    size = f", {len(item.read_bytes())} bytes" if item.url is None else ""
    name = f" {item.name!r}" if isinstance(item, File) and item.name else ""
    return f"{type(item).__name__}{name} ({item.get_mime_type()}, from {source}{size})"


def media_model(messages: list[Message], tools: list[ToolDefinition]) -> Any:
    if messages[-1].role == "tool":
        return f"The tool says: {messages[-1].content}"
    user = messages[-1]
    if user.files and tools:
        return [ToolCall(name="document_sizes", arguments={})]
    media = [*(user.images or ()), *(user.audio or ()), *(user.videos or ()), *(user.files or ())]
    return "I received: " + "; ".join(describe(m) for m in media)


agent = Agent(model=FunctionModel(media_model))

# The guide's four calls.
out = agent.run("Describe this", images=[Image(url="https://example.com/img.jpg")])
print(out.content)
assert out.content == "I received: Image (image/jpeg, from https://example.com/img.jpg)"

out = agent.run("Transcribe this", audio=[Audio(content=audio_bytes, format="wav")])
print(out.content)
assert out.content == f"I received: Audio (audio/wav, from bytes, {len(audio_bytes)} bytes)"

out = agent.run("Analyze this", videos=[Video(url="https://example.com/vid.mp4")])
print(out.content)
assert out.content == "I received: Video (video/mp4, from https://example.com/vid.mp4)"

out = agent.run("Summarize this", files=[File(content=file_bytes, name="doc.pdf")])
print(out.content)
assert out.content == (
    f"I received: File 'doc.pdf' (application/pdf, from bytes, {len(file_bytes)} bytes)"
)

# Several kinds in one run, one of them read from a local file.
with tempfile.TemporaryDirectory() as tmp:
    photo = Path(tmp) / "cat.png"
    photo_bytes = b"\x89PNG\r\n\x1a\n not really a picture"
    photo.write_bytes(photo_bytes)
    images = [Image(filepath=photo, detail="low"), Image(content=b"GIF89a", format="gif")]
    clip = Audio(content=audio_bytes, format="wav")
    out = agent.run("What is in these?", images=images, audio=[clip])
    print(out.content)
    assert out.content.startswith(
        f"I received: Image (image/png, from cat.png, {len(photo_bytes)} bytes); Image (image/gif"
    )
    assert out.input is not None and out.input.images == images and out.input.audio == [clip]
    user_message = next(m for m in out.messages if m.role == "user")
    assert user_message.images == images and user_message.audio == [clip]
    # The record of the run keeps the media (bytes as base64), e.g. for a session store.
    recorded = out.input.to_dict()
    assert [i["type"] for i in recorded["images"]] == ["Image", "Image"]
    assert recorded["images"][0]["detail"] == "low"


# 3. Tools can receive the run's media: declare a parameter named images/audio/videos/files.
def document_sizes(files: list[File]) -> str:
    """Tell the size of each document the user sent."""
    return ", ".join(f"{f.name}: {len(f.read_bytes())} bytes" for f in files)


reader = Agent(model=FunctionModel(media_model), tools=[document_sizes])
out = reader.run("How big is it?", files=[File(content=file_bytes, name="doc.pdf")])
print(out.content)
assert out.tools[0].tool_name == "document_sizes" and out.tools[0].tool_args == {}
assert out.content == f"The tool says: doc.pdf: {len(file_bytes)} bytes"
