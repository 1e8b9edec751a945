"""What the OpenAI adapter adds per streamed chunk, with no network.

Usage::

    .venv/bin/python benchmarks/adapter_chunk_overhead.py            # 20,000 chunks per stream
    .venv/bin/python benchmarks/adapter_chunk_overhead.py --chunks 5000

The figures are each the best of several repeats, in CPU time of the measuring thread (so that
other processes on a busy machine do not inflate them):

1. translation: SDK ``ChatCompletionChunk`` objects, built once (the way the SDK's stream parser
   builds them), fed through the adapter's chunk -> `ModelDelta` translation. A mix of text
   chunks and tool-call argument fragments, like a real answer.
2. adapter overhead: the same chunk objects as a canned SDK stream (an object standing in for
   the SDK's ``AsyncStream``), iterated once bare and once through ``OpenAIChat.stream``; the
   difference per chunk is everything the adapter adds: translation, its async generator, and
   request building amortised over the stream.
3. with ``--http``, for context: the chunks as an SSE body served by ``httpx2.MockTransport``,
   one event per read, through the bare SDK and through ``OpenAIChat.stream``. The SDK's own
   parsing of each chunk costs far more than the adapter, so this difference is mostly noise.

The target is an adapter overhead of at most 5 µs per chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

TARGET_US = 5.0


def chunk_dicts(count: int) -> list[dict[str, Any]]:
    """``count`` chunks (every tenth a tool-call fragment), then the usage chunk."""
    chunks: list[dict[str, Any]] = []
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    for i in range(count):
        if i % 10 == 9:
            delta: dict[str, Any] = {
                "tool_calls": [{"index": 0, "function": {"arguments": '"Par'}}]
            }
        else:
            delta = {"content": f"word{i} "}
        chunks.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    chunks.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": count, "total_tokens": count + 10},
        }
    )
    return chunks


def best_us_per_chunk(run: Callable[[], None], chunks: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.thread_time()
        run()
        times.append(time.thread_time() - started)
    return min(times) / chunks * 1e6


def translation(count: int, repeats: int) -> float:
    from openai.types.chat import ChatCompletionChunk

    from pilothouse.models.openai_wire import ChunkTranslator

    chunks = [ChatCompletionChunk.construct(**c) for c in chunk_dicts(count)]

    def run() -> None:
        delta = ChunkTranslator().delta
        produced = 0
        for chunk in chunks:
            if delta(chunk) is not None:
                produced += 1
        assert produced == len(chunks)

    return best_us_per_chunk(run, len(chunks), repeats)


class _CannedStream:
    """Stands in for the SDK's ``AsyncStream``: the chunk objects, already parsed."""

    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = chunks

    async def __aenter__(self) -> _CannedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def __aiter__(self) -> AsyncIterator[Any]:
        for chunk in self._chunks:
            yield chunk


class _CannedClient:
    """Stands in for ``AsyncOpenAI``: ``chat.completions.create`` returns a canned stream."""

    def __init__(self, chunks: list[Any]) -> None:
        self.chat = self
        self.completions = self
        self._chunks = chunks

    async def create(self, **params: Any) -> _CannedStream:
        return _CannedStream(self._chunks)


def canned_stream(count: int, repeats: int) -> tuple[float, float]:
    from openai.types.chat import ChatCompletionChunk

    from pilothouse.models import Message, ModelRequest
    from pilothouse.models.openai import OpenAIChat

    chunks = [ChatCompletionChunk.construct(**c) for c in chunk_dicts(count)]
    client = _CannedClient(chunks)
    model = OpenAIChat("gpt-5-mini", api_key="sk-bench")
    messages = [Message(role="user", content="hi")]

    async def bare() -> None:
        seen = 0
        async with await client.create() as stream:
            async for _ in stream:
                seen += 1
        assert seen == len(chunks)

    async def adapter() -> None:
        model._clients[asyncio.get_running_loop()] = client
        seen = 0
        async for _ in model.stream(messages, ModelRequest()):
            seen += 1
        assert seen == len(chunks)

    loop = asyncio.new_event_loop()
    try:
        sdk_us = best_us_per_chunk(lambda: loop.run_until_complete(bare()), len(chunks), repeats)
        ours_us = best_us_per_chunk(
            lambda: loop.run_until_complete(adapter()), len(chunks), repeats
        )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return sdk_us, ours_us


def http_stream(count: int, repeats: int) -> tuple[float, float]:
    import httpx2
    import openai

    from pilothouse.models import Message, ModelRequest
    from pilothouse.models.openai import OpenAIChat

    events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunk_dicts(count)]
    events.append(b"data: [DONE]\n\n")

    async def body() -> AsyncIterator[bytes]:
        for event in events:
            yield event

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    def http_client() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))

    messages = [Message(role="user", content="hi")]
    sdk = openai.AsyncOpenAI(api_key="sk-bench", max_retries=0, http_client=http_client())
    model = OpenAIChat(
        "gpt-5-mini", api_key="sk-bench", client_params={"http_client": http_client()}
    )

    async def bare() -> None:
        stream = await sdk.chat.completions.create(
            model="gpt-5-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        seen = 0
        async with stream:
            async for _ in stream:
                seen += 1
        assert seen == count + 1

    async def adapter() -> None:
        seen = 0
        async for _ in model.stream(messages, ModelRequest()):
            seen += 1
        assert seen == count + 1

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(bare())  # warm up both: imports, client creation
        loop.run_until_complete(adapter())
        sdk_us = best_us_per_chunk(lambda: loop.run_until_complete(bare()), count + 1, repeats)
        ours_us = best_us_per_chunk(lambda: loop.run_until_complete(adapter()), count + 1, repeats)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return sdk_us, ours_us


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI adapter overhead per streamed chunk.")
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--http",
        action="store_true",
        help="also stream through the SDK's HTTP and SSE parsing (httpx2.MockTransport)",
    )
    args = parser.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"chunks per stream: {args.chunks + 1} (90% text, 10% tool-call fragments, 1 usage)")
    print(f"CPU time per chunk, best of {args.repeats}; 1-minute load average {load:.1f}")
    per_chunk = translation(args.chunks, args.repeats)
    print(f"  translation chunk -> ModelDelta:         {per_chunk:7.2f} µs")
    bare_us, ours_us = canned_stream(args.chunks, args.repeats)
    overhead = ours_us - bare_us
    print(f"  iterating the canned SDK stream alone:   {bare_us:7.2f} µs")
    print(f"  OpenAIChat.stream over the same stream:  {ours_us:7.2f} µs")
    print(f"  adapter overhead:                        {overhead:7.2f} µs")
    if args.http:
        sdk_us, http_us = http_stream(args.chunks, args.repeats)
        print(f"  bare SDK over HTTP (SSE + parsing):      {sdk_us:7.2f} µs")
        print(f"  OpenAIChat.stream over HTTP:             {http_us:7.2f} µs")
    verdict = "met" if overhead <= TARGET_US else "NOT met"
    print(f"target: adapter overhead <= {TARGET_US:.0f} µs per chunk: {verdict}")


if __name__ == "__main__":
    main()
