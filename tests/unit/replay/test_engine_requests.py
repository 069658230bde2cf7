"""The engine with client payloads validated and requests answered from state (issue #15,
items 8 and 9), each rule and its switch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from replayer.replay.engine import Close
from replayer.replay.verdicts import Result

from .conftest import Harness, session_lines
from .test_engine import MS, drain, identify, msg, sent

S = 1000 * MS
GUILD_MEMBERS, GUILD_PRESENCES = 1 << 1, 1 << 8


def member(user_id: int, name: str) -> dict[str, Any]:
    return {"user": {"id": str(user_id), "username": name}, "roles": []}


def frame(t_ms: int, s: int, t: str, d: Any, direction: str = "server") -> dict[str, Any]:
    payload = {"op": 0, "s": s, "t": t, "d": d}
    return {"kind": "frame", "conn": 1, "dir": direction, "t_ms": t_ms, "payload": payload}


# Guild 3: two members in GUILD_CREATE; the recording asked for "zed" and got one more.
EXTRA = [
    frame(400, 7, "GUILD_CREATE", {"id": "3", "members": [member(30, "anna"), member(31, "bert")],
          "presences": [{"user": {"id": "30"}, "status": "idle"}],
          "channels": [{"id": "60", "type": 2}],
          "soundboard_sounds": [{"sound_id": "80", "name": "boing", "guild_id": "3"}]}),
    {"kind": "frame", "conn": 1, "dir": "client", "t_ms": 401,
     "payload": {"op": 8, "d": {"guild_id": "3", "query": "zed", "limit": 1, "nonce": "rec"}}},
    frame(402, 8, "GUILD_MEMBERS_CHUNK", {"guild_id": "3", "nonce": "rec", "members": [member(32, "zed")],
          "chunk_index": 0, "chunk_count": 1}),
    frame(403, 9, "VOICE_CHANNEL_STATUS_UPDATE", {"id": "60", "guild_id": "3", "status": "live"}),
    frame(404, 10, "MESSAGE_CREATE", {"content": "after"}),
]  # fmt: skip


def streaming(h: Harness, intents: int = -1, **d: Any) -> Any:
    conn = h.connect()
    conn.start(0)
    identify(conn, 0, **({"intents": intents} if intents >= 0 else {}), **d)
    drain(conn, 0)
    return conn


def test_the_recorded_answer_is_not_replayed_the_request_is_answered_from_state(
    harness: Callable[..., Harness],
) -> None:
    h = harness(session_lines(extra=EXTRA), speed=0)
    conn = h.connect()
    conn.start(0)
    out = sent(identify(conn, 0, intents=1 | GUILD_MEMBERS) + drain(conn, 0))
    assert "GUILD_MEMBERS_CHUNK" not in [p["t"] for p in out]
    last_s = out[-1]["s"]
    # Another query than the recording's: the members that match it, with this nonce.
    request = {"guild_id": "3", "query": "b", "limit": 10, "nonce": "mine"}
    [chunk] = sent(conn.receive(msg(8, request), 10 * MS))
    assert (chunk["t"], chunk["s"]) == ("GUILD_MEMBERS_CHUNK", last_s + 1)
    assert chunk["d"] == {
        "guild_id": "3",
        "members": [member(31, "bert")],
        "chunk_index": 0,
        "chunk_count": 1,
        "nonce": "mine",
    }
    # Everyone: GUILD_CREATE's members and the recorded chunk's.
    everyone = {"guild_id": "3", "query": "", "limit": 0, "presences": True}
    [chunk] = sent(conn.receive(msg(8, everyone), 20 * MS))
    assert [m["user"]["username"] for m in chunk["d"]["members"]] == ["anna", "bert", "zed"]
    assert "presences" not in chunk["d"]  # no GUILD_PRESENCES


def test_presences_with_the_intent_and_no_answer_to_all_members_without_guild_members(
    harness: Callable[..., Harness],
) -> None:
    h = harness(session_lines(extra=EXTRA), speed=0)
    conn = streaming(h, 1 | GUILD_PRESENCES)
    everyone = {"guild_id": "3", "query": "", "limit": 0}
    assert conn.receive(msg(8, everyone), 0) == []  # no GUILD_MEMBERS: no answer
    [chunk] = sent(
        conn.receive(msg(8, {"guild_id": "3", "user_ids": ["30", "99"], "presences": True}), 0)
    )
    assert chunk["d"]["presences"] == [{"user": {"id": "30"}, "status": "idle"}]
    assert chunk["d"]["not_found"] == ["99"]


def test_recorded_answers_with_answer_from_state_off(harness: Callable[..., Harness]) -> None:
    h = harness(session_lines(extra=EXTRA), speed=0, answer_from_state=False)
    conn = streaming(h)
    request = {"guild_id": "3", "query": "b", "limit": 10, "nonce": "mine"}
    [chunk] = sent(conn.receive(msg(8, request), 10 * MS))
    assert chunk["d"]["members"] == [member(32, "zed")]  # the k-th recorded answer


def test_second_all_members_request_within_30s_is_rate_limited(
    harness: Callable[..., Harness],
) -> None:
    h = harness(session_lines(extra=EXTRA), speed=0)
    conn = streaming(h, 1 | GUILD_MEMBERS)
    everyone = {"guild_id": "3", "query": "", "limit": 0, "nonce": "a"}
    assert [p["t"] for p in sent(conn.receive(msg(8, everyone), 1 * S))] == ["GUILD_MEMBERS_CHUNK"]
    [limited] = sent(conn.receive(msg(8, {**everyone, "nonce": "b"}), 11 * S))
    assert limited["t"] == "RATE_LIMITED"
    assert limited["d"] == {
        "opcode": 8,
        "retry_after": 20.0,
        "meta": {"guild_id": "3", "nonce": "b"},
    }
    assert [p["t"] for p in sent(conn.receive(msg(8, everyone), 31 * S))] == ["GUILD_MEMBERS_CHUNK"]
    [verdict] = [
        v for v in h.replay.finish(40 * S) if v.name == "member requests within the rate limit"
    ]
    assert verdict.result is Result.NON_STRICT
    # Switched off: every request is answered.
    off = streaming(harness(session_lines(extra=EXTRA), speed=0, member_rate_limit_s=0), 3)
    for t in (1, 2, 3):
        assert [p["t"] for p in sent(off.receive(msg(8, everyone), t * S))] == [
            "GUILD_MEMBERS_CHUNK"
        ]


def test_soundboard_and_channel_info_from_state(harness: Callable[..., Harness]) -> None:
    h = harness(session_lines(extra=EXTRA), speed=0)
    conn = streaming(h)
    out = sent(conn.receive(msg(31, {"guild_ids": ["3", "1", "404"]}), 0))
    assert [(p["t"], p["d"]["guild_id"]) for p in out] == [
        ("SOUNDBOARD_SOUNDS", "3"),
        ("SOUNDBOARD_SOUNDS", "1"),
    ]
    assert out[0]["d"]["soundboard_sounds"] == [
        {"sound_id": "80", "name": "boing", "guild_id": "3"}
    ]
    [info] = sent(conn.receive(msg(43, {"guild_id": "3", "fields": ["status"]}), 0))
    assert (info["t"], info["d"]) == (
        "CHANNEL_INFO",
        {"guild_id": "3", "channels": [{"id": "60", "status": "live"}]},
    )


@pytest.mark.parametrize(
    ("op", "d"),
    [
        (8, {"guild_id": "3", "nonce": "n"}),
        (3, {"status": "online"}),
        (4, {"guild_id": "3", "self_mute": False}),  # no channel_id
        (31, {"guild_ids": "3"}),
        (43, {"guild_id": "3", "fields": ["topic"]}),
    ],
)
def test_invalid_payload_closes_4001_unless_switched_off(
    harness: Callable[..., Harness], op: int, d: Any
) -> None:
    conn = streaming(harness(session_lines(extra=EXTRA), speed=0))
    [close] = conn.receive(msg(op, d), 0)
    assert isinstance(close, Close)
    assert close.code == 4001
    lenient = streaming(harness(session_lines(extra=EXTRA), speed=0, validate_payloads=False))
    assert not any(isinstance(c, Close) for c in lenient.receive(msg(op, d), 0))


@pytest.mark.parametrize("threshold", [49, 251, "250"])
def test_large_threshold_outside_50_250_closes_4001(
    harness: Callable[..., Harness], threshold: object
) -> None:
    conn = harness(speed=0).connect()
    conn.start(0)
    [close] = identify(conn, 0, large_threshold=threshold)
    assert isinstance(close, Close)
    assert (close.code, "large_threshold" in close.reason) == (4001, True)
    lenient = harness(speed=0, validate_payloads=False).connect()
    lenient.start(0)
    assert sent(identify(lenient, 0, large_threshold=threshold))[0]["t"] == "READY"


@pytest.mark.parametrize(
    ("query", "compress", "option", "expected"),
    [
        (("10", "json", None), True, True, True),
        (("10", "json", None), False, True, False),
        (
            ("10", "json", "zlib-stream"),
            True,
            True,
            False,
        ),  # "disabled if you use transport compression"
        (("10", "etf", None), True, True, False),  # JSON only
        (("10", "json", None), True, False, False),  # the switch
    ],
)
def test_identify_compress_turns_on_payload_compression(
    harness: Callable[..., Harness],
    query: tuple[object, ...],
    compress: bool,
    option: bool,
    expected: bool,
) -> None:
    from replayer.gateway.encoding import Encoding
    from replayer.replay.engine import GatewayConnection

    h = harness(speed=0, payload_compression=option)
    encoding = Encoding.ETF if query[1] == "etf" else Encoding.JSON
    conn = GatewayConnection(h.replay, encoding, h.payloads, query=query)
    conn.start(0)
    d = {"op": 2, "d": {"token": "t", "properties": {}, "intents": 1, "compress": compress}}
    if encoding is Encoding.ETF:
        from replayer.gateway.etf import etf_encode

        conn.receive(etf_encode(d), 0)
    else:
        import json

        conn.receive(json.dumps(d).encode(), 0)
    assert conn.payload_compression is expected
