"""Structured output on OpenAI-compatible servers without JSON-schema response formats: the
real SDK against a loopback server that refuses ``json_schema`` (as llama-cpp-python's does,
with a 500), and the fallback to JSON mode, then to a forced answer tool."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hostile_provider import HostileProvider, Reply, Request
from pydantic import BaseModel

from pilothouse import Agent, RunStatus
from pilothouse.models.openai import OpenAILike

ANSWER = {"name": "Paris", "country": "France"}


class City(BaseModel):
    name: str
    country: str


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


async def answer(request: Request, reply: Reply, message: dict[str, Any]) -> None:
    body = request.json
    if not body.get("stream"):
        await reply.json(completion(message))
        return
    await reply.start()
    delta = {"role": "assistant", **message}
    for fragment in delta.get("tool_calls") or ():
        fragment["index"] = 0
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    await reply.event({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    await reply.event({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    await reply.send("data: [DONE]\n\n")


def server_without(*refused: str, status: int = 500) -> Any:
    """A server that answers ``status`` to the response formats in ``refused``, answers JSON
    mode with text, and answers a forced tool with a call to it."""

    async def respond(request: Request, reply: Reply) -> None:
        body = request.json
        kind = (body.get("response_format") or {}).get("type")
        if kind in refused:
            message = f"response_format {kind} is not supported"
            await reply.json({"error": {"message": message, "type": "server_error"}}, status)
            return
        if kind is not None:
            await answer(request, reply, {"content": json.dumps(ANSWER)})
            return
        name = body["tool_choice"]["function"]["name"]
        call = {"id": "call_1", "type": "function"}
        call["function"] = {"name": name, "arguments": json.dumps(ANSWER)}
        await answer(request, reply, {"content": None, "tool_calls": [call]})

    return respond


def formats(server: HostileProvider) -> list[str | None]:
    """What each request asked for: its response format, or "tool:<name>" for a forced tool."""
    result: list[str | None] = []
    for request in server.requests:
        body = request.json
        if "response_format" in body:
            result.append(body["response_format"]["type"])
        else:
            result.append("tool:" + body["tool_choice"]["function"]["name"])
    return result


@pytest.mark.parametrize("stream", [False, True])
async def test_a_500_on_json_schema_falls_back_to_json_mode_and_is_remembered(
    stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pilothouse")
    async with HostileProvider(server_without("json_schema")) as server:
        agent = Agent(model=OpenAILike("m", base_url=server.url), output_schema=City)
        for _ in range(2):
            out = await run(agent, stream)
            assert out is not None and out.status is RunStatus.completed, out and out.content
            assert out.content == City(**ANSWER)

    # The second run went straight to the mode that worked.
    assert formats(server) == ["json_schema", "json_object", "json_object"]
    # JSON mode carries the schema where compatible servers read it (a grammar, there).
    schema = server.requests[1].json["response_format"]["schema"]
    assert schema["required"] == ["name", "country"]
    system = server.requests[1].json["messages"][0]
    assert system["role"] == "system"
    assert "JSON schema" in system["content"] and '"country"' in system["content"]
    assert "structured output mode 'prompted' works" in caplog.text


async def run(agent: Agent, stream: bool) -> Any:
    if not stream:
        return await agent.arun("Paris?")
    assert [e async for e in agent.arun("Paris?", stream=True)]
    return agent.get_last_run_output()


@pytest.mark.parametrize("stream", [False, True])
async def test_json_mode_refused_too_falls_back_to_a_forced_answer_tool(stream: bool) -> None:
    refusing = server_without("json_schema", "json_object", status=400)
    async with HostileProvider(refusing) as server:
        agent = Agent(model=OpenAILike("m", base_url=server.url), output_schema=City)
        out = await run(agent, stream)
        assert out.status is RunStatus.completed, out.content
        assert out.content == City(**ANSWER)
        out = await run(agent, stream)
        assert out.content == City(**ANSWER)

    assert formats(server) == ["json_schema", "json_object", "tool:City", "tool:City"]
    tool = server.requests[2].json["tools"][-1]["function"]
    assert tool["name"] == "City" and tool["parameters"]["required"] == ["name", "country"]


async def test_an_explicit_mode_is_used_as_is_without_fallback() -> None:
    async with HostileProvider(server_without("json_schema")) as server:
        native = Agent(
            model=OpenAILike("m", base_url=server.url, output_mode="native"),
            output_schema=City,
            retries=0,
        )
        out = await native.arun("Paris?")
        assert out.status is RunStatus.error
        assert "500" in str(out.content)
        tool = Agent(
            model=OpenAILike("m", base_url=server.url, output_mode="tool"), output_schema=City
        )
        out = await tool.arun("Paris?")
        assert out.content == City(**ANSWER)

    assert formats(server) == ["json_schema", "tool:City"]


async def test_a_server_overloaded_is_retried_not_taken_for_a_refusal() -> None:
    calls = 0

    async def busy_once(request: Request, reply: Reply) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await reply.json({"error": {"message": "overloaded"}}, 503)
            return
        await answer(request, reply, {"content": json.dumps(ANSWER)})

    async with HostileProvider(busy_once) as server:
        agent = Agent(
            model=OpenAILike("m", base_url=server.url),
            output_schema=City,
            delay_between_retries=0.01,
        )
        out = await agent.arun("Paris?")

    assert out.content == City(**ANSWER)
    assert formats(server) == ["json_schema", "json_schema"]


def test_output_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="output_mode must be one of"):
        OpenAILike("m", base_url="http://127.0.0.1:9/v1", output_mode="json")  # type: ignore[arg-type]
