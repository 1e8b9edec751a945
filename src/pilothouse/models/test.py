"""Test doubles on the real model interface, for your own tests.

`TestModel` answers without any configuration: it calls every tool once with arguments made up
from the tool's schema, then answers. `FunctionModel` lets a function decide each turn. Both go
through the whole run loop (tool execution, events, metrics), so tests exercise exactly what
production runs do, only without a provider::

    from pilothouse import Agent
    from pilothouse.models import ToolCall
    from pilothouse.models.test import FunctionModel, TestModel

    def decide(messages, tools):
        if messages[-1].role == "tool":
            return f"The weather is {messages[-1].content}"
        return [ToolCall(name="get_weather", arguments={"city": "Paris"})]

    agent = Agent(model=FunctionModel(decide), tools=[get_weather])
    assert agent.run("Weather in Paris?").tools[0].tool_args == {"city": "Paris"}
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from pilothouse.models.base import (
    Model,
    ModelDelta,
    ModelRequest,
    ModelResponse,
    ToolCallChunk,
    ToolDefinition,
)
from pilothouse.models.message import Message, ToolCall
from pilothouse.run.metrics import Usage

__all__ = ["FunctionModel", "TestModel"]

_WORDS = re.compile(r"\S+\s*|\s+")


def _count_tokens(messages: Sequence[Message]) -> int:
    # A rough, deterministic count (words), so that metrics are non-zero and stable.
    total = 0
    for message in messages:
        total += len(message.text().split()) + 1
        for call in message.tool_calls or ():
            total += 1 + len(call.arguments_json().split())
    return total


def _text_chunks(text: str) -> list[str]:
    return _WORDS.findall(text) or [text]


def _usage(messages: Sequence[Message], content: str, calls: Sequence[ToolCall]) -> Usage:
    output = len(content.split()) + sum(1 + len(c.arguments_json().split()) for c in calls)
    return Usage(input_tokens=_count_tokens(messages), output_tokens=max(output, 1))


def _deltas(
    messages: Sequence[Message],
    content: str,
    calls: Sequence[ToolCall],
    usage: Usage | None,
    *,
    word_by_word: bool = True,
) -> list[ModelDelta]:
    deltas: list[ModelDelta] = []
    if content:
        chunks = _text_chunks(content) if word_by_word else [content]
        deltas = [ModelDelta(content=chunk) for chunk in chunks]
    if calls:
        deltas.append(
            ModelDelta(
                tool_calls=[
                    ToolCallChunk(index=i, id=c.id, name=c.name, arguments=c.arguments_json())
                    for i, c in enumerate(calls)
                ]
            )
        )
    deltas.append(ModelDelta(usage=usage or _usage(messages, content, calls)))
    return deltas


def example_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Make up arguments that satisfy a tool's JSON schema (required parameters only)."""
    defs = schema.get("$defs", {})
    props = schema.get("properties", {})
    return {
        name: _example(props[name], defs) for name in schema.get("required", []) if name in props
    }


def _example(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _example(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _example(options[0], defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    fmt = schema.get("format")
    if kind == "string":
        return {
            "date-time": "2024-01-01T00:00:00",
            "date": "2024-01-01",
            "time": "00:00:00",
            "uuid": "00000000-0000-4000-8000-000000000000",
            "email": "user@example.com",
            "uri": "http://localhost/",
        }.get(fmt or "", "a")
    if kind == "integer":
        return max(0, int(schema.get("minimum", 0)))
    if kind == "number":
        return float(schema.get("minimum", 0.0))
    if kind == "boolean":
        return False
    if kind == "array":
        items = schema.get("items")
        count = int(schema.get("minItems", 0))
        if isinstance(items, dict):
            return [_example(items, defs) for _ in range(count)]
        if isinstance(schema.get("prefixItems"), list):
            return [_example(s, defs) for s in schema["prefixItems"]]
        return []
    if kind == "object" or "properties" in schema:
        return example_arguments(schema)
    if kind == "null":
        return None
    return "a"


class TestModel(Model):
    """A model that needs no setup: it calls tools once, then answers.

    Args:
        text: The final answer. Without it, the answer is a JSON object made up from the
            run's ``output_schema`` when it has one, else a JSON summary of the tool results
            (or ``"success (no tool calls)"``).
        call_tools: ``"all"`` to call every tool the agent offers, or a list of tool names.
            Arguments are made up from each tool's schema.
    """

    __test__ = False  # not a pytest test class
    provider = "test"

    def __init__(self, text: str | None = None, call_tools: str | Iterable[str] = "all") -> None:
        if call_tools != "all" and isinstance(call_tools, str):
            raise TypeError("TestModel(): call_tools must be 'all' or a list of tool names.")
        self.id = "test"
        self.text = text
        self.call_tools = call_tools if call_tools == "all" else list(call_tools)

    def _decide(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolDefinition],
        output_schema: Any = None,
    ) -> ModelResponse:
        called_already = any(m.role == "tool" for m in messages[_last_user(messages) :])
        if tools and not called_already:
            chosen = [t for t in tools if self.call_tools == "all" or t.name in self.call_tools]
            if chosen:
                return ModelResponse(
                    tool_calls=[
                        ToolCall(name=t.name, arguments=example_arguments(t.parameters))
                        for t in chosen
                    ]
                )
        if self.text is not None:
            return ModelResponse(content=self.text)
        if output_schema is not None:
            schema = (
                output_schema
                if isinstance(output_schema, dict)
                else output_schema.model_json_schema()
            )
            return ModelResponse(content=json.dumps(example_arguments(schema), ensure_ascii=False))
        results = {m.name: m.content for m in messages if m.role == "tool" and m.name}
        if not results:
            return ModelResponse(content="success (no tool calls)")
        return ModelResponse(content=json.dumps(results, ensure_ascii=False, default=str))

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Yield the decided turn word by word, then its usage."""
        tools = request.tools if request.tool_choice != "none" else ()
        response = self._decide(messages, tools, request.output_schema)
        for delta in _deltas(messages, response.content, response.tool_calls, None):
            yield delta


def _last_user(messages: Sequence[Message]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return 0


TurnFunction = Callable[[list[Message], list[ToolDefinition]], Any]


class FunctionModel(Model):
    """A model whose every turn is decided by your function.

    ``function(messages, tools)`` gets the messages so far and the definitions of the tools
    it may call now (none when the request's tool choice is ``"none"``) and returns the next
    assistant turn: a str (the final answer), a `ToolCall` or a list of them,
    or a `ModelResponse`. It may be ``async`` and may raise (for instance a
    `ModelProviderError` to test retries). ``stream_function(messages, tools)``, if given, is
    used instead to stream: a (async) generator yielding str pieces, `ToolCall`s or
    `ModelDelta`s. Usage is counted from the words in and out.
    """

    provider = "function"

    def __init__(
        self,
        function: TurnFunction | None = None,
        stream_function: Callable[[list[Message], list[ToolDefinition]], Any] | None = None,
        *,
        model_id: str | None = None,
    ) -> None:
        if function is None and stream_function is None:
            raise TypeError("FunctionModel() needs a function, a stream_function, or both.")
        for name, fn in (("function", function), ("stream_function", stream_function)):
            if fn is not None and not callable(fn):
                raise TypeError(f"FunctionModel(): {name} must be callable.")
        self.function = function
        self.stream_function = stream_function
        named = function or stream_function
        self.id = model_id or f"function:{getattr(named, '__name__', 'model')}"

    async def stream(
        self, messages: Sequence[Message], request: ModelRequest
    ) -> AsyncIterator[ModelDelta]:
        """Ask the function (or stream function) for the next turn and yield it."""
        history = list(messages)
        # The tools the model may call now: none when the request says so.
        tools = list(request.tools) if request.tool_choice != "none" else []
        if self.stream_function is not None:
            async for delta in self._stream_from_function(history, tools):
                yield delta
            return
        assert self.function is not None
        turn = self.function(history, tools)
        if inspect.isawaitable(turn):
            turn = await turn
        response = _as_response(turn)
        # One chunk: a test that wants a word-by-word stream passes a stream_function.
        deltas = _deltas(
            history, response.content, response.tool_calls, response.usage, word_by_word=False
        )
        for delta in deltas:
            yield delta

    async def _stream_from_function(
        self, history: list[Message], tools: list[ToolDefinition]
    ) -> AsyncIterator[ModelDelta]:
        assert self.stream_function is not None
        produced = self.stream_function(history, tools)
        content: list[str] = []
        calls: list[ToolCall] = []
        usage: Usage | None = None
        items: AsyncIterator[Any] = produced if hasattr(produced, "__aiter__") else _aiter(produced)
        async for item in items:
            if isinstance(item, str):
                content.append(item)
                yield ModelDelta(content=item)
            elif isinstance(item, ToolCall):
                index = len(calls)
                calls.append(item)
                yield ModelDelta(
                    tool_calls=[
                        ToolCallChunk(
                            index=index, id=item.id, name=item.name, arguments=item.arguments_json()
                        )
                    ]
                )
            elif isinstance(item, ModelDelta):
                usage = item.usage or usage
                yield item
            else:
                raise TypeError(
                    "stream_function must yield str, ToolCall or ModelDelta, "
                    f"not {type(item).__name__}"
                )
        if usage is None:
            yield ModelDelta(usage=_usage(history, "".join(content), calls))


async def _aiter(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _as_response(turn: Any) -> ModelResponse:
    if isinstance(turn, ModelResponse):
        return turn
    if isinstance(turn, str):
        return ModelResponse(content=turn)
    if isinstance(turn, ToolCall):
        return ModelResponse(tool_calls=[turn])
    if isinstance(turn, list | tuple) and all(isinstance(c, ToolCall) for c in turn):
        return ModelResponse(tool_calls=list(turn))
    raise TypeError(
        "A FunctionModel function must return a str, a ToolCall, a list of ToolCall or a "
        f"ModelResponse, not {type(turn).__name__}."
    )
