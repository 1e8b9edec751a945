"""AG-UI conformance against a real ``pilothouse serve`` process: requests built and events
parsed with the ``ag-ui-protocol`` package's own types, the order of the events checked, an
interrupt answered with ``resume`` and the same run continued; auth and isolation."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playground_kit import agui, check_run_discipline, parse_events, run_input, serving, types
from serve_kit import KEY, Server, token

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ASSISTANT = {"agentId": "assistant"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("agui")) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as opened:
        yield opened


def apply_patch(document: Any, patch: list[Any]) -> Any:
    """RFC 6902 add/remove/replace on objects (what the service sends)."""
    import copy

    document = copy.deepcopy(document)
    for operation in patch:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in operation.path.split("/")[1:]]
        target = document
        for key in keys[:-1]:
            target = target[key]
        if operation.op == "remove":
            del target[keys[-1]]
        else:
            assert operation.op in ("add", "replace")
            target[keys[-1]] = operation.value
    return document


def test_a_run_streams_reasoning_text_tools_state_and_usage(client: httpx.Client) -> None:
    thread = f"weather-{uuid.uuid4().hex[:8]}"
    body = run_input(thread, "weather Paris", state={"units": "metric"})
    events = agui(client, body)
    check_run_discipline(events)
    names = types(events)
    # The protocol's order: the run opens, the state it starts from, reasoning then the text
    # before the call, the call (start, args, end), its result, the answer, the end.
    assert names[:2] == ["RUN_STARTED", "STATE_SNAPSHOT"]
    assert names.index("REASONING_START") < names.index("TEXT_MESSAGE_START")
    call = names.index("TOOL_CALL_START")
    assert names[call : call + 3] == ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END"]
    assert names.index("TOOL_CALL_RESULT") > call
    assert "TEXT_MESSAGE_START" in names[names.index("TOOL_CALL_RESULT") :]
    started, finished = events[0], events[-1]
    assert started.thread_id == thread and started.run_id == body["runId"]
    assert started.protocol_version == "1.0"
    assert finished.thread_id == thread and finished.run_id == body["runId"]
    assert finished.outcome.type == "success"

    reasoning = "".join(e.delta for e in events if e.type.value == "REASONING_MESSAGE_CONTENT")
    assert reasoning == "The user wants the weather; I will look it up."
    text = "".join(e.delta for e in events if e.type.value == "TEXT_MESSAGE_CONTENT")
    assert text == "Let me look that up. The forecast: Sunny and 21°C in Paris."
    start = events[call]
    assert start.tool_call_name == "get_weather"
    assert start.parent_message_id == events[names.index("TEXT_MESSAGE_START")].message_id
    assert events[call + 1].delta == '{"city": "Paris"}'
    result = events[names.index("TOOL_CALL_RESULT")]
    assert result.tool_call_id == start.tool_call_id and result.content == "Sunny and 21°C in Paris"
    assert result.metadata["pilothouse"]["duration"] >= 0.04  # the tool sleeps 0.05 s

    # The state: the snapshot the run starts from, then JSON Patch deltas to what is stored.
    state = events[1].snapshot
    assert state == {"units": "metric"}
    for delta in (e for e in events if e.type.value == "STATE_DELTA"):
        state = apply_patch(state, delta.delta)
    stored = client.get(f"/sessions/{thread}").json()["session_state"]
    assert state == stored == {"units": "metric", "last_city": "Paris", "lookups": 1}

    (usage,) = finished.usage
    assert usage.model == "function:behave" and usage.provider == "function"
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    run_id = started.metadata["pilothouse"]["runId"]
    assert finished.metadata["pilothouse"]["runId"] == run_id
    stored_run = client.get(f"/agents/assistant/runs/{run_id}").json()
    assert stored_run["status"] == "COMPLETED" and stored_run["session_id"] == thread
    assert stored_run["metrics"]["total_tokens"] == usage.total_tokens

    # The next run on the thread starts from the state the last one left.
    again = agui(client, run_input(thread, "hello"))
    assert again[1].snapshot == stored


def test_an_interrupt_is_answered_with_resume_and_the_same_run_continues(
    client: httpx.Client,
) -> None:
    thread = f"hitl-{uuid.uuid4().hex[:8]}"
    # Through POST /agui, the agent named in forwardedProps.
    first = agui(client, run_input(thread, "hitl", forwarded_props=ASSISTANT), path="/agui")
    check_run_discipline(first)
    finished = first[-1]
    assert finished.type.value == "RUN_FINISHED" and finished.outcome.type == "interrupt"
    interrupts = {i.reason: i for i in finished.outcome.interrupts}
    assert set(interrupts) == {"confirmation", "user_input", "external_execution"}
    # Each waiting call was sent (start, args, end) without a result, before the interrupt.
    started = {e.tool_call_id: e.tool_call_name for e in first if e.type.value == "TOOL_CALL_START"}
    assert "TOOL_CALL_RESULT" not in types(first)
    assert {i.tool_call_id for i in interrupts.values()} == set(started)
    assert all(i.id == i.tool_call_id for i in interrupts.values())
    confirm, ask, external = (
        interrupts["confirmation"],
        interrupts["user_input"],
        interrupts["external_execution"],
    )
    assert started[confirm.tool_call_id] == "delete_logs"
    assert confirm.response_schema["required"] == ["approved"]
    assert ask.response_schema["required"] == ["to"]
    assert set(ask.response_schema["properties"]) == {"to"}
    assert external.response_schema["required"] == ["result"]
    run_id = first[0].metadata["pilothouse"]["runId"]
    assert client.get(f"/agents/assistant/runs/{run_id}").json()["status"] == "PAUSED"

    from ag_ui.core import ResumeEntry

    def entry(interrupt: Any, payload: Any, status: str = "resolved") -> dict[str, Any]:
        value = ResumeEntry(interrupt_id=interrupt.id, status=status, payload=payload)
        return value.model_dump(mode="json", by_alias=True)

    # An answer missing for one interrupt: refused before anything runs, naming the call.
    partial = run_input(
        thread,
        resume=[entry(confirm, {"approved": True}), entry(ask, {"to": "ada@example.com"})],
        forwarded_props=ASSISTANT,
    )
    refused = client.post("/agui", json=partial)
    assert refused.status_code == 422 and "run_shell" in refused.json()["detail"]
    bad = run_input(thread, resume=[entry(confirm, {"approved": "yes"})], forwarded_props=ASSISTANT)
    assert client.post("/agui", json=bad).status_code == 422

    resume = run_input(
        thread,
        resume=[
            entry(confirm, {"approved": False, "note": "keep the audit"}),
            entry(ask, {"to": "ada@example.com"}),
            entry(external, {"result": "up 3 days"}),
        ],
        forwarded_props=ASSISTANT,
    )
    second = agui(client, resume, path="/agui")
    check_run_discipline(second, known_calls=set(started))
    assert second[0].run_id == resume["runId"] != first[0].run_id
    assert second[0].metadata["pilothouse"]["runId"] == run_id  # the same run, continued
    assert "TOOL_CALL_START" not in types(second)  # the calls were sent by the first run
    results = {e.tool_call_id: e.content for e in second if e.type.value == "TOOL_CALL_RESULT"}
    assert results[ask.tool_call_id] == "sent 'weekly' to ada@example.com"
    assert results[external.tool_call_id] == "up 3 days"
    assert "rejected" in results[confirm.tool_call_id]
    assert "keep the audit" in results[confirm.tool_call_id]
    assert second[-1].outcome.type == "success"
    text = "".join(e.delta for e in second if e.type.value == "TEXT_MESSAGE_CONTENT")
    assert text.startswith("done: ") and "up 3 days" in text
    stored = client.get(f"/agents/assistant/runs/{run_id}").json()
    assert stored["status"] == "COMPLETED" and stored["content"] == text
    # A resume for a thread with nothing paused answers nothing.
    again = client.post("/agui", json=resume)
    assert again.status_code == 409


def test_a_run_is_cancelled_by_its_id_and_ends_cancelled(
    server: Server, client: httpx.Client
) -> None:
    body = run_input(f"cancel-{uuid.uuid4().hex[:8]}", "words 200 0.05")
    seen: list[Any] = []
    with client.stream("POST", "/agents/assistant/agui", json=body) as answer:
        assert answer.status_code == 200
        buffer = ""
        for chunk in answer.iter_text():
            buffer += chunk
            events = parse_events(buffer.rpartition("\n\n")[0])
            if any(e.type.value == "TEXT_MESSAGE_CONTENT" for e in events) and not seen:
                seen.append(events[0])
                run_id = events[0].metadata["pilothouse"]["runId"]
                # From another connection, as the playground does.
                with server.client() as other:
                    done = other.post(f"/agents/assistant/runs/{run_id}/cancel")
                assert done.status_code == 200 and done.json()["status"] == "CANCELLED"
        events = parse_events(buffer)
    check_run_discipline(events)
    assert events[-1].type.value == "RUN_FINISHED" and events[-1].outcome.type == "cancelled"
    words = [e for e in events if e.type.value == "TEXT_MESSAGE_CONTENT"]
    assert 0 < len(words) < 200


def test_a_failing_model_ends_with_run_error(client: httpx.Client) -> None:
    events = agui(client, run_input(f"fail-{uuid.uuid4().hex[:8]}", "fail"))
    check_run_discipline(events)
    assert events[-1].type.value == "RUN_ERROR"
    assert "the model is down" in events[-1].message


def test_the_app_endpoint_and_bad_requests(client: httpx.Client) -> None:
    # POST /agui with several agents: name one in forwardedProps.
    body = run_input(f"props-{uuid.uuid4().hex[:8]}", "hi", forwarded_props={"agentId": "helper"})
    events = agui(client, body, path="/agui")
    assert (
        "".join(e.delta for e in events if e.type.value == "TEXT_MESSAGE_CONTENT") == "helper here"
    )
    unnamed = client.post("/agui", json=run_input("t", "hi"))
    assert unnamed.status_code == 422 and unnamed.json()["field"] == "agentId"
    not_input = client.post("/agents/assistant/agui", json={"threadId": "t", "messages": []})
    assert not_input.status_code == 422 and "runId" in not_input.json()["detail"]
    no_user = run_input("t", None)
    assert client.post("/agents/assistant/agui", json=no_user).status_code == 422
    bad_state = run_input("t", "hi", state=[1, 2])
    assert client.post("/agents/assistant/agui", json=bad_state).json()["field"] == "state"
    assert client.post("/agents/nobody/agui", json=run_input("t", "hi")).status_code == 404


def test_same_auth_and_isolation_as_the_rest_of_the_app(server: Server) -> None:
    thread = f"ada-{uuid.uuid4().hex[:8]}"
    with server.client(token=None) as anonymous:
        assert anonymous.post("/agui", json=run_input(thread, "hi")).status_code == 401
    with server.client(token="not-the-key") as wrong:
        assert wrong.post("/agents/assistant/agui", json=run_input(thread, "hi")).status_code == 401
    with server.client(token=token("reader", "agents:read")) as reader:
        answer = reader.post("/agents/assistant/agui", json=run_input(thread, "hi"))
        assert answer.status_code == 403
    with server.client(token=token("ada")) as ada:
        events = agui(ada, run_input(thread, "confirm"))
        assert events[-1].outcome.type == "interrupt"
        interrupt = events[-1].outcome.interrupts[0]
        run_id = events[0].metadata["pilothouse"]["runId"]
        assert ada.get(f"/agents/assistant/runs/{run_id}").json()["user_id"] == "ada"
    resume = run_input(
        thread,
        resume=[{"interruptId": interrupt.id, "status": "resolved", "payload": {"approved": True}}],
    )
    with server.client(token=token("bob")) as bob:
        # Another user's thread does not exist for bob: neither a new message nor a resume.
        assert bob.post("/agents/assistant/agui", json=run_input(thread, "hi")).status_code == 404
        assert bob.post("/agents/assistant/agui", json=resume).status_code == 404
        assert bob.post(f"/agents/assistant/runs/{run_id}/cancel").status_code == 404
    with server.client(token=token("ada")) as ada:
        events = agui(ada, resume)
        assert events[-1].outcome.type == "success"


def test_concurrent_threads_do_not_mix(server: Server) -> None:
    results: dict[str, list[Any]] = {}

    def chat(name: str) -> None:
        with server.client(KEY) as own:
            results[name] = agui(own, run_input(f"{name}-{uuid.uuid4().hex[:6]}", f"say {name}"))

    threads = [threading.Thread(target=chat, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for name, events in results.items():
        check_run_discipline(events)
        text = "".join(e.delta for e in events if e.type.value == "TEXT_MESSAGE_CONTENT")
        assert text == f"echo: say {name}"
    assert len(results) == 4


def test_the_openapi_document_lists_the_agui_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/agui"] and "post" in paths["/agents/{agent_id}/agui"]
