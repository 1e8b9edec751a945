"""Message and tool content on spans: never by default, in the conventions' shape on request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from otel_recorder import Recorded

from pilothouse import Agent
from pilothouse.models import ToolCall
from pilothouse.models.base import ModelDelta
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel

pytestmark = pytest.mark.timeout(30)

CONTENT_KEYS = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
}


def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order."""
    return {"order": order_id, "status": "shipped"}


def order_then_answer(messages: list[Message], tools: Any) -> Any:
    if messages[-1].role == "tool":
        yield ModelDelta(reasoning="The tool said so.")
        yield "Your order has shipped."
        return
    yield ToolCall(name="lookup_order", arguments={"order_id": "A-17"}, id="call-1")


def run_agent() -> None:
    agent = Agent(
        model=FunctionModel(stream_function=order_then_answer),
        tools=[lookup_order],
        instructions="Be brief.",
    )
    agent.run("Where is my order A-17? My email is ada@example.com")


def test_no_content_is_recorded_by_default(otel: Recorded) -> None:
    run_agent()
    assert len(otel.spans()) == 4
    for span in otel.spans():
        attributes = dict(span.attributes or {})
        assert not CONTENT_KEYS & attributes.keys(), span.name
        assert not any("ada@example.com" in str(v) for v in attributes.values())


def test_content_is_recorded_when_asked(otel_with_content: Recorded) -> None:
    otel = otel_with_content
    run_agent()
    first, second = otel.named("chat")
    sent = json.loads(dict(first.attributes or {})["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[1]["parts"] == [
        {"type": "text", "content": "Where is my order A-17? My email is ada@example.com"}
    ]
    answered = json.loads(dict(first.attributes or {})["gen_ai.output.messages"])
    assert answered == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call-1",
                    "name": "lookup_order",
                    "arguments": {"order_id": "A-17"},
                }
            ],
        }
    ]
    definitions = json.loads(dict(first.attributes or {})["gen_ai.tool.definitions"])
    assert definitions[0]["name"] == "lookup_order"
    assert definitions[0]["type"] == "function"
    assert "order_id" in definitions[0]["parameters"]["properties"]

    resent = json.loads(dict(second.attributes or {})["gen_ai.input.messages"])
    assert resent[-1] == {
        "role": "tool",
        "parts": [
            {
                "type": "tool_call_response",
                "id": "call-1",
                "response": '{"order": "A-17", "status": "shipped"}',
            }
        ],
    }
    final = json.loads(dict(second.attributes or {})["gen_ai.output.messages"])
    assert final[0]["parts"] == [
        {"type": "reasoning", "content": "The tool said so."},
        {"type": "text", "content": "Your order has shipped."},
    ]

    tool = dict(otel.one("execute_tool").attributes or {})
    assert json.loads(tool["gen_ai.tool.call.arguments"]) == {"order_id": "A-17"}
    assert json.loads(tool["gen_ai.tool.call.result"]) == {"order": "A-17", "status": "shipped"}

    run = dict(otel.one("invoke_agent").attributes or {})
    assert json.loads(run["gen_ai.input.messages"])[0]["role"] == "user"
    assert json.loads(run["gen_ai.output.messages"])[0]["parts"][0]["content"] == (
        "Your order has shipped."
    )


def test_the_environment_variable_turns_capture_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    otel = Recorded()  # capture_content=None: the variable decides
    try:
        run_agent()
        assert "gen_ai.input.messages" in (otel.one("invoke_agent").attributes or {})
    finally:
        otel.close()


def test_an_explicit_choice_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    otel = Recorded(capture_content=False)
    try:
        run_agent()
        for span in otel.spans():
            assert not CONTENT_KEYS & dict(span.attributes or {}).keys()
    finally:
        otel.close()


def test_capture_content_must_be_a_bool() -> None:
    from pilothouse import observe

    with pytest.raises(TypeError, match="capture_content"):
        observe.instrument(capture_content="yes")  # type: ignore[arg-type]
