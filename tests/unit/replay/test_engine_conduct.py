"""The server's own conduct, as Discord's (issue #15): timers, the payload rate limit,
sessions that expire with a bounded resume buffer, 4007, versions, intents from v8 on,
_trace. Each rule closes a wrong client with its code, and its switch turns it off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from replayer.replay.engine import Close, Command, GatewayConnection, Send
from replayer.replay.faults import FaultPlan, parse_fault

from .conftest import Harness
from .test_engine import drain, identify, msg, sent

MS = 1_000_000
S = 1_000 * MS
ON = {"heartbeat_timeout": True, "identify_timeout_ms": 30_000, "reconnect_close_ms": 5_000}


def closes(commands: list[Command]) -> list[int]:
    return [c.code for c in commands if isinstance(c, Close)]


def connect(h: Harness, v: int | None = 10) -> GatewayConnection:
    return GatewayConnection(h.replay, h.replay.script.shards[0].encoding, h.payloads,
                             query=(v, "json", None))  # fmt: skip


def started(h: Harness, v: int | None = 10, now: int = 0) -> GatewayConnection:
    conn = connect(h, v)
    conn.start(now)
    return conn


# --- timers ----------------------------------------------------------------------------------


def test_no_heartbeat_in_time_closes_4009(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, **ON)  # the archive's interval: 1000 ms, so 2.25 s allowed
    conn = started(h)
    identify(conn)
    for t in (1, 2, 3):  # on schedule: kept
        conn.receive(msg(1, None), t * S)
        assert not closes(drain(conn, t * S + 500 * MS))
    assert conn.next_wakeup_ns() == 3 * S + 2250 * MS
    assert closes(drain(conn, 3 * S + 2249 * MS)) == []
    assert closes(drain(conn, 3 * S + 2250 * MS)) == [4009]


def test_the_heartbeat_timeout_can_be_turned_off(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, **{**ON, "heartbeat_timeout": False})
    conn = started(h)
    identify(conn)
    assert closes(drain(conn, 3600 * S)) == []


@pytest.mark.parametrize("timeout_ms", [30_000, None])
def test_no_identify_after_hello(harness: Callable[..., Harness], timeout_ms: int | None) -> None:
    h = harness(speed=0, **{**ON, "heartbeat_timeout": False, "identify_timeout_ms": timeout_ms})
    conn = started(h)
    out = drain(conn, 30 * S)
    assert closes(out) == ([4009] if timeout_ms else [])


def test_op7_and_the_client_stays_is_closed_and_fails(harness: Callable[..., Harness]) -> None:
    plan = FaultPlan((parse_fault("reconnect@dispatch=2"),))
    h = harness(speed=0, plan=plan, **{**ON, "heartbeat_timeout": False})
    conn = started(h)
    out = identify(conn)
    assert [c.op for c in out if isinstance(c, Send)][-1] == 7
    assert closes(drain(conn, 4999 * MS)) == []
    assert closes(drain(conn, 5 * S)) == [4000]
    [verdict] = [v for v in h.replay.finish(6 * S) if v.name.startswith("reconnect")]
    assert verdict.result == "FAIL"
    assert verdict.observed == "stayed on the connection: the server closed it after 5.0 s"


# --- rate limit ------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [True, False])
def test_over_120_payloads_in_60_s_closes_4008(
    harness: Callable[..., Harness], limit: bool
) -> None:
    h = harness(speed=0, rate_limit=limit)
    conn = started(h)
    identify(conn)  # the first of them
    presence = msg(3, {"since": None, "activities": [], "status": "online", "afk": False})
    for i in range(119):
        assert not closes(conn.receive(presence, i * MS))
    assert closes(conn.receive(presence, 200 * MS)) == ([4008] if limit else [])


def test_payloads_spread_over_the_window_are_fine(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0)
    conn = started(h)
    identify(conn)
    for i in range(1, 400):  # 2 a second: 120 in any 60 s, never 121
        assert not closes(conn.receive(msg(1, None), i * 500 * MS + 1))


# --- sessions --------------------------------------------------------------------------------


def resume(h: Harness, seq: Any, now: int) -> list[Command]:
    conn = started(h, now=now)
    return conn.receive(msg(6, {"token": "tok", "session_id": "sess1", "seq": seq}), now)


@pytest.mark.parametrize(("ttl_ms", "resumed"), [(180_000, False), (None, True)])
def test_a_session_expires_after_its_last_connection(
    harness: Callable[..., Harness], ttl_ms: int | None, resumed: bool
) -> None:
    h = harness(speed=0, session_ttl_ms=ttl_ms)
    conn = started(h)
    identify(conn)
    conn.client_closed(4000, 1 * S)
    early = h.replay.sessions["sess1"]
    assert early.resumable
    out = sent(resume(h, 1, 1 * S + 180 * S))
    if resumed:
        assert out[-1]["t"] == "RESUMED"
    else:
        assert out == [{"op": 9, "d": False, "s": None, "t": None}]


def test_a_resume_within_the_ttl_resumes(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0)
    conn = started(h)
    identify(conn)
    conn.client_closed(4000, 1 * S)
    assert sent(resume(h, 1, 1 * S + 179 * S))[-1]["t"] == "RESUMED"


@pytest.mark.parametrize("seq", [99, -1, "3", 2.0])
def test_a_seq_the_server_never_sent_closes_4007(
    harness: Callable[..., Harness], seq: object
) -> None:
    h = harness(speed=0)
    conn = started(h)
    identify(conn)
    conn.client_closed(4000, 0)
    assert closes(resume(h, seq, 0)) == [4007]
    assert not h.replay.sessions["sess1"].resumable  # "start a new session"


def test_the_resume_buffer_is_bounded(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0, resume_buffer=2)
    conn = started(h)
    identify(conn)  # READY, 2 GUILD_CREATE, 3 MESSAGE_CREATE: s 1..6
    session = h.replay.sessions["sess1"]
    assert session.seq == 6
    assert len(session.sent) <= 4
    conn.client_closed(4000, 0)
    assert sent(resume(h, 5, 0))[-1]["t"] == "RESUMED"  # within the buffer
    h2 = harness(speed=0, resume_buffer=2)
    c2 = started(h2)
    identify(c2)
    c2.client_closed(4000, 0)
    assert sent(resume(h2, 1, 0)) == [{"op": 9, "d": False, "s": None, "t": None}]  # gone


# --- versions, intents, _trace ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "versions", "closed"),
    [(10, frozenset({9, 10}), False), (9, frozenset({9, 10}), False),
     (8, frozenset({9, 10}), True), (6, frozenset({9, 10}), True),
     (8, None, False), (None, frozenset({9, 10}), False)],
)  # fmt: skip
def test_versions_outside_the_supported_set_close_4012(
    harness: Callable[..., Harness], v: int | None, versions: frozenset[int] | None, closed: bool
) -> None:
    h = harness(speed=0, gateway_versions=versions)
    out = connect(h, v).start(0)
    assert closes(out) == ([4012] if closed else [])


@pytest.mark.parametrize("v", [9, 10])
def test_ready_says_the_clients_version(harness: Callable[..., Harness], v: int) -> None:
    h = harness(speed=0)
    conn = started(h, v)
    ready = sent(identify(conn))[0]
    assert ready["t"] == "READY"
    assert ready["d"]["v"] == v


@pytest.mark.parametrize(("v", "closed"), [(10, True), (8, True), (6, False), (None, False)])
def test_identify_without_intents_from_v8_closes_4013(
    harness: Callable[..., Harness], v: int | None, closed: bool
) -> None:
    h = harness(speed=0, gateway_versions=None)
    conn = started(h, v)
    out = conn.receive(msg(2, {"token": "tok", "properties": {}}), 0)
    assert closes(out) == ([4013] if closed else [])


def test_hello_and_resumed_carry_a_trace(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0)
    conn = connect(h)
    [hello] = sent(conn.start(0))
    assert isinstance(hello["d"]["_trace"], list)
    identify(conn)
    conn.client_closed(4000, 0)
    resumed = sent(resume(h, 6, 0))[-1]
    assert resumed["t"] == "RESUMED"
    assert isinstance(resumed["d"]["_trace"], list)


def test_the_heartbeat_timeout_ends_the_session_as_4009_says(
    harness: Callable[..., Harness],
) -> None:
    h = harness(speed=0, **{**ON, "identify_timeout_ms": None})
    conn = started(h)
    identify(conn)
    assert closes(drain(conn, 10 * S)) == [4009]
    conn.client_closed(4009, 10 * S)
    assert sent(resume(h, 6, 11 * S)) == [{"op": 9, "d": False, "s": None, "t": None}]
