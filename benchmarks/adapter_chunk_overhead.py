"""What the OpenAI adapter adds per streamed chunk, with no network.

Usage::

    .venv/bin/python benchmarks/adapter_chunk_overhead.py            # N = 20,000 chunks
    .venv/bin/python benchmarks/adapter_chunk_overhead.py --chunks 5000

Two figures, each the median of several repeats:

1. translation: SDK ``ChatCompletionChunk`` objects, built once (the way the SDK's stream parser
   builds them), fed through the adapter's chunk -> `ModelDelta` translation. A mix of text
   chunks and tool-call argument fragments, like a real answer.
2. whole stream: the same chunks as one SSE body served by ``httpx2.MockTransport``, read once
   through the bare SDK (``chat.completions.create(stream=True)``) and once through
   ``OpenAIChat.stream``; the difference per chunk is the adapter's overhead including its
   async generator and request building, amortised over the stream.

The target is at most 5 µs per chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from typing import Any

TARGET_US = 5.0


def chunk_dicts(count: int) -> list[dict[str, Any]]:
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


def median_us_per_chunk(run: Any, count: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / count * 1e6


def translation(count: int, repeats: int) -> float:
    from openai.types.chat import ChatCompletionChunk

    from pilothouse.models.openai_wire import ChunkTranslator

    chunks = [ChatCompletionChunk.construct(**c) for c in chunk_dicts(count)]

    def run() -> None:
        translator = ChunkTranslator()
        delta = translator.delta
        produced = 0
        for chunk in chunks:
            if delta(chunk) is not None:
                produced += 1
        assert produced == len(chunks)

    return median_us_per_chunk(run, len(chunks), repeats)


def whole_stream(count: int, repeats: int) -> tuple[float, float]:
    import httpx2
    import openai

    from pilothouse.models import Message, ModelRequest
    from pilothouse.models.openai import OpenAIChat

    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunk_dicts(count)) + "data: [DONE]\n\n"
    payload = body.encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=payload)

    def http_client() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))

    messages = [Message(role="user", content="hi")]
    loop = asyncio.new_event_loop()
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
        async for _ in stream:
            seen += 1
        assert seen == count + 1

    async def adapter() -> None:
        seen = 0
        async for _ in model.stream(messages, ModelRequest()):
            seen += 1
        assert seen == count + 1

    try:
        loop.run_until_complete(bare())  # warm up both: imports, client creation
        loop.run_until_complete(adapter())
        sdk_us = median_us_per_chunk(lambda: loop.run_until_complete(bare()), count + 1, repeats)
        ours_us = median_us_per_chunk(
            lambda: loop.run_until_complete(adapter()), count + 1, repeats
        )
    finally:
        loop.close()
    return sdk_us, ours_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    per_chunk = translation(args.chunks, args.repeats)
    sdk_us, ours_us = whole_stream(args.chunks, args.repeats)
    overhead = ours_us - sdk_us
    print(f"chunks per stream: {args.chunks + 1} (90% text, 10% tool-call fragments, 1 usage)")
    print(f"translation chunk -> ModelDelta:   {per_chunk:6.2f} µs per chunk")
    print(f"bare SDK stream (SSE parsing):     {sdk_us:6.2f} µs per chunk")
    print(f"OpenAIChat.stream:                 {ours_us:6.2f} µs per chunk")
    print(f"adapter overhead on the stream:    {overhead:6.2f} µs per chunk")
    verdict = "within" if max(per_chunk, overhead) <= TARGET_US else "ABOVE"
    print(f"target <= {TARGET_US:.0f} µs per chunk: {verdict}")


if __name__ == "__main__":
    main()
