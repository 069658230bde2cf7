from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from replayer.gateway.encoding import Encoding, decode_payload
from replayer.replay.engine import Close, Command, GatewayConnection, Send, State
from tests.archives import INTENTS

from .conftest import Harness, session_lines

MS = 1_000_000


def sent(commands: list[Command], encoding: Encoding = Encoding.JSON) -> list[dict[str, Any]]:
    out = []
    for c in commands:
        assert isinstance(c, Send), c
        obj = decode_payload(c.raw, encoding)
        assert (obj["op"], obj["s"], obj["t"]) == (c.op, c.s, c.t)
        out.append(obj)
    return out


def msg(op: int, d: Any = None) -> bytes:
    return json.dumps({"op": op, "d": d}).encode()


def identify(conn: GatewayConnection, now: int = 0, **d: Any) -> list[Command]:
    return conn.receive(msg(2, {"token": "tok", "properties": {}, "intents": INTENTS, **d}), now)


def drain(conn: GatewayConnection, now: int) -> list[Command]:
    out: list[Command] = []
    while (wake := conn.next_wakeup_ns()) is not None and wake <= now:
        out += conn.tick(now)
    return out


def test_hello_then_heartbeat_ack_in_any_state(harness: Callable[..., Harness]) -> None:
    conn = harness().connect()
    [hello] = sent(conn.start(0))
    assert hello["op"] == 10
    assert hello["d"]["heartbeat_interval"] == 1000
    assert isinstance(hello["d"]["_trace"], list)  # as Discord's HELLO has
    [ack] = sent(conn.receive(msg(1, None), 5))
    assert ack["op"] == 11


def test_identify_streams_the_session_as_fast_as_possible(harness: Callable[..., Harness]) -> None:
    conn = harness(speed=0).connect()
    conn.start(0)
    out = sent(identify(conn) + drain(conn, 0))
    assert [(p["t"], p["s"]) for p in out] == [
        ("READY", 1), ("GUILD_CREATE", 2), ("GUILD_CREATE", 3),
        ("MESSAGE_CREATE", 4), ("MESSAGE_CREATE", 5), ("MESSAGE_CREATE", 6),
    ]  # fmt: skip
    ready = out[0]["d"]
    assert ready["resume_gateway_url"] == "ws://replayer.test/resume/1"
    assert ready["session_id"] == "sess1"
    assert "shard" not in ready
    assert out[1]["d"] == {"id": "1", "name": "g"}


def test_recorded_gaps_scaled_by_speed(harness: Callable[..., Harness]) -> None:
    for speed, factor in ((1.0, 1.0), (2.0, 0.5)):
        conn = harness(speed=speed).connect()
        conn.start(0)
        t0 = 1000 * MS
        first = sent(identify(conn, t0))
        assert [p["t"] for p in first] == ["READY"]
        # GUILD_CREATEs were recorded 10 and 20 ms after READY.
        assert conn.next_wakeup_ns() == t0 + int(10 * MS * factor)
        assert sent(conn.tick(t0 + int(10 * MS * factor) - 1)) == []
        assert [p["s"] for p in sent(conn.tick(t0 + int(20 * MS * factor)))] == [2, 3]
        assert conn.next_wakeup_ns() == t0 + int(120 * MS * factor)


def test_shard_is_echoed_and_missing_shard_gets_4010(
    tmp_path: Any, harness: Callable[..., Harness]
) -> None:
    lines = session_lines(shard=(0, 2)) + session_lines(shard=(1, 2), conn=2, t0_ms=1)
    lines.sort(key=lambda o: o["t_ms"])
    h = harness(lines, speed=0)
    assert h.replay.script.num_shards == 2
    # max_concurrency 1: one IDENTIFY per 5 s (Events > Gateway > Sharding, Max Concurrency)
    for shard_id in (1, 0):
        now = (1 - shard_id) * 5_000 * MS
        conn = h.connect()
        conn.start(now)
        out = sent(identify(conn, now, shard=[shard_id, 2]) + drain(conn, now))
        assert out[0]["d"]["shard"] == [shard_id, 2]
        assert out[0]["d"]["session_id"] == f"sess{shard_id + 1}"
    # Gateway > Sharding: shard_id must be below num_shards (another num_shards than the
    # recording's is re-routed: tests/unit/replay/test_sharding.py).
    conn = h.connect()
    conn.start(0)
    assert identify(conn, shard=[2, 2]) == [
        Close(4010, "invalid shard [2, 2]: shard_id >= num_shards")
    ]
    # Without re-routing, a shard the archive lacks has no stream to serve.
    h = harness(lines, speed=0, reroute_shards=False)
    conn = h.connect()
    conn.start(10_000 * MS)
    assert identify(conn, 10_000 * MS, shard=[5, 6]) == [Close(4010, "the archive has no shard 5")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (msg(3, {"status": "online"}), 4003),  # before IDENTIFY
        (msg(99), 4001),  # unknown opcode
        (msg(11), 4001),  # a server-only opcode
        (b"{not json", 4002),
        (b'{"d": 1}', 4002),
        (msg(1, "x" * 5000), 4002),  # over 4096 bytes
    ],
)
def test_protocol_errors_close_with_discords_codes(
    harness: Callable[..., Harness], data: bytes, code: int
) -> None:
    conn = harness().connect()
    conn.start(0)
    [close] = conn.receive(data, 0)
    assert isinstance(close, Close)
    assert close.code == code
    assert conn.state is State.CLOSED
    assert conn.receive(msg(1), 1) == []


def test_second_identify_and_wrong_token(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, token="tok")
    conn = h.connect()
    conn.start(0)
    identify(conn)
    assert [c.code for c in identify(conn) if isinstance(c, Close)] == [4005]
    other = h.connect()
    other.start(0)
    assert other.receive(msg(2, {"token": "wrong", "properties": {}, "intents": 1}), 0) == [
        Close(4004, "authentication failed")
    ]
    bot_prefix = h.connect()
    bot_prefix.start(0)
    assert not any(
        isinstance(c, Close) for c in bot_prefix.receive(msg(2, {"token": "Bot tok"}), 0)
    )


def test_resume_replays_what_the_client_missed_then_resumed(
    harness: Callable[..., Harness],
) -> None:
    h = harness(speed=1)
    conn = h.connect()
    conn.start(0)
    t0 = 1000 * MS
    identify(conn, t0)
    assert len(sent(conn.tick(t0 + 140 * MS))) == 3  # GUILD_CREATE x2, first MESSAGE_CREATE: s=4
    conn.client_closed(4000, t0 + 145 * MS)
    new = h.connect()
    new.start(t0 + 150 * MS)
    out = sent(
        new.receive(msg(6, {"token": "tok", "session_id": "sess1", "seq": 2}), t0 + 150 * MS)
    )
    assert [(p["t"], p["s"]) for p in out] == [
        ("GUILD_CREATE", 3),
        ("MESSAGE_CREATE", 4),
        ("RESUMED", 5),
    ]
    # The stream goes on from where it was, with the recorded gaps.
    later = sent(new.tick(t0 + 250 * MS))
    assert [(p["d"]["content"], p["s"]) for p in later] == [("m1", 6)]


@pytest.mark.parametrize(
    ("close_code", "resume", "why"),
    [
        (4000, {"session_id": "nope", "seq": 1}, "unknown session"),
        (1000, {"session_id": "sess1", "seq": 1}, "client ended the session"),
    ],
)
def test_bad_resume_gets_invalid_session_false(
    harness: Callable[..., Harness], close_code: int, resume: dict[str, Any], why: str
) -> None:
    h = harness(speed=0)
    conn = h.connect()
    conn.start(0)
    identify(conn)
    conn.client_closed(close_code, 0)
    new = h.connect()
    new.start(0)
    assert sent(new.receive(msg(6, {"token": "tok", **resume}), 0)) == [
        {"op": 9, "d": False, "s": None, "t": None}
    ], why


def test_recorded_member_chunks_go_out_only_when_asked_for_and_echo_its_nonce(
    harness: Callable[..., Harness],
) -> None:
    """With answer_from_state off, the recorded answers (the k-th for the k-th request)."""
    extra = [
        {"kind": "frame", "conn": 1, "dir": "client", "t_ms": 400, "payload": {"op": 8, "d": {"guild_id": "1", "nonce": "rec"}}},
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 401, "payload": {"op": 0, "s": 7, "t": "GUILD_MEMBERS_CHUNK", "d": {"guild_id": "1", "nonce": "rec", "members": []}}},
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 402, "payload": {"op": 0, "s": 8, "t": "MESSAGE_CREATE", "d": {"content": "after"}}},
    ]  # fmt: skip
    h = harness(session_lines(extra=extra), speed=0, answer_from_state=False)
    conn = h.connect()
    conn.start(0)
    out = sent(identify(conn) + drain(conn, 0))
    # Not asked for: the chunk is held back, and the stream does not wait for it.
    assert [(p["t"], p["s"]) for p in out[-2:]] == [("MESSAGE_CREATE", 6), ("MESSAGE_CREATE", 7)]
    assert conn.next_wakeup_ns() is None
    # Asked for later: it goes out at once, with the client's nonce.
    out = sent(
        conn.receive(msg(8, {"guild_id": "1", "query": "", "limit": 0, "nonce": "mine"}), 10 * MS)
    )
    assert [(p["t"], p["s"], p["d"].get("nonce")) for p in out] == [
        ("GUILD_MEMBERS_CHUNK", 8, "mine"),
    ]  # fmt: skip
    # Asked for before the stream reaches it: it goes out in its recorded place.
    eager = harness(session_lines(extra=extra), speed=1, answer_from_state=False).connect()
    eager.start(0)
    identify(eager)
    out = sent(
        eager.receive(msg(8, {"guild_id": "1", "query": "", "limit": 0, "nonce": "early"}), 0)
        + drain(eager, 1000 * MS)
    )
    assert [(p["t"], p["s"], p["d"].get("nonce")) for p in out[-2:]] == [
        ("GUILD_MEMBERS_CHUNK", 7, "early"), ("MESSAGE_CREATE", 8, None),
    ]  # fmt: skip


def test_close_at_end(harness: Callable[..., Harness]) -> None:
    conn = harness(speed=0, close_at_end=4000).connect()
    conn.start(0)
    out = identify(conn) + drain(conn, 0)
    assert out[-1] == Close(4000, "end of the recorded session")


def test_etf_client_gets_etf(harness: Callable[..., Harness]) -> None:
    conn = harness(speed=0).connect(Encoding.ETF)
    from replayer.gateway.etf import etf_encode

    conn.start(0)
    out = sent(
        conn.receive(etf_encode({"op": 2, "d": {"token": "t"}}), 0) + drain(conn, 0), Encoding.ETF
    )
    assert out[0]["t"] == "READY"
    assert out[-1]["d"] == {"content": "m2"}


def test_same_run_twice_same_frames(harness: Callable[..., Harness]) -> None:
    runs = []
    for _ in range(2):
        h = harness(speed=0)
        conn = h.connect()
        frames = conn.start(0) + identify(conn) + drain(conn, 0) + conn.receive(msg(1, 6), 5)
        runs.append([c.raw for c in frames if isinstance(c, Send)])
    assert runs[0] == runs[1]


def test_etf_recording_a_json_client_cannot_carry_goes_out_with_null_d(
    harness: Callable[..., Harness],
) -> None:
    # Issue #14: an integer of over 4300 digits is fine in ETF but Python's JSON cannot
    # write it; the dispatch goes out as an undecodable recording does, not as a traceback.
    huge = 7 * 10**5000
    lines = session_lines()
    lines[0]["url"] = "wss://gateway.discord.gg/?v=10&encoding=etf"
    lines[-1]["payload"]["d"] = {"content": "m2", "n": huge}
    conn = harness(lines, speed=0).connect(Encoding.JSON)
    conn.start(0)
    out = sent(identify(conn) + drain(conn, 0))
    assert [p["t"] for p in out][-1] == "MESSAGE_CREATE"
    assert out[-1]["d"] is None
    assert out[-2]["d"] == {"content": "m1"}  # the others are transcoded as ever
