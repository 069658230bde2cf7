"""Faults in the sans-I/O engine: each kind makes exactly the planned commands at exactly
the planned point, and the judge starts watching. No sockets: time is ``now_ns``.

The archive (``session_lines``): READY s=1 at 10 ms, GUILD_CREATE s=2 and s=3 at 20 and
30 ms, MESSAGE_CREATE s=4..6 at 130, 230 and 330 ms; heartbeat_interval 1000 ms.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from replayer.gateway.encoding import Encoding, decode_payload
from replayer.replay.engine import (
    Abort,
    Close,
    Command,
    GatewayConnection,
    Replay,
    Send,
    State,
)
from replayer.replay.faults import FaultPlan, parse_fault
from tests.archives import INTENTS

from .conftest import Harness

MS = 1_000_000
S = 1000 * MS
EVENTS = ["READY", "GUILD_CREATE", "GUILD_CREATE", "MESSAGE_CREATE", "MESSAGE_CREATE", "MESSAGE_CREATE"]  # fmt: skip
RESUME_TOKEN = {"token": "tok", "session_id": "sess1"}


def faulty(harness: Callable[..., Harness], *faults: str, **options: Any) -> Harness:
    """A harness whose replay carries a fault plan (the short syntax)."""
    h = harness(**options)
    h.replay = Replay(
        h.replay.script, h.replay.options, FaultPlan(tuple(parse_fault(f) for f in faults))
    )
    return h


def msg(op: int, d: Any = None) -> bytes:
    return json.dumps({"op": op, "d": d}).encode()


def identify(conn: GatewayConnection, now: int = 0) -> list[Command]:
    return conn.receive(msg(2, {"token": "tok", "properties": {}, "intents": INTENTS}), now)


def resume(conn: GatewayConnection, seq: int, now: int = 0, **d: Any) -> list[Command]:
    return conn.receive(msg(6, {**RESUME_TOKEN, "seq": seq, **d}), now)


def heartbeat(conn: GatewayConnection, now: int = 0) -> list[Command]:
    return conn.receive(msg(1, None), now)


def drain(conn: GatewayConnection, now: int) -> list[Command]:
    out: list[Command] = []
    while (wake := conn.next_wakeup_ns()) is not None and wake <= now:
        out += conn.tick(now)
    return out


def view(commands: list[Command]) -> list[tuple[Any, ...]]:
    """Each command as a short tuple: ("send", op, s, t, d, injected), ("close", code,
    reason) or ("abort",). ``d`` only for non-dispatches and RATE_LIMITED / RESUMED."""
    out: list[tuple[Any, ...]] = []
    for c in commands:
        if isinstance(c, Send):
            obj = decode_payload(c.raw, Encoding.JSON)
            assert (obj["op"], obj["s"], obj["t"]) == (c.op, c.s, c.t)  # what the shell records
            d = obj["d"] if c.op != 0 or c.t in ("RATE_LIMITED", "RESUMED") else "-"
            if isinstance(d, dict) and "_trace" in d:  # HELLO's and RESUMED's, as Discord's
                d = {k: v for k, v in d.items() if k != "_trace"}
            out.append(("send", c.op, c.s, c.t, d, c.injected))
        elif isinstance(c, Close):
            out.append(("close", c.code, c.reason))
        else:
            assert isinstance(c, Abort)
            out.append(("abort",))
    return out


def dispatched(first: int, last: int, start_s: int | None = None) -> list[tuple[Any, ...]]:
    """Recorded dispatches ``first``..``last`` (1-based items), numbered from ``start_s``."""
    s0 = first if start_s is None else start_s
    return [
        ("send", 0, s0 + i, EVENTS[item - 1], "-", False)
        for i, item in enumerate(range(first, last + 1))
    ]


ACK = ("send", 11, None, None, None, False)
OP7 = ("send", 7, None, None, None, True)
OP1 = ("send", 1, None, None, None, True)


def op9(resumable: bool, injected: bool = True) -> tuple[Any, ...]:
    return ("send", 9, None, None, resumable, injected)


def started(h: Harness, now: int = 0) -> GatewayConnection:
    conn = h.connect()
    [hello] = view(conn.start(now))
    assert hello[:4] == ("send", 10, None, None)
    assert hello[4]["heartbeat_interval"] == 1000
    return conn


# --- op 7, op 9, close, drop ------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 7))
def test_reconnect_after_the_kth_dispatch_then_the_stream_stops(
    harness: Callable[..., Harness], k: int
) -> None:
    h = faulty(harness, f"reconnect@dispatch={k}", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [*dispatched(1, k), OP7]
    assert conn.next_wakeup_ns() is None
    assert view(conn.tick(10 * S)) == []  # the stream stays stopped
    assert view(heartbeat(conn, 10 * S)) == [ACK]  # heartbeats go on
    [verdict] = h.replay.judge.verdicts
    assert (verdict.name, verdict.connection, verdict.passed) == (
        f"reconnect after dispatch {k}",
        1,
        None,
    )
    assert verdict.expected.endswith(f"(session sess1, seq {k})")
    # A RESUME on a new connection gets what was left, after RESUMED.
    new = started(h, 11 * S)
    assert view(resume(new, k, 11 * S) + drain(new, 11 * S)) == [
        ("send", 0, k + 1, "RESUMED", {}, False),
        *dispatched(k + 1, 6, start_s=k + 2),
    ]
    assert conn.state is State.CLOSED  # taken over: the shell closes the old socket


def test_reconnect_at_speed_one_comes_between_dispatches(
    harness: Callable[..., Harness],
) -> None:
    """At the recorded pace, the fault goes out right after its dispatch, not later."""
    h = faulty(harness, "reconnect@event=GUILD_CREATE#2", speed=1)
    conn = started(h)
    assert view(identify(conn)) == dispatched(1, 1)
    # The clock starts at READY (recorded at 10 ms): GUILD_CREATEs are due at 10 and 20 ms.
    assert view(conn.tick(10 * MS)) == dispatched(2, 2)
    assert conn.next_wakeup_ns() == 20 * MS
    assert view(conn.tick(20 * MS)) == [*dispatched(3, 3), OP7]
    assert conn.next_wakeup_ns() is None
    assert view(conn.tick(400 * MS)) == []


@pytest.mark.parametrize("resumable", [True, False])
def test_invalid_session(harness: Callable[..., Harness], resumable: bool) -> None:
    h = faulty(harness, f"invalid-session:{str(resumable).lower()}@seq=2", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [*dispatched(1, 2), op9(resumable)]
    assert view(conn.tick(1 * S)) == []
    assert view(heartbeat(conn, 1 * S)) == [ACK]
    new = started(h, 2 * S)
    if resumable:
        assert view(resume(new, 2, 2 * S))[0] == ("send", 0, 3, "RESUMED", {}, False)
    else:  # the session is gone: a RESUME of it gets op 9 false (not injected: the rule)
        assert view(resume(new, 2, 2 * S)) == [op9(False, injected=False)]


def test_after_invalid_session_the_same_connection_may_resume(
    harness: Callable[..., Harness],
) -> None:
    """After op 9 true a client may RESUME on the same socket (discord.js does), and the
    judge accepts it; the engine must serve it, not close with 4005."""
    h = faulty(harness, "invalid-session:true@seq=2", speed=0)
    conn = started(h)
    identify(conn)
    drain(conn, 0)
    out = view(resume(conn, 2, 1 * S) + drain(conn, 1 * S))
    assert out == [("send", 0, 3, "RESUMED", {}, False), *dispatched(3, 6, start_s=4)]
    [verdict] = h.replay.judge.verdicts
    assert verdict.passed is True
    assert verdict.observed == "RESUME (session sess1, seq 2) on the same connection"


def test_after_invalid_session_false_the_same_connection_may_identify(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "invalid-session:false@seq=2", speed=0)
    conn = started(h)
    identify(conn)
    drain(conn, 0)
    out = view(identify(conn, 5 * S) + drain(conn, 5 * S))  # 5 s: max_concurrency 1
    assert out == dispatched(1, 6)
    assert conn.session is not None
    assert conn.session.session_id == "sess1-2"  # a new session
    [verdict] = h.replay.judge.verdicts
    assert (verdict.passed, verdict.observed) == (True, "IDENTIFY")


@pytest.mark.parametrize(
    ("fault", "code", "reason", "resumable"),
    [
        ("close:4000@dispatch=3", 4000, "injected close 4000", True),
        ("close:4009@dispatch=3", 4009, "injected close 4009", False),
        ("close:4004@dispatch=3", 4004, "injected close 4004", False),
        ("close:4000@dispatch=3,reason=bye", 4000, "bye", True),
    ],
)
def test_close(
    harness: Callable[..., Harness], fault: str, code: int, reason: str, resumable: bool
) -> None:
    h = faulty(harness, fault, speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [*dispatched(1, 3), ("close", code, reason)]
    assert conn.state is State.CLOSED
    assert conn.next_wakeup_ns() is None
    assert view(heartbeat(conn, 1)) == []  # closed: nothing more on this connection
    assert conn.session is not None
    assert conn.session.resumable is resumable
    assert conn.session.owner is None


def test_drop_aborts_without_a_close_frame(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "drop@event=MESSAGE_CREATE#1", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [*dispatched(1, 4), ("abort",)]
    assert conn.state is State.CLOSED
    conn.client_closed(None, 1)  # what the shell reports once the socket is gone
    new = started(h, 2)
    assert view(resume(new, 4, 2))[0] == ("send", 0, 5, "RESUMED", {}, False)  # resumable


# --- heartbeats: zombie and op 1 --------------------------------------------------------------


def test_zombie_leaves_heartbeats_unanswered_and_the_stream_goes_on(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "zombie@dispatch=2", speed=0)
    conn = started(h)
    assert view(heartbeat(conn)) == [ACK]
    assert view(identify(conn) + drain(conn, 0)) == dispatched(1, 6)  # no command of its own
    for t in (1, 2, 3):
        assert view(heartbeat(conn, t * S)) == []
    # A new connection is not a zombie.
    new = started(h, 4 * S)
    assert view(heartbeat(new, 4 * S)) == [ACK]


def test_zombie_on_the_nth_heartbeat_leaves_that_one_unanswered(
    harness: Callable[..., Harness],
) -> None:
    """``zombie@client-op=HEARTBEAT#2``: "stop ACKing from the client's 2nd heartbeat"."""
    h = faulty(harness, "zombie@client-op=HEARTBEAT#2", speed=0)
    conn = started(h)
    identify(conn)
    drain(conn, 0)
    assert view(heartbeat(conn, 1 * S)) == [ACK]
    assert view(heartbeat(conn, 2 * S)) == []
    assert view(heartbeat(conn, 3 * S)) == []
    [verdict] = h.replay.judge.verdicts
    assert verdict.t_fault_ms == 2000.0


def test_heartbeat_request(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "heartbeat@dispatch=3", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [
        *dispatched(1, 3),
        OP1,
        *dispatched(4, 6),
    ]  # the stream goes on


# --- stall -----------------------------------------------------------------------------------


def test_stall_sends_nothing_and_defers_acks(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "stall:3s@dispatch=2", speed=0)
    conn = started(h)
    assert view(identify(conn, 1 * S) + drain(conn, 1 * S)) == dispatched(1, 2)
    assert conn.next_wakeup_ns() == 4 * S
    assert view(heartbeat(conn, 2 * S)) == []
    assert view(heartbeat(conn, 3 * S)) == []
    assert view(conn.tick(4 * S - 1)) == []
    # At the end: the two ACKs held back, then the rest of the stream.
    assert view(drain(conn, 4 * S)) == [ACK, ACK, *dispatched(3, 6)]
    assert view(heartbeat(conn, 5 * S)) == [ACK]


def test_timed_stall_holds_back_what_is_already_due(harness: Callable[..., Harness]) -> None:
    """A stall at t=15 ms, noticed at 25 ms when GUILD_CREATE s=3 (due at 20 ms: the clock
    starts at READY, recorded at 10 ms) is due too: the stall comes first, nothing is sent
    until it ends; then the ACK held back and everything overdue."""
    h = faulty(harness, "stall:1s@t=15ms", speed=1)
    conn = started(h)
    assert view(identify(conn)) == dispatched(1, 1)
    assert view(conn.tick(10 * MS)) == dispatched(2, 2)
    assert conn.next_wakeup_ns() == 15 * MS
    assert view(conn.tick(25 * MS)) == []
    assert conn.next_wakeup_ns() == 25 * MS + 1 * S
    assert view(heartbeat(conn, 500 * MS)) == []
    assert view(conn.tick(25 * MS + 1 * S)) == [ACK, *dispatched(3, 6)]


# --- RATE_LIMITED, reject-resume --------------------------------------------------------------


def test_rate_limited_is_a_dispatch_with_the_next_s(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "rate-limited:2s@client-op=REQUEST_GUILD_MEMBERS#1", speed=1)
    conn = started(h)
    assert view(identify(conn)) == dispatched(1, 1)
    request = {"guild_id": "1", "query": "", "limit": 0, "nonce": "n"}
    out = view(conn.receive(msg(8, request), 5 * MS))
    # The meta of the request in hand; the rate-limited request itself gets no answer.
    d = {"opcode": 8, "retry_after": 2.0, "meta": {"guild_id": "1", "nonce": "n"}}
    assert out == [("send", 0, 2, "RATE_LIMITED", d, True)]
    # The recorded stream goes on after it, numbered on.
    assert view(conn.tick(30 * MS)) == dispatched(2, 3, start_s=3)
    # A RESUME from before it does not replay it: it was the replayer's, not the recording's.
    conn.client_closed(4000, 40 * MS)
    new = started(h, 50 * MS)
    assert view(resume(new, 1, 50 * MS)) == [
        *dispatched(2, 3, start_s=3),
        ("send", 0, 5, "RESUMED", {}, False),
    ]


def test_reject_resume_answers_the_next_resume_with_op9_false(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "reject-resume@conn=1", "reconnect@dispatch=3", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [*dispatched(1, 3), OP7]  # armed, silent
    conn.client_closed(4000, 1)
    second = started(h, 2)
    assert view(resume(second, 3, 2)) == [op9(False)]
    assert second.state is State.AWAIT_IDENTIFY
    # Only the next RESUME: a fresh session on the same socket, then RESUMEs work again.
    # The docs: wait 1-5 s after op 9 before a fresh IDENTIFY; and 5 s since the last one
    # (max_concurrency 1, Events > Gateway > Sharding).
    later = 2 + 5_000 * MS
    assert view(identify(second, later) + drain(second, later)) == dispatched(1, 6)
    second.client_closed(4000, later + 1)
    third = started(h, later + 2)
    resumed = msg(6, {"token": "t", "session_id": "sess1-2", "seq": 6})
    assert view(third.receive(resumed, later + 2)) == [("send", 0, 7, "RESUMED", {}, False)]
    # The rejected session stays gone.
    fourth = started(h, later + 3)
    assert view(resume(fourth, 3, later + 3)) == [op9(False, injected=False)]
    names = [(v.name, v.passed, v.observed) for v in h.replay.judge.verdicts]
    assert names == [
        ("reconnect after dispatch 3", True, "RESUME (session sess1, seq 3) on a new connection"),
        ("reject-resume on connection 1", True, "IDENTIFY"),
    ]


# --- repeats, connections, time and client-op triggers ---------------------------------------


def test_times_and_every_repeat_a_fault(harness: Callable[..., Harness]) -> None:
    """``reconnect@dispatch=2,times=2,every=3``: after the 2nd and the 5th dispatch of the
    session (RESUMED is not a recorded dispatch and does not count)."""
    h = faulty(harness, "reconnect@dispatch=2,times=2,every=3", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [*dispatched(1, 2), OP7]
    conn.client_closed(4000, 1)
    second = started(h, 2)
    assert view(resume(second, 2, 2) + drain(second, 2)) == [
        ("send", 0, 3, "RESUMED", {}, False),
        *dispatched(3, 5, start_s=4),
        OP7,
    ]
    second.client_closed(4000, 3)
    third = started(h, 4)
    assert view(resume(third, 6, 4) + drain(third, 4)) == [
        ("send", 0, 7, "RESUMED", {}, False),
        *dispatched(6, 6, start_s=8),
    ]
    assert len(h.replay.judge.verdicts) == 2


def test_times_without_every_repeats_at_the_trigger_count(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "heartbeat@event=MESSAGE_CREATE,times=3", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == [
        *dispatched(1, 4), OP1, *dispatched(5, 5), OP1, *dispatched(6, 6), OP1,
    ]  # fmt: skip


def test_conn_limits_a_fault_to_one_connection(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "heartbeat@event=GUILD_CREATE#1,conn=2", speed=0)
    first = started(h)
    assert view(identify(first) + drain(first, 0)) == dispatched(1, 6)  # not on connection 1
    second = started(h, 5 * S)  # a session of its own: its own GUILD_CREATE #1
    assert view(identify(second, 5 * S) + drain(second, 5 * S)) == [
        *dispatched(1, 2),
        OP1,
        *dispatched(3, 6),
    ]


def test_conn_alone_fires_right_after_the_handshake(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "reconnect@conn=2", speed=0)
    conn = started(h)
    assert view(identify(conn)) == dispatched(1, 6)
    conn.client_closed(4000, 1)
    second = started(h, 2)
    assert view(resume(second, 6, 2) + drain(second, 2)) == [
        ("send", 0, 7, "RESUMED", {}, False),
        OP7,
    ]


def test_time_trigger_counts_from_the_first_connection(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "heartbeat@t=5s", speed=0)
    conn = started(h, 1 * S)
    assert view(identify(conn, 1 * S) + drain(conn, 1 * S)) == dispatched(1, 6)
    assert conn.next_wakeup_ns() == 6 * S
    assert view(drain(conn, 6 * S - 1)) == []
    assert view(drain(conn, 6 * S)) == [OP1]
    assert conn.next_wakeup_ns() is None


def test_time_trigger_for_another_connection_does_not_wake_this_one(
    harness: Callable[..., Harness],
) -> None:
    """A timed fault for connection 2 is not due on connection 1: connection 1 must not be
    woken for it (a wake-up in the past that sends nothing is a busy loop in the shell)."""
    h = faulty(harness, "heartbeat@t=5s,conn=2", speed=0)
    conn = started(h)
    identify(conn)
    drain(conn, 0)
    assert conn.next_wakeup_ns() is None
    assert view(conn.tick(6 * S)) == []
    assert conn.next_wakeup_ns() is None
    conn.client_closed(4000, 7 * S)
    second = started(h, 7 * S)
    assert second.next_wakeup_ns() is None  # not streaming yet
    # Overdue: it goes out as soon as connection 2 streams, right after RESUMED.
    assert view(resume(second, 6, 7 * S)) == [("send", 0, 7, "RESUMED", {}, False), OP1]
    assert second.next_wakeup_ns() is None


def test_time_trigger_waits_out_a_stall(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "stall:2s@dispatch=6", "heartbeat@t=1s", speed=0)
    conn = started(h)
    identify(conn)
    assert view(drain(conn, 0)) == []
    assert conn.next_wakeup_ns() == 2 * S  # the stall's end, not the (earlier) heartbeat
    assert view(drain(conn, 2 * S)) == [OP1]


def test_client_op_trigger(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "heartbeat@client-op=PRESENCE_UPDATE#2", speed=0)
    conn = started(h)
    identify(conn)
    drain(conn, 0)
    presence = msg(3, {"status": "online", "since": None, "activities": [], "afk": False})
    assert view(conn.receive(presence, 1)) == []
    assert view(conn.receive(presence, 2)) == [OP1]
    assert view(conn.receive(presence, 3)) == []  # once


def test_client_op_trigger_counts_per_connection(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "reconnect@client-op=RESUME#1", speed=0)
    conn = started(h)
    assert view(identify(conn) + drain(conn, 0)) == dispatched(1, 6)
    conn.client_closed(4000, 1)
    second = started(h, 2)
    assert view(resume(second, 6, 2)) == [("send", 0, 7, "RESUMED", {}, False), OP7]


# --- injected flags, determinism ------------------------------------------------------------


PLAN = (
    "heartbeat@dispatch=1",
    "rate-limited@client-op=PRESENCE_UPDATE#1",
    "zombie@client-op=HEARTBEAT#3",
    "invalid-session:true@event=MESSAGE_CREATE#2",
    "reject-resume@conn=1",  # armed by connection 1's IDENTIFY: the first RESUME gets op 9
    "close:4009@conn=3",  # right after connection 3's handshake
)


def run_plan(harness: Callable[..., Harness]) -> list[Command]:
    h = faulty(harness, *PLAN, speed=1)
    out: list[Command] = []
    conn = started(h)
    out += identify(conn) + heartbeat(conn, 1)
    idle = {"since": 0, "activities": [], "status": "idle", "afk": True}
    out += conn.receive(msg(3, idle), 2)
    out += heartbeat(conn, 3) + heartbeat(conn, 4) + drain(conn, 300 * MS)  # op 9 true
    conn.client_closed(4000, 301 * MS)
    second = started(h, 302 * MS)
    out += resume(second, 6, 302 * MS)  # rejected: op 9 false
    # A new session, 5 s after the first IDENTIFY (max_concurrency 1).
    out += identify(second, 5_303 * MS) + drain(second, 5_700 * MS)
    second.client_closed(4000, 5_701 * MS)
    third = started(h, 5_702 * MS)
    out += third.receive(msg(6, {"token": "t", "session_id": "sess1-2", "seq": 6}), 5_702 * MS)
    return out


def test_injected_sends_are_marked(harness: Callable[..., Harness]) -> None:
    out = view(run_plan(harness))
    injected = [c for c in out if c[0] == "send" and c[-1]]
    # invalid-session:true comes due on connection 1 after its zombie: superseded (one
    # reaction settles one fault), so it is not sent.
    assert [(c[1], c[3]) for c in injected] == [
        (1, None),  # heartbeat request
        (0, "RATE_LIMITED"),
        (9, None),  # reject-resume
    ]
    assert [c[4] for c in injected if c[1] == 9] == [False]
    not_injected = [c for c in out if c[0] == "send" and not c[-1]]
    assert {(c[1], c[3]) for c in not_injected} == {
        (0, "READY"), (0, "GUILD_CREATE"), (0, "MESSAGE_CREATE"), (0, "RESUMED"), (11, None),
    }  # fmt: skip
    assert out[-1] == ("close", 4009, "injected close 4009")


def test_same_plan_twice_same_commands(harness: Callable[..., Harness]) -> None:
    first, second = run_plan(harness), run_plan(harness)
    assert first == second  # Send, Close and Abort are values: bytes, op, s, t, injected
    assert len(first) > 10


def test_a_connection_the_server_ended_is_judged_up_to_its_end(
    harness: Callable[..., Harness],
) -> None:
    """After a close fault the shell reports the end (``client_closed(None)`` on a closed
    connection): its heartbeats are judged up to there, not up to the end of the run."""
    h = faulty(harness, "close:4000@dispatch=6", speed=0)
    conn = started(h)
    heartbeat(conn)
    assert view(identify(conn, 500 * MS) + drain(conn, 500 * MS))[-1] == (
        "close",
        4000,
        "injected close 4000",
    )
    conn.client_closed(None, 500 * MS)
    verdicts = {v.name: v for v in h.replay.judge.finish(30 * S)}
    schedule = verdicts["heartbeats on schedule"]
    assert (schedule.passed, schedule.observed) == (True, "longest gap 0.5 s (connection 1)")
    fault = verdicts["close 4000 after dispatch 6"]
    assert (fault.passed, fault.observed) == (False, "nothing within 15.0 s")
