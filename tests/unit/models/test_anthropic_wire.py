"""The Messages API conversion on its own: no SDK, no HTTP."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pilothouse.models import Message, ModelRequest, ToolCall, ToolDefinition
from pilothouse.models.anthropic_wire import (
    StreamTranslator,
    answer_tool,
    build_request,
    convert_messages,
)


class Obj:
    """A stand-in for an SDK event object: attributes from keyword arguments."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def test_openai_style_parts_and_data_urls_become_image_blocks() -> None:
    message = Message(
        role="user",
        content=[
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
        ],
    )
    system, messages = convert_messages([message])
    assert system is None
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
            ],
        }
    ]


def test_malformed_tool_arguments_are_kept_visible_and_empty_turns_dropped() -> None:
    _, messages = convert_messages(
        [
            Message(role="user", content="go"),
            Message(role="assistant", content=""),
            Message(
                role="assistant", tool_calls=[ToolCall(name="f", arguments="{oops", id="toolu_1")]
            ),
        ]
    )
    assert messages == [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"_raw": "{oops"}}
            ],
        },
    ]


class Answer(BaseModel):
    value: int


def test_answer_tool_names_are_valid_and_do_not_clash() -> None:
    assert answer_tool(Answer).name == "Answer"
    assert answer_tool(Answer, taken=["Answer"]).name == "final_Answer"
    assert answer_tool({"title": "my answer!", "type": "object"}).name == "my_answer_"
    assert answer_tool({"type": "object"}).name == "final_answer"


TOOL = ToolDefinition(name="lookup", description="Look up.", parameters={"type": "object"})


def test_output_schema_with_thinking_asks_for_the_tool_instead_of_forcing_it() -> None:
    body, answer = build_request(
        [Message(role="system", content="Sys."), Message(role="user", content="q")],
        ModelRequest(output_schema=Answer),
        thinking={"type": "enabled", "budget_tokens": 1024},
        cache_system_prompt=False,
    )
    assert answer is not None and answer.name == "Answer"
    assert body["tool_choice"] == {"type": "auto"}
    assert body["system"] == "Sys.\n\nGive your final answer by calling the Answer tool."
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_output_schema_after_tools_are_done_forces_the_answer() -> None:
    body, _ = build_request(
        [Message(role="user", content="q")],
        ModelRequest(tools=[TOOL], tool_choice="none", output_schema=Answer),
        thinking=None,
        cache_system_prompt=False,
    )
    assert [t["name"] for t in body["tools"]] == ["lookup", "Answer"]
    assert body["tool_choice"] == {"type": "tool", "name": "Answer"}
    assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


def test_translator_ignores_unknown_events_and_blocks() -> None:
    translator = StreamTranslator()
    assert translator.feed(Obj(type="ping")) is None
    block = Obj(type="server_tool_use", id="srv_1", name="web_search", input={})
    assert translator.feed(Obj(type="content_block_start", index=0, content_block=block)) is None
    delta = Obj(type="input_json_delta", partial_json='{"q": 1}')
    assert translator.feed(Obj(type="content_block_delta", index=0, delta=delta)) is None
    assert translator.feed(Obj(type="content_block_stop", index=0)) is None
    assert translator.finish() is None  # no usage seen: nothing to report


def test_an_empty_tool_result_has_no_content() -> None:
    _, messages = convert_messages(
        [
            Message(role="user", content="go"),
            Message(role="assistant", tool_calls=[ToolCall(name="f", arguments={}, id="t1")]),
            Message(role="tool", content="", tool_call_id="t1", name="f"),
        ]
    )
    assert messages[-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1"}],
    }
