"""AG-UI in process: JSON Patch, interrupts and resume answers, the state reports, the request
checks, and a whole run read back with the protocol's own types (httpx's ASGI transport)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
import pytest
from ag_ui.core import Event, ResumeEntry, RunAgentInput, UserMessage
from pydantic import TypeAdapter

from pilothouse import Agent, tool
from pilothouse.db import InMemoryDb
from pilothouse.models import ToolCall
from pilothouse.models.message import Message
from pilothouse.models.test import FunctionModel
from pilothouse.run.metrics import Metrics
from pilothouse.run.output import RunOutput, RunStatus, ToolExecution, UserInputField
from pilothouse.serve import create_app
from pilothouse.serve.agui.interrupts import answers_from_resume, interrupts_of
from pilothouse.serve.agui.patch import json_patch
from pilothouse.serve.agui.state import STATE_KEY, StateReporting
from pilothouse.serve.agui.translate import EventTranslator
from pilothouse.serve.errors import ApiError

EVENTS: TypeAdapter[Any] = TypeAdapter(Event)


def apply(document: Any, patch: list[dict[str, Any]]) -> Any:
    document = copy.deepcopy(document)
    for op in patch:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in op["path"].split("/")[1:]]
        if not keys:
            document = op["value"]
            continue
        target = document
        for key in keys[:-1]:
            target = target[key]
        if op["op"] == "remove":
            del target[keys[-1]]
        else:
            target[keys[-1]] = op["value"]
    return document


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({}, {}),
        ({"a": 1}, {"a": 1, "b": [1, 2]}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}),
        ({"a/b": 1, "m~n": 2}, {"a/b": 2}),
        ({"list": [1, 2, 3]}, {"list": [1, 3]}),
        ({"flag": 1}, {"flag": True}),
        ({"x": {"deep": {"er": None}}}, {"x": {"deep": {"er": {"est": 0}}}}),
        ([1], {"now": "an object"}),
    ],
)
def test_json_patch_turns_the_old_document_into_the_new(old: Any, new: Any) -> None:
    patch = json_patch(old, new)
    assert apply(old, patch) == new
    assert type(apply(old, patch).get("flag", 0)) is type(new.get("flag", 0))
    if json.dumps(old) == json.dumps(new):
        assert patch == []


def test_json_patch_escapes_keys_and_changes_only_what_changed() -> None:
    patch = json_patch({"a/b": 1, "m~n": 2, "same": {"x": 1}}, {"a/b": 2, "same": {"x": 1}})
    assert patch == [
        {"op": "remove", "path": "/m~0n"},
        {"op": "replace", "path": "/a~1b", "value": 2},
    ]


def paused_run() -> RunOutput:
    return RunOutput(
        run_id="run-1",
        status=RunStatus.paused,
        tools=[
            ToolExecution("done_already", {"x": 1}, "c0", result="ok", metrics=Metrics()),
            ToolExecution("delete_logs", {"table": "t"}, "c1", requires_confirmation=True),
            ToolExecution(
                "send",
                {"title": "w"},
                "c2",
                requires_user_input=True,
                user_input_schema=[
                    UserInputField("to", "string", "Who gets it"),
                    UserInputField("count", "integer", value=2),
                ],
            ),
            ToolExecution("shell", {"cmd": "ls"}, "c3", external_execution_required=True),
        ],
    )


def test_each_waiting_call_is_one_interrupt_with_the_schema_of_its_answer() -> None:
    interrupts = interrupts_of(paused_run())
    assert [(i.id, i.reason, i.tool_call_id) for i in interrupts] == [
        ("c1", "confirmation", "c1"),
        ("c2", "user_input", "c2"),
        ("c3", "external_execution", "c3"),
    ]
    confirm, ask, external = (i.response_schema for i in interrupts)
    assert confirm["required"] == ["approved"]
    assert confirm["properties"]["approved"]["type"] == "boolean"
    assert ask["required"] == ["to"]  # count has the model's value already
    assert ask["properties"]["to"] == {"type": "string", "description": "Who gets it"}
    assert ask["properties"]["count"] == {"type": "integer", "default": 2}
    assert external["required"] == ["result"]
    assert interrupts[0].message == 'Allow the call delete_logs(table="t")?'
    assert interrupts[0].metadata == {
        "pilothouse": {"runId": "run-1", "toolName": "delete_logs", "toolArgs": {"table": "t"}}
    }


def entry(interrupt_id: str, payload: Any, status: str = "resolved") -> ResumeEntry:
    return ResumeEntry(interrupt_id=interrupt_id, status=status, payload=payload)


def test_resume_entries_become_answers_and_the_paused_run_is_left_alone() -> None:
    paused = paused_run()
    answers = answers_from_resume(
        paused,
        [
            entry("c1", {"approved": False, "note": "not today"}),
            entry("c2", {"to": "ada@example.com"}),
            entry("c3", "file1\nfile2"),
            entry("nobody", {"approved": True}),  # answers nothing: ignored
        ],
    )
    by_id = {a.tool_call_id: a for a in answers}
    assert set(by_id) == {"c1", "c2", "c3"}
    assert by_id["c1"].confirmed is False and by_id["c1"].confirmation_note == "not today"
    fields = {f.name: f.value for f in by_id["c2"].user_input_schema or ()}
    assert fields == {"to": "ada@example.com", "count": 2}
    assert by_id["c3"].result == "file1\nfile2"
    assert paused.tools[1].confirmed is None and paused.tools[2].user_input_schema[0].value is None
    cancelled = answers_from_resume(
        paused, [entry("c1", None, "cancelled"), entry("c3", None, "cancelled")]
    )
    assert cancelled[0].confirmed is False
    assert "cancelled" in cancelled[1].result and cancelled[1].tool_call_error


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (entry("c1", {"approved": "yes"}), "approved"),
        (entry("c1", None), "approved"),
        (entry("c3", {"output": 1}), "result"),
        (entry("c2", None, "cancelled"), "cannot be declined"),
    ],
)
def test_answers_that_do_not_fit_are_refused(answer: ResumeEntry, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        answers_from_resume(paused_run(), [answer])
    assert refused.value.status_code == 422 and message in refused.value.detail


def test_a_stream_not_run_to_its_end_still_finishes_properly() -> None:
    translator = EventTranslator(
        "thread",
        "agui-run",
        "run-1",
        metrics_before=Metrics(input_tokens=5, output_tokens=1, model_calls=1),
    )
    started = translator.started("thread", {"a": 1})
    assert [e.type.value for e in started] == ["RUN_STARTED", "STATE_SNAPSHOT"]
    mid = translator.translate({"event": "RunContent", "content": "par"})
    mid += translator.translate({"event": "CustomEvent", "data": {STATE_KEY: {"a": 2}}})
    assert [e.type.value for e in mid] == [
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "STATE_DELTA",
    ]
    out = RunOutput(
        run_id="run-1",
        status=RunStatus.completed,
        content={"answer": 42},
        session_state={"a": 2, "b": 3},
        model="m",
        model_provider="p",
        metrics=Metrics(input_tokens=12, output_tokens=4, total_tokens=16, model_calls=2),
    )
    end = translator.finish(out)
    assert [e.type.value for e in end] == ["TEXT_MESSAGE_END", "STATE_DELTA", "RUN_FINISHED"]
    assert end[1].delta[0].path == "/b"
    finished = end[-1]
    assert finished.result == {"answer": 42} and finished.outcome.type == "success"
    (usage,) = finished.usage
    # Only this leg's calls: the run had used 5 + 1 before it was resumed.
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (7, 3, 10)
    for event in started + mid + end:
        assert EVENTS.validate_json(event.model_dump_json(by_alias=True)) == event
        assert event.timestamp is not None


def test_usage_a_provider_did_not_report_is_left_out_not_sent_as_zero() -> None:
    out = RunOutput(
        run_id="run",
        status=RunStatus.completed,
        content="ok",
        metrics=Metrics(model_calls=1, usage_reported=False),
    )
    finished = EventTranslator("t", "r", "run").finish(out)[-1]
    assert finished.type.value == "RUN_FINISHED" and finished.usage is None


def test_an_answer_that_was_not_streamed_is_sent_whole() -> None:
    out = RunOutput(run_id="run", status=RunStatus.completed, content="whole")
    names = [e.type.value for e in EventTranslator("t", "r", "run").finish(out)]
    assert names == [
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]


def test_errors_cancellations_and_refusals_end_the_run() -> None:
    failed = RunOutput(run_id="run", status=RunStatus.error, content="the model is down")
    translator = EventTranslator("t", "r", "run")
    translator.translate({"event": "RunError", "content": "x", "error_type": "ModelProviderError"})
    (error,) = translator.finish(failed)
    assert error.type.value == "RUN_ERROR" and error.message == "the model is down"
    assert error.code == "ModelProviderError"
    running = RunOutput(run_id="run")
    (refused,) = EventTranslator("t", "r", "run").finish(running, ValueError("not paused"))
    assert (refused.message, refused.code) == ("not paused", "ValueError")
    cancelled = RunOutput(run_id="run", status=RunStatus.cancelled)
    (end,) = EventTranslator("t", "r", "run").finish(cancelled)
    assert end.outcome.type == "cancelled" and end.usage is None
    odd = RunOutput(run_id="run", status=RunStatus.paused)  # paused, yet nothing waits
    assert EventTranslator("t", "r", "run").finish(odd)[-1].type.value == "RUN_ERROR"


def change_state(key: str, session_state: dict[str, Any]) -> str:
    """Set a key of the session state."""
    session_state[key] = True
    return "set"


def decide(messages: list[Message], tools: list[Any]) -> Any:
    if messages[-1].role == "tool":
        return "done"
    return [ToolCall(name="change_state", arguments={"key": "seen"})]


async def test_state_reports_come_before_the_event_after_each_change() -> None:
    agent = Agent(model=FunctionModel(decide), tools=[change_state], db=InMemoryDb())
    stream = StateReporting(
        agent.arun("go", stream=True, stream_events=True, session_state={"n": 1})
    )
    names, states = [], []
    async for event in stream:
        names.append(event.event)
        if event.event == "CustomEvent":
            states.append(event.data[STATE_KEY])
    assert stream.output.status is RunStatus.completed
    assert states[0] == {"n": 1} and states[-1] == {"n": 1, "seen": True}
    assert names.index("CustomEvent") > names.index("RunStarted")
    assert names[-1] == "RunCompleted"
    # A report only when the state changed.
    assert len(states) == len({json.dumps(s, sort_keys=True) for s in states})


@tool(requires_confirmation=True)
def risky(target: str) -> str:
    """Do something risky."""
    return f"did {target}"


def looks(messages: list[Message], tools: list[Any]) -> Any:
    last = messages[-1]
    if last.role == "tool":
        return f"after: {last.text()}"
    text = last.text()
    if text == "risky":
        return [ToolCall(name="risky", arguments={"target": "prod"})]
    images = sum(len(m.images or []) for m in messages)
    return f"{text} ({images} images)"


def parse(body: str) -> list[Any]:
    events = []
    for frame in body.split("\n\n"):
        if frame.startswith("data: "):
            events.append(EVENTS.validate_json(frame[6:]))
    return events


def body(thread: str, content: Any = None, **fields: Any) -> dict[str, Any]:
    messages = [UserMessage(id="m", content=content)] if content is not None else []
    value = RunAgentInput(thread_id=thread, run_id="r", messages=messages, **fields)
    dumped: dict[str, Any] = value.model_dump(mode="json", by_alias=True)
    return dumped


async def test_an_agui_run_in_process_with_an_image_and_a_resume() -> None:
    app = create_app(Agent(id="a", model=FunctionModel(looks), tools=[risky]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            png = base64.b64encode(b"\x89PNG\r\n\x1a\n0000").decode()
            content = [
                {"type": "text", "text": "look"},
                {
                    "type": "image",
                    "source": {"type": "data", "value": png, "mimeType": "image/png"},
                },
            ]
            events = parse((await client.post("/agui", json=body("t1", content))).text)
            text = "".join(e.delta for e in events if e.type.value == "TEXT_MESSAGE_CONTENT")
            assert text == "look (1 images)"

            paused = parse((await client.post("/agui", json=body("t2", "risky"))).text)
            (interrupt,) = paused[-1].outcome.interrupts
            answer = entry(interrupt.id, {"approved": True}).model_dump(mode="json", by_alias=True)
            resumed = parse((await client.post("/agui", json=body("t2", resume=[answer]))).text)
            assert resumed[-1].outcome.type == "success"
            text = "".join(e.delta for e in resumed if e.type.value == "TEXT_MESSAGE_CONTENT")
            assert text == "after: did prod"

            url_image = [{"type": "image", "source": {"type": "url", "value": "http://x/y.png"}}]
            refused = await client.post("/agui", json=body("t3", url_image))
            assert refused.status_code == 422 and "inline" in refused.json()["detail"]
            not_json = await client.post(
                "/agui", content=b"{", headers={"content-type": "application/json"}
            )
            assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["detail"]
            assert (
                await client.post("/agui", json=body("t4", "hi", forwarded_props={"agentId": 3}))
            ).status_code == 422


async def test_the_playground_files_are_served_with_a_strict_policy() -> None:
    app = create_app(Agent(model=FunctionModel(looks)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            page = await client.get("/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in page.headers["content-security-policy"]
            for name in ("app.js", "agui.js", "api.js", "view.js", "markdown.js", "style.css"):
                asset = await client.get(f"/ui/{name}")
                assert asset.status_code == 200, name
                assert asset.headers["x-content-type-options"] == "nosniff"
            assert (
                (await client.get("/ui/app.js"))
                .headers["content-type"]
                .startswith("text/javascript")
            )
            assert (await client.get("/ui/nothing.js")).status_code == 404
            assert (await client.get("/ui/..%2F__init__.py")).status_code == 404
    bare = create_app(Agent(model=FunctionModel(looks)), playground=False)
    transport = httpx.ASGITransport(app=bare)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/")).status_code == 404
    assert "/agui" in bare.openapi()["paths"]


def test_the_page_refers_only_to_files_it_ships() -> None:
    import re
    from importlib import resources

    static = resources.files("pilothouse.serve.playground").joinpath("static")
    names = {entry.name for entry in static.iterdir()}
    page = static.joinpath("index.html").read_text()
    for ref in re.findall(r'(?:src|href)="ui/([^"]+)"', page):
        assert ref in names, ref
    for name in names - {"index.html", "style.css"}:
        source = static.joinpath(name).read_text()
        for ref in re.findall(r'from "\./([^"]+)"', source):
            assert ref in names, f"{name} imports {ref}"
        # Nothing from any other host: no address in a string.
        assert not re.search(r"[\"'`]https?://", source), name


def test_pieces_that_arrive_together_become_one_event() -> None:
    translator = EventTranslator("t", "r", "run")
    pieces = [{"event": "RunContent", "reasoning_content": r} for r in ("think", "ing")]
    pieces += [{"event": "RunContent", "content": c} for c in ("Hel", "lo", " there")]
    pieces += [{"event": "ToolCallStarted", "tool": {"tool_call_id": "c1", "tool_name": "x"}}]
    pieces += [{"event": "RunContent", "content": c} for c in ("a", "b")]
    events = translator.translate_all(pieces)
    assert [e.type.value for e in events] == [
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_END",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
    ]
    assert events[2].delta == "thinking" and events[6].delta == "Hello there"
    assert events[-1].delta == "ab" and events[8].parent_message_id == events[5].message_id
