"""The REST face (#15 items 6 and 10): /gateway/bot's live session_start_limit, the
start-up routes answered by default, application commands echoed, and the list of routes
answered with the replay's own 404."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.replay.rest import MAX_404_ROUTES, RestRouter
from replayer.replay.script import ReplayScript, load_script
from replayer.replay.starts import SessionStartLimit, SessionStarts
from tests.archives import session_lines, write_archive

S = 1_000_000_000
API = "/api/v10"


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> ReplayScript:
    extra = [
        {"kind": "http", "t_ms": 5, "method": "GET", "path": "/api/v10/applications/9/commands",
         "status": 200, "response_body": [{"id": "1", "name": "recorded"}]},
        {"kind": "http", "t_ms": 6, "method": "GET", "path": "/api/v10/channels/5",
         "status": 404, "response_body": {"message": "Unknown Channel", "code": 10003}},
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("rest") / "a.rpl"
    return load_script(write_archive(path, session_lines() + extra))


def get(router: RestRouter, path: str, now_ns: int = 0) -> tuple[int, Any]:
    answer = router.handle("GET", API + path, now_ns=now_ns)
    return answer.status, json.loads(answer.body)


def send(router: RestRouter, method: str, path: str, body: Any) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = router.handle(method, API + path, body=raw)
    return answer.status, json.loads(answer.body)


def test_gateway_bot_serves_the_live_session_start_limit(script: ReplayScript) -> None:
    starts = SessionStarts(SessionStartLimit(total=10, remaining=4, reset_after_ms=60_000))
    router = RestRouter(script, "ws://127.0.0.1:1/", starts=starts)
    status, body = get(router, "/gateway/bot")
    assert status == 200
    assert body == {
        "url": "ws://127.0.0.1:1",
        "shards": 1,
        "session_start_limit": {
            "total": 10, "remaining": 4, "reset_after": 60_000, "max_concurrency": 1,
        },
    }  # fmt: skip
    starts.identify(1, 0, 1 * S)  # what the engine does on IDENTIFY
    limit = get(router, "/gateway/bot", 3 * S)[1]["session_start_limit"]
    assert (limit["remaining"], limit["reset_after"]) == (3, 57_000)


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/gateway", lambda b: b == {"url": "ws://127.0.0.1:1"}),
        ("/users/@me", lambda b: b["id"] == "9" and b["bot"] is True),
        ("/oauth2/applications/@me", lambda b: b["id"] == "9" and "verify_key" in b),
        ("/applications/@me", lambda b: b["id"] == "9" and b["owner"]["id"] == "9"),
        ("/soundboard-default-sounds", lambda b: b == []),
        ("/applications/9/guilds/3/commands", lambda b: b == []),
        ("/applications/9/commands", lambda b: b == [{"id": "1", "name": "recorded"}]),
    ],
)
def test_start_up_routes_are_answered_without_a_recording(
    script: ReplayScript, path: str, check: Any
) -> None:
    router = RestRouter(script, "ws://127.0.0.1:1/")
    status, body = get(router, path)
    assert status == 200
    assert check(body), body
    assert router.answered_404() == []


def test_bulk_put_is_echoed_and_served_by_get(script: ReplayScript) -> None:
    router = RestRouter(script, "ws://127.0.0.1:1/")
    commands = [{"name": "ping", "description": "Pong"}, {"name": "Info", "type": 2}]
    status, put = send(router, "PUT", "/applications/9/commands", commands)
    assert status == 200
    assert [(c["name"], c["type"], c["application_id"]) for c in put] == [
        ("ping", 1, "9"), ("Info", 2, "9"),
    ]  # fmt: skip
    assert len({c["id"] for c in put}) == 2
    assert get(router, "/applications/9/commands") == (200, put)  # not the recorded list
    assert get(router, "/applications/9/guilds/3/commands") == (200, [])  # its own scope
    status, guild = send(router, "PUT", "/applications/9/guilds/3/commands", commands[:1])
    assert guild[0]["guild_id"] == "3"
    assert get(router, "/applications/9/guilds/3/commands") == (200, guild)
    assert send(router, "PUT", "/applications/9/commands", []) == (200, [])
    assert get(router, "/applications/9/commands") == (200, [])


def test_post_creates_or_replaces_one_command(script: ReplayScript) -> None:
    router = RestRouter(script, "ws://127.0.0.1:1/")
    status, made = send(router, "POST", "/applications/9/commands", {"name": "ping"})
    assert (status, made["name"]) == (201, "ping")
    status, again = send(router, "POST", "/applications/9/commands", {"name": "ping", "x": 1})
    assert status == 200  # same name and type: replaced
    assert get(router, "/applications/9/commands")[1] == [again]


@pytest.mark.parametrize(
    ("method", "body", "why"),
    [
        ("PUT", b"not json", "the body is not JSON"),
        ("PUT", {"name": "ping"}, "expected a list of command objects"),
        ("PUT", [1, 2], "expected a list of command objects"),
        ("POST", [{"name": "ping"}], "expected a command object"),
    ],
)
def test_a_body_that_is_no_command_gets_discords_400(
    script: ReplayScript, method: str, body: Any, why: str
) -> None:
    router = RestRouter(script, "ws://127.0.0.1:1/")
    status, answer = send(router, method, "/applications/9/commands", body)
    assert status == 400
    assert answer == {"message": "Invalid Form Body", "code": 50035, "errors": {"_errors": why}}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(st.binary(max_size=64) | JSON.map(lambda o: json.dumps(o).encode()))
def test_any_put_body_is_answered_200_or_400(body: bytes) -> None:
    router = RestRouter(ReplayScript(Path("x"), {}, 1, []), "ws://h/")
    answer = router.handle("PUT", "/api/v10/applications/1/commands", body=body)
    assert answer.status in (200, 400)
    json.loads(answer.body)


def test_unknown_routes_are_listed_once_each_with_counts(script: ReplayScript) -> None:
    router = RestRouter(script, "ws://127.0.0.1:1/")
    assert get(router, "/channels/5")[0] == 404  # recorded as a 404: not the replay's own
    for _ in range(3):
        assert get(router, "/guilds/7/members?limit=5")[0] == 404
    assert router.handle("POST", "/v10/gateway").status == 404  # not under /api
    assert router.answered_404() == ["GET /api/v10/guilds/7/members (3)", "POST /v10/gateway"]


def test_the_404_list_is_bounded(script: ReplayScript) -> None:
    router = RestRouter(script, "ws://127.0.0.1:1/")
    for n in range(MAX_404_ROUTES + 7):
        get(router, f"/users/{n}")
    listed = router.answered_404()
    assert len(listed) == MAX_404_ROUTES + 1
    assert listed[-1] == "7 more requests to other routes"
