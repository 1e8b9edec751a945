"""Every route of the served app, on a real uvicorn process with a SQLite store.

One server (``pilothouse serve tests/integration/served_agents.py:app``) for the module; the
security key acts as a trusted backend, JWTs as end users.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_kit import KEY, Server, SseReader, base_env, db_spec, servers, token, wait_for_status

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RUNS = "/agents/assistant/runs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("serve-routes")
    env = base_env(
        db_spec("sqlite", tmp),
        SERVE_TEST_MAX_RUNS="3",
        SERVE_TEST_MAX_FILES="2",
        SERVE_TEST_MAX_BODY="200000",
    )
    with servers(env, tmp) as (one,):
        yield one


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_health_config_and_agents(server: Server, client: httpx.Client) -> None:
    with server.client(token=None) as anonymous:
        health = anonymous.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert anonymous.get("/agents").status_code == 401
    config = client.get("/config").json()
    assert config["agents"] == [{"id": "assistant", "name": "Assistant", "description": None}]
    agents = client.get("/agents").json()
    assert [a["id"] for a in agents] == ["assistant"]
    tools = {t["name"]: t for t in agents[0]["tools"]}
    assert tools["delete_logs"]["requires_confirmation"] is True
    assert tools["step"]["parameters"]["required"] == ["index", "delay"]
    assert client.get("/agents/assistant").json()["model"]["provider"] == "function"
    missing = client.get("/agents/nobody")
    assert missing.status_code == 404 and missing.json()["field"] == "agent_id"
    assert client.get("/openapi.json").json()["paths"]["/agents/{agent_id}/runs"]["post"]


def test_non_streamed_run_json_and_form(client: httpx.Client) -> None:
    answer = client.post(RUNS, json={"message": "hello", "stream": False, "user_id": "ann"})
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert (run["status"], run["content"], run["user_id"]) == ("COMPLETED", "echo: hello", "ann")
    stored = client.get(f"{RUNS}/{run['run_id']}").json()
    assert stored["status"] == "COMPLETED" and stored["content"] == "echo: hello"

    image = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    form = client.post(
        RUNS,
        data={"message": "with a file", "stream": "false", "session_id": run["session_id"]},
        files=[
            ("files", ("pic.png", image, "image/png")),
            ("files", ("a.txt", b"hi", "text/plain")),
        ],
    )
    assert form.status_code == 200, form.text
    data = form.json()
    assert data["session_id"] == run["session_id"] and data["content"] == "echo: with a file"
    assert base64.b64decode(data["input"]["images"][0]["content"]) == image
    assert data["input"]["files"][0]["name"] == "a.txt"


def test_streamed_run_frames_have_ids_and_end_with_the_run(client: httpx.Client) -> None:
    with client.stream("POST", RUNS, json={"message": "steps 2 0", "user_id": "ann"}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        frames = SseReader(answer).rest()
    assert [f.id for f in frames] == list(range(1, len(frames) + 1))
    names = [f.event for f in frames]
    assert names[0] == "RunStarted" and names[-1] == "RunCompleted"
    assert names.count("ToolCallCompleted") == 2
    assert frames[-1].data["content"] == "finished 2 steps"
    run_id = frames[0].data["run_id"]
    # The same events, from the log, for a client that comes back later.
    with client.stream("GET", f"{RUNS}/{run_id}/events", params={"after": 3}) as again:
        replay = SseReader(again).rest()
    assert [(f.id, f.event) for f in replay] == [(f.id, f.event) for f in frames[3:]]


def test_a_failing_model_ends_the_stream_with_run_error(client: httpx.Client) -> None:
    with client.stream("POST", RUNS, json={"message": "fail"}) as answer:
        frames = SseReader(answer).rest()
    assert frames[-1].event == "RunError" and "the model is down" in frames[-1].data["content"]
    run = client.get(f"{RUNS}/{frames[-1].data['run_id']}").json()
    assert run["status"] == "ERROR"


def test_background_run_answers_202_and_goes_on(client: httpx.Client) -> None:
    answer = client.post(RUNS, json={"message": "steps 2 0.1", "stream": False, "background": True})
    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    assert client.get(f"{RUNS}/{run_id}").json()["status"] in ("PENDING", "RUNNING")
    run = wait_for_status(client, f"{RUNS}/{run_id}", {"COMPLETED"})
    assert run["content"] == "finished 2 steps"


def test_bad_requests_name_the_field(client: httpx.Client) -> None:
    cases = [
        ({"stream": False}, "message"),
        ({"message": [{"role": "system", "content": "obey"}], "stream": False}, "message"),
        ({"message": {"role": "user", "content": "hi"}, "stream": False}, "message"),
        ({"message": "hi", "stream": "yes please"}, "stream"),
        ({"message": "hi", "session_state": [1]}, "session_state"),
        ({"message": "hi", "colour": "blue"}, "colour"),
        ({"message": "hi", "files": [{"content": "***"}]}, "files"),
    ]
    for body, field in cases:
        answer = client.post(RUNS, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["field"] == field, answer.json()
    form = client.post(RUNS, data={"message": "hi", "metadata": "{not json"})
    assert form.status_code == 422 and form.json()["field"] == "metadata"
    assert (
        client.post(
            RUNS, content=b"[1, 2]", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert (
        client.post(RUNS, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    )
    unknown = client.get(f"{RUNS}/no-such-run")
    assert unknown.status_code == 404 and unknown.json()["field"] == "run_id"
    assert client.post("/agents/nobody/runs", json={"message": "hi"}).status_code == 404


def test_limits_on_body_files_and_concurrent_runs(client: httpx.Client) -> None:
    big = client.post(RUNS, json={"message": "x" * 300_000, "stream": False})
    assert big.status_code == 413
    files = [("files", (f"{i}.txt", b"x", "text/plain")) for i in range(3)]
    assert client.post(RUNS, data={"message": "hi"}, files=files).status_code == 413
    started = [
        client.post(RUNS, json={"message": "words 50 0.1", "stream": False, "background": True})
        for _ in range(3)
    ]
    assert [a.status_code for a in started] == [202, 202, 202]
    refused = client.post(RUNS, json={"message": "hi", "stream": False})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    for answer in started:
        run_id = answer.json()["run_id"]
        cancelled = client.post(f"{RUNS}/{run_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
        again = client.post(f"{RUNS}/{run_id}/cancel")
        assert again.status_code == 409 and again.json()["status"] == "CANCELLED"
    assert client.post(RUNS, json={"message": "hi", "stream": False}).status_code == 200


def test_sessions_list_read_runs_and_delete(client: httpx.Client) -> None:
    user = "sessions-user"
    made = [
        client.post(RUNS, json={"message": f"m{i}", "stream": False, "user_id": user}).json()
        for i in range(3)
    ]
    first = client.get("/sessions", params={"user_id": user, "limit": 2, "page": 1}).json()
    assert first["meta"]["total_count"] == 3 and first["meta"]["total_pages"] == 2
    assert len(first["data"]) == 2
    second = client.get("/sessions", params={"user_id": user, "limit": 2, "page": 2}).json()
    ids = {s["session_id"] for s in first["data"] + second["data"]}
    assert ids == {m["session_id"] for m in made}
    session_id = made[0]["session_id"]
    session = client.get(f"/sessions/{session_id}").json()
    assert session["user_id"] == user and session["run_count"] == 1
    runs = client.get(f"/sessions/{session_id}/runs").json()
    assert [r["run_id"] for r in runs] == [made[0]["run_id"]]
    assert client.delete(f"/sessions/{session_id}").status_code == 204
    assert client.get(f"/sessions/{session_id}").status_code == 404
    assert client.get("/sessions", params={"limit": 0}).json()["field"] == "limit"


def test_memories_crud(client: httpx.Client) -> None:
    user = "memory-user"
    made = client.post(
        "/memories", json={"memory": "likes tea", "topics": ["food"], "user_id": user}
    )
    assert made.status_code == 201
    memory_id = made.json()["memory_id"]
    listed = client.get("/memories", params={"user_id": user}).json()
    assert [m["memory"] for m in listed["data"]] == ["likes tea"]
    changed = client.patch(
        f"/memories/{memory_id}", json={"memory": "likes green tea", "user_id": user}
    )
    assert changed.json()["memory"] == "likes green tea" and changed.json()["topics"] == ["food"]
    assert client.get(f"/memories/{memory_id}", params={"user_id": user}).json()["memory"] == (
        "likes green tea"
    )
    other = client.post("/memories", json={"memory": "lives in Oslo", "user_id": user}).json()
    assert client.delete(f"/memories/{memory_id}", params={"user_id": user}).status_code == 204
    assert (
        client.request(
            "DELETE", "/memories", json={"memory_ids": [other["memory_id"]], "user_id": user}
        ).status_code
        == 204
    )
    assert client.get("/memories", params={"user_id": user}).json()["data"] == []
    assert client.get("/memories").json()["field"] == "user_id"
    assert client.post("/memories", json={"user_id": user}).json()["field"] == "memory"


def test_auth_refusals(server: Server) -> None:
    with server.client(token="wrong-key") as wrong:
        refused = wrong.get("/agents")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    with server.client(token=token("ann", expires_in=-60)) as expired:
        assert "expired" in expired.get("/agents").json()["detail"].lower()
    with server.client(token=token("ann", scopes="agents:read")) as reader:
        assert reader.get("/agents").status_code == 200
        denied = reader.post(RUNS, json={"message": "hi"})
        assert denied.status_code == 403 and "agents:run" in denied.json()["detail"]
        assert reader.get("/sessions").status_code == 403
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Basic {KEY}"}) as basic:
        assert basic.get("/agents").status_code == 401


def test_users_are_isolated_from_each_other(server: Server) -> None:
    with server.client(token=token("alice")) as alice, server.client(token=token("bob")) as bob:
        run = alice.post(RUNS, json={"message": "secret", "stream": False, "user_id": "bob"}).json()
        # The user comes from the token, never from the body.
        assert run["user_id"] == "alice"
        session_id, run_id = run["session_id"], run["run_id"]
        paused = alice.post(RUNS, json={"message": "confirm", "stream": False}).json()
        assert paused["status"] == "PAUSED"
        for method, path in [
            ("GET", f"{RUNS}/{run_id}"),
            ("GET", f"{RUNS}/{run_id}/events"),
            ("POST", f"{RUNS}/{run_id}/cancel"),
            ("POST", f"{RUNS}/{paused['run_id']}/continue"),
            ("GET", f"/sessions/{session_id}"),
            ("GET", f"/sessions/{session_id}/runs"),
            ("DELETE", f"/sessions/{session_id}"),
        ]:
            answer = bob.request(method, path, json={"tools": []} if "continue" in path else None)
            assert answer.status_code == 404, (method, path, answer.status_code)
        # Bob cannot run in Alice's session either.
        assert bob.post(RUNS, json={"message": "hi", "session_id": session_id}).status_code == 404
        assert session_id not in {s["session_id"] for s in bob.get("/sessions").json()["data"]}
        assert session_id in {s["session_id"] for s in alice.get("/sessions").json()["data"]}
        memory = alice.post("/memories", json={"memory": "alice's"}).json()
        assert memory["user_id"] == "alice"
        assert bob.get(f"/memories/{memory['memory_id']}").status_code == 404
        assert bob.delete(f"/memories/{memory['memory_id']}").status_code == 404
        assert bob.get("/memories").json()["data"] == []
        assert alice.get(f"{RUNS}/{run_id}").status_code == 200


def test_secrets_never_reach_the_log(server: Server) -> None:
    bearer = token("logged-user")
    with server.client(token=bearer) as c:
        c.post(RUNS, json={"message": "hi", "stream": False})
    with server.client(token=bearer + "x") as broken:
        assert broken.get("/agents").status_code == 401
    time.sleep(0.2)
    log = server.log()
    assert KEY not in log and bearer not in log
    assert "POST /agents/assistant/runs" in log  # the access log is on


async def test_the_app_serves_its_agents_over_mcp_with_the_same_auth(server: Server) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    def mcp_client(bearer: str | None) -> Client:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        return Client(
            streamable_http_client(f"{server.url}/mcp/", http_client=http),
            read_timeout_seconds=30,
        )

    async with mcp_client(token("ann")) as mcp:
        names = {tool.name for tool in (await mcp.list_tools()).tools}
        result = await mcp.call_tool("assistant", {"message": "over mcp"})
    assert {"run_agent", "assistant"} <= names
    assert not result.is_error and result.structured_content["content"] == "echo: over mcp"
    run_id = result.structured_content["run_id"]
    with server.client(token=token("ann")) as ann:
        stored = ann.get(f"{RUNS}/{run_id}")
        assert stored.status_code == 200 and stored.json()["user_id"] == "ann"
    with server.client(token=token("bob")) as bob:
        assert bob.get(f"{RUNS}/{run_id}").status_code == 404
    with pytest.raises(Exception):  # noqa: B017 - the client fails on the 401 in its own way
        async with mcp_client(None) as anonymous:
            await anonymous.list_tools()
