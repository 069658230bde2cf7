"""The judge is never wrong (issue #13), in the sans-I/O engine: expectations come from what
the client had received, a fault that never fired is NOT FIRED, one reaction settles one
fault, each session has its own resume URL, recorded incidents replay, and answers go out
only when asked for.

The archive (``session_lines``): READY s=1 at 10 ms, GUILD_CREATE s=2 and s=3, then
MESSAGE_CREATE s=4..6 at 130, 230 and 330 ms; heartbeat_interval 1000 ms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from replayer.gateway.encoding import Encoding
from replayer.gateway.opcodes import Opcode
from replayer.replay.engine import GatewayConnection, resume_key, resume_url
from replayer.replay.faults import FaultPlan, FaultPlanError, parse_fault
from replayer.replay.reachability import check_reachable
from replayer.replay.verdicts import Result, Verdict, all_ok
from tests.archives import session_lines

from .conftest import Harness
from .test_engine_faults import S, faulty, heartbeat, identify, msg, resume, started, view

MS = 1_000_000


def verdicts(h: Harness, end_s: float = 60) -> dict[str, Verdict]:
    return {v.name: v for v in h.replay.finish(int(end_s * S))}


def on(h: Harness, path: str, now: int = 0) -> GatewayConnection:
    """A connection to ``path`` (the gateway URL ``/``, or a resume URL), started."""
    conn = GatewayConnection(
        h.replay, Encoding.JSON, h.payloads, path=path, query=(10, "json", None)
    )
    conn.start(now)
    return conn


# --- expectations from what the client had received ------------------------------------------


def test_zombie_armed_before_identify_expects_the_session_identify_made(
    harness: Callable[..., Harness],
) -> None:
    """discord.py heartbeats before IDENTIFY: ``zombie@client-op=HEARTBEAT#1`` is armed with
    no session yet; the RESUME it must lead to is of the session IDENTIFY made."""
    h = faulty(harness, "zombie@client-op=HEARTBEAT#1", speed=0)
    conn = started(h)
    heartbeat(conn)
    identify(conn)
    conn.client_closed(4000, 3 * S)
    second = started(h, 3 * S)
    resume(second, 6, 3 * S)
    verdict = verdicts(h)["zombie after the client's op 1 #1"]
    assert verdict.result is Result.PASS, verdict
    assert (
        verdict.observed
        == "closed with 4000, then RESUME (session sess1, seq 6) on a new connection"
    )
    assert verdict.expected.endswith("(session sess1, seq 6)")


def test_dispatches_sent_during_a_zombie_move_the_expected_seq(
    harness: Callable[..., Harness],
) -> None:
    """Dispatches go on during a zombie: the RESUME must carry the last s sent, not the s
    at the moment the zombie began."""
    h = faulty(harness, "zombie@dispatch=2", speed=1)
    conn = started(h)
    identify(conn)
    while (wake := conn.next_wakeup_ns()) is not None:
        conn.tick(wake)
    conn.client_closed(4000, 3 * S)
    second = started(h, 3 * S)
    resume(second, 6, 3 * S)
    verdict = verdicts(h)["zombie after dispatch 2"]
    assert (verdict.result, verdict.observed) == (
        Result.PASS,
        "closed with 4000, then RESUME (session sess1, seq 6) on a new connection",
    )


def test_a_resume_with_the_seq_of_when_the_zombie_began_fails(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "zombie@dispatch=2", speed=0)
    conn = started(h)
    identify(conn)
    conn.client_closed(4000, 3 * S)
    resume(started(h, 3 * S), 2, 3 * S)
    verdict = verdicts(h)["zombie after dispatch 2"]
    assert (verdict.result, verdict.observed) == (
        Result.FAIL,
        "RESUME with seq 2, but the last seq sent was 6",
    )


def test_reconnecting_without_closing_the_zombie_is_non_strict(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "zombie@dispatch=2", speed=0)
    conn = started(h)
    identify(conn)
    resume(started(h, 3 * S), 6, 3 * S)  # the zombie connection is still open
    verdict = verdicts(h)["zombie after dispatch 2"]
    assert verdict.result is Result.NON_STRICT
    assert verdict.observed.endswith("but the zombie connection was left open")
    assert verdict.passed is True
    assert all_ok([verdict])
    assert not all_ok([verdict], strict=True)


# --- NOT FIRED ---------------------------------------------------------------------------------


def test_a_fault_whose_trigger_never_came_is_not_fired(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "close:4004@seq=40", "reconnect@dispatch=3", speed=0)
    conn = started(h)
    identify(conn)
    conn.client_closed(4000, 1 * S)
    resume(started(h, 1 * S), 3, 1 * S)
    by_name = verdicts(h)
    unfired = by_name["close 4004 after s=40"]
    assert (unfired.result, unfired.observed) == (
        Result.NOT_FIRED,
        "its trigger never came in this run",
    )
    assert unfired.passed is False
    assert unfired.docs == "Topics > Opcodes and Status Codes > Gateway Close Event Codes"
    assert by_name["reconnect after dispatch 3"].result is Result.PASS
    assert not all_ok(list(by_name.values()))


def test_an_armed_reject_resume_that_no_resume_reached_is_not_fired(
    harness: Callable[..., Harness],
) -> None:
    h = faulty(harness, "reject-resume@conn=1", speed=0)
    identify(started(h))
    verdict = verdicts(h)["reject-resume on connection 1"]
    assert (verdict.result, verdict.observed) == (
        Result.NOT_FIRED,
        "armed, but no RESUME came to reject",
    )


def test_a_second_fault_on_a_connection_already_sent_away_is_superseded(
    harness: Callable[..., Harness],
) -> None:
    """op 7 and close 4000 at the same point: the client reconnects once; that settles the
    op 7, and the close was never carried out (NOT FIRED, superseded), so it cannot pass on
    the same reaction."""
    h = faulty(harness, "reconnect@dispatch=3", "close:4000@dispatch=3", speed=0)
    conn = started(h)
    out = view(identify(conn))
    assert [c for c in out if c[0] == "close"] == []
    conn.client_closed(4000, 1 * S)
    resume(started(h, 1 * S), 3, 1 * S)
    by_name = verdicts(h)
    assert by_name["reconnect after dispatch 3"].result is Result.PASS
    superseded = by_name["close 4000 after dispatch 3"]
    assert superseded.result is Result.NOT_FIRED
    assert superseded.observed == (
        "superseded: connection 1 was already sent away (reconnect after dispatch 3)"
    )


def test_one_reaction_settles_one_fault(harness: Callable[..., Harness]) -> None:
    """Two sessions, an op 7 on each; each RESUME settles the fault of the session it names
    (even when it comes first for the younger one), and only that one."""
    h = faulty(harness, "reconnect@dispatch=6,conn=1", "reconnect@dispatch=6,conn=2", speed=0)
    first, second = started(h), started(h)
    identify(first)
    identify(second, 5 * S)  # max_concurrency 1: one IDENTIFY per 5 s
    first.client_closed(4000, 6 * S)
    second.client_closed(4000, 6 * S)
    resume(started(h, 7 * S), 6, 7 * S, session_id="sess1-2")  # the second session's
    by_name = {v.name: v for v in h.replay.judge.verdicts}
    assert by_name["reconnect after dispatch 6, on connection 2"].result is Result.PASS
    assert by_name["reconnect after dispatch 6, on connection 1"].result is None  # still open
    resume(started(h, 8 * S), 6, 8 * S)  # the first session's
    by_name = verdicts(h)
    assert [by_name[f"reconnect after dispatch 6, on connection {n}"].observed for n in (1, 2)] == [
        "RESUME (session sess1, seq 6) on a new connection",
        "RESUME (session sess1-2, seq 6) on a new connection",
    ]


# --- docs sections ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "docs"),
    [
        (
            "reconnect@dispatch=1",
            "Events > Gateway Events > Reconnect; Events > Gateway > Resuming",
        ),
        ("invalid-session:false@dispatch=1", "Events > Gateway Events > Invalid Session"),
        (
            "zombie@dispatch=1",
            "Events > Gateway > Sending Heartbeats (zombied or failed connections)",
        ),
        ("heartbeat@dispatch=1", "Events > Gateway > Sending Heartbeats (Heartbeat Requests)"),
    ],
)
def test_each_verdict_names_its_docs_section(
    harness: Callable[..., Harness], fault: str, docs: str
) -> None:
    h = faulty(harness, fault, speed=0)
    identify(started(h))
    [verdict] = [v for v in h.replay.finish(60 * S) if v.t_fault_ms is not None]
    assert verdict.docs == docs
    assert verdict.to_json()["docs"] == docs
    assert verdict.to_json()["result"] == str(verdict.result)


# --- resume URLs ---------------------------------------------------------------------------------


def test_each_session_has_a_resume_url_of_its_own(harness: Callable[..., Harness]) -> None:
    assert resume_url("ws://127.0.0.1:5/", 3) == "ws://127.0.0.1:5/resume/3"
    assert [resume_key(p) for p in ("/resume/3", "/resume/3/", "/", "/resume/x", "/other")] == [
        3, 3, None, None, None,
    ]  # fmt: skip
    h = harness(speed=0)
    urls = []
    for n in range(2):
        conn = started(h, n * 5 * S)
        out = identify(conn, n * 5 * S)  # max_concurrency 1: one IDENTIFY per 5 s
        urls.append(_ready(out)["resume_gateway_url"])
    assert urls == ["ws://replayer.test/resume/1", "ws://replayer.test/resume/2"]


def _ready(commands: list[Any]) -> dict[str, Any]:
    import json

    for c in commands:
        obj = json.loads(getattr(c, "raw", b"{}") or b"{}")
        if obj.get("t") == "READY":
            return dict(obj["d"])
    raise AssertionError("no READY")


@pytest.mark.parametrize(
    ("path", "query", "result", "observed"),
    [
        ("/resume/1", (10, "json", None), Result.PASS, "1 of 1 did"),
        ("/", (10, "json", None), Result.NON_STRICT, "connection 2 RESUMEd on the gateway URL"),
        ("/resume/7", (10, "json", None), Result.NON_STRICT,
         "connection 2 RESUMEd on another session's resume URL"),
    ],
)  # fmt: skip
def test_a_resume_on_the_gateway_url_is_non_strict(
    harness: Callable[..., Harness],
    path: str,
    query: tuple[object, ...],
    result: Result,
    observed: str,
) -> None:
    h = harness(speed=0)
    first = on(h, "/")
    identify(first)
    first.client_closed(4000, 1 * S)
    resume(on(h, path, 1 * S), 6, 1 * S)
    verdict = verdicts(h)["RESUMEs on resume_gateway_url"]
    assert (verdict.result, verdict.observed) == (result, observed)


def test_a_resume_with_another_query_fails(harness: Callable[..., Harness]) -> None:
    h = harness(speed=0)
    first = on(h, "/")
    identify(first)
    first.client_closed(4000, 1 * S)
    second = GatewayConnection(
        h.replay, first.encoding, h.payloads, path="/resume/1", query=(9, "json", None)
    )
    second.start(1 * S)
    resume(second, 6, 1 * S)
    verdict = verdicts(h)["RESUMEs keep the query"]
    assert verdict.result is Result.FAIL
    assert verdict.observed == (
        "connection 2 RESUMEd with v/encoding/compress 9/json/None, "
        "the session began with 10/json/None"
    )


def test_a_new_session_on_a_resume_url_is_non_strict(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "invalid-session:false@dispatch=6", speed=0)
    first = on(h, "/")
    identify(first)
    first.client_closed(4000, 1 * S)
    identify(on(h, "/resume/1", 5 * S), 5 * S)  # should go back to the gateway URL
    by_name = verdicts(h)
    assert by_name["invalid-session d=false after dispatch 6"].result is Result.PASS
    rule = by_name["new sessions on the gateway URL"]
    assert (rule.result, rule.observed) == (
        Result.NON_STRICT,
        "connection 2 IDENTIFYed on a resume_gateway_url",
    )


# --- recorded incidents --------------------------------------------------------------------------


def _with_recorded_op7(after_s: int) -> list[dict[str, Any]]:
    """``session_lines`` with a recorded op 7 after dispatch ``after_s`` on connection 1."""
    lines = session_lines()
    position = next(
        i for i, line in enumerate(lines) if line.get("payload", {}).get("s") == after_s
    )
    t_ms = lines[position]["t_ms"] + 1
    op7 = {
        "kind": "frame",
        "conn": 1,
        "dir": "server",
        "t_ms": t_ms,
        "payload": {"op": 7, "d": None},
    }
    return [*lines[: position + 1], op7, *lines[position + 1 :]]


def test_a_recorded_op7_replays_at_its_point_and_is_judged(
    harness: Callable[..., Harness],
) -> None:
    h = harness(_with_recorded_op7(4), speed=0)
    conn = started(h)
    out = view(identify(conn))
    assert [c[1:4] for c in out][-2:] == [(0, 4, "MESSAGE_CREATE"), (7, None, None)]
    conn.client_closed(4000, 1 * S)
    second = started(h, 1 * S)
    out = view(resume(second, 4, 1 * S))
    assert (7, None, None) not in [c[1:4] for c in out]  # once a run
    verdict = verdicts(h)["recorded reconnect after dispatch 4"]
    assert verdict.result is Result.PASS


def test_no_recorded_faults_turns_them_off(harness: Callable[..., Harness]) -> None:
    h = harness(_with_recorded_op7(4), speed=0, recorded_faults=False)
    out = view(identify(started(h)))
    assert 7 not in [c[1] for c in out]


def test_recorded_incidents_are_indexed_by_position(harness: Callable[..., Harness]) -> None:
    h = harness(_with_recorded_op7(5), speed=0)
    [script] = h.replay.script.shards.values()
    assert list(script.incidents) == [5]
    t_ns, fault = script.incidents[5]
    assert t_ns == 231 * MS  # 1 ms after MESSAGE_CREATE s=5
    assert (fault.kind, fault.recorded, fault.describe()) == (
        "reconnect",
        True,
        "recorded reconnect after dispatch 5",
    )


# --- the heartbeat interval, reachability --------------------------------------------------------


def test_heartbeat_interval_option_replaces_the_recorded_one(
    harness: Callable[..., Harness],
) -> None:
    h = harness(speed=0, heartbeat_interval_ms=250)
    [hello] = view(h.connect().start(0))
    assert hello[4] == {"heartbeat_interval": 250}
    assert h.replay.judge.heartbeat_interval_ns == 250 * MS


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("reconnect@event=READDY", "field 'event': READDY never occurs in a0.rpl (6 dispatches); its events: GUILD_CREATE, MESSAGE_CREATE, READY"),
        ("reconnect@event=MESSAGE_CREATE#4", "field 'event': MESSAGE_CREATE #4 never comes: a0.rpl (6 dispatches) has 3 MESSAGE_CREATE"),
        ("reconnect@dispatch=7", "field 'dispatch': 7 is beyond the stream of a0.rpl (6 dispatches)"),
        ("close:4004@seq=40", "field 'seq': 40 is beyond the stream of a0.rpl (6 dispatches), whose s reaches 7 at most with this plan"),
        ("reconnect@dispatch=2,times=4,every=2", "field 'dispatch': 8 is beyond the stream"),
        ("reconnect@client-op=HELLO", "field 'client-op': clients never send HELLO (op 10)"),
    ],
)  # fmt: skip
def test_a_trigger_that_cannot_come_is_refused_before_the_replay(
    harness: Callable[..., Harness], fault: str, says: str
) -> None:
    h = harness(speed=0)
    with pytest.raises(FaultPlanError) as raised:
        check_reachable(FaultPlan((parse_fault(fault),)), h.replay.script)
    message = str(raised.value)
    assert message.startswith(f"fault {fault!r}: ")
    assert says in message
    assert message.endswith("it could never fire (--allow-unfired runs it anyway)")
    assert "\n" not in message


@pytest.mark.parametrize(
    "fault",
    ["reconnect@event=READY", "reconnect@event=MESSAGE_CREATE#3", "reconnect@dispatch=6",
     "close:4000@seq=7", "zombie@client-op=HEARTBEAT#2", "reconnect@t=5s", "reconnect@conn=4"],
)  # fmt: skip
def test_a_trigger_that_can_come_is_accepted(harness: Callable[..., Harness], fault: str) -> None:
    h = harness(speed=0)
    check_reachable(FaultPlan((parse_fault(fault),)), h.replay.script)


def test_the_replay_is_the_whole_run_of_one_plan(harness: Callable[..., Harness]) -> None:
    """Replay.finish is what the server's verdicts() returns: faults, then standing rules."""
    h = faulty(harness, "heartbeat@dispatch=1", speed=0)
    conn = started(h)
    identify(conn)
    conn.receive(msg(int(Opcode.HEARTBEAT), 1), 1 * S)
    names = [v.name for v in h.replay.finish(2 * S)]
    assert names[0] == "heartbeat after dispatch 1"


# --- handshake faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("withhold@dispatch=2", "withhold needs a handshake step (phase=hello, ...)"),
        ("zombie@phase=hello", "a zombie cannot answer a handshake step"),
        ("reconnect@phase=ready", "'ready' is not one of hello, identify, resume"),
        ("reconnect@phase=hello,dispatch=2", "give one of dispatch, event, seq, client-op, t, phase"),
    ],
)  # fmt: skip
def test_handshake_fault_syntax_errors(text: str, says: str) -> None:
    with pytest.raises(FaultPlanError, match=re.escape(says)):
        parse_fault(text)


def test_handshake_fault_syntax() -> None:
    fault = parse_fault("withhold@phase=identify#2,conn=3")
    assert (fault.kind, fault.trigger.phase, fault.trigger.nth, fault.trigger.conn) == (
        "withhold", "identify", 2, 3,
    )  # fmt: skip
    assert fault.describe() == "withhold in answer to IDENTIFY #2, on connection 3"
    assert parse_fault("reconnect@phase=hello").describe() == "reconnect instead of HELLO #1"


def test_op7_instead_of_hello(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "reconnect@phase=hello", speed=0)
    first = h.connect()
    assert view(first.start(0)) == [("send", 7, None, None, None, True)]
    first.client_closed(4000, 1 * S)
    second = started(h, 1 * S)  # HELLO this time
    identify(second, 1 * S)
    verdict = verdicts(h)["reconnect instead of HELLO #1"]
    assert (verdict.result, verdict.observed) == (Result.PASS, "IDENTIFY on a new connection")
    assert verdict.docs.startswith("Events > Gateway Events > Reconnect")


def test_hello_withheld(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "withhold@phase=hello", speed=0)
    first = h.connect()
    assert first.start(0) == []
    assert heartbeat(first, 1) == []  # nothing is answered
    assert identify(first, 2) == []
    first.client_closed(4000, 5 * S)
    identify(started(h, 5 * S), 5 * S)
    verdict = verdicts(h)["withhold instead of HELLO #1"]
    assert verdict.result is Result.PASS


@pytest.mark.parametrize("resumable", [False, True])
def test_op9_in_answer_to_identify(harness: Callable[..., Harness], resumable: bool) -> None:
    h = faulty(harness, f"invalid-session:{str(resumable).lower()}@phase=identify", speed=0)
    conn = started(h)
    assert view(identify(conn)) == [("send", 9, None, None, resumable, True)]
    out = view(identify(conn, 2 * S))  # again, on the same connection: READY this time
    assert out[0][1:4] == (0, 1, "READY")
    verdict = verdicts(h)[f"invalid-session d={str(resumable).lower()} in answer to IDENTIFY #1"]
    assert (verdict.result, verdict.observed) == (Result.PASS, "IDENTIFY")


def test_a_fatal_close_in_answer_to_identify(harness: Callable[..., Harness]) -> None:
    h = faulty(harness, "close:4014@phase=identify", speed=0)
    conn = started(h)
    assert view(identify(conn)) == [("close", 4014, "injected close 4014")]
    verdict = verdicts(h)["close 4014 in answer to IDENTIFY #1"]
    assert verdict.result is Result.PASS
    h2 = faulty(harness, "close:4014@phase=identify", speed=0)
    identify(started(h2))
    identify(started(h2, 1 * S), 1 * S)  # it came back: 4014 is fatal
    verdict = verdicts(h2)["close 4014 in answer to IDENTIFY #1"]
    assert (verdict.result, verdict.observed) == (
        Result.FAIL,
        "reconnected and sent IDENTIFY after a fatal close",
    )


def test_ready_withheld(harness: Callable[..., Harness]) -> None:
    """discord.js: "a READY timeout still requests reconnection"."""
    h = faulty(harness, "withhold@phase=identify", speed=0)
    conn = started(h)
    assert identify(conn) == []
    assert view(heartbeat(conn, 1 * S)) == [("send", 11, None, None, None, False)]
    conn.client_closed(4000, 3 * S)
    identify(started(h, 3 * S), 3 * S)
    verdict = verdicts(h)["withhold in answer to IDENTIFY #1"]
    assert (verdict.result, verdict.observed) == (Result.PASS, "tried again after 3.0 s")


@pytest.mark.parametrize("kind", ["close:4000", "reconnect", "drop"])
def test_a_fault_in_answer_to_resume_expects_the_resume_again(
    harness: Callable[..., Harness], kind: str
) -> None:
    """twilight PR #1973: reconnect, send RESUME, and be disconnected again at once."""
    h = faulty(harness, f"{kind}@phase=resume", speed=0)
    first = started(h)
    identify(first)
    first.client_closed(4000, 1 * S)
    second = started(h, 1 * S)
    out = view(resume(second, 6, 1 * S))
    assert [c for c in out if c[0] == "send" and c[1] == 0] == []  # no RESUMED
    second.client_closed(4000, 2 * S)
    out = view(resume(started(h, 2 * S), 6, 2 * S))
    assert (0, 7, "RESUMED") in [c[1:4] for c in out]
    verdict = verdicts(h)[f"{parse_fault(kind + '@phase=resume').describe()}"]
    assert (verdict.result, verdict.observed) == (
        Result.PASS,
        "RESUME (session sess1, seq 6) on a new connection",
    )


def test_latency_syntax() -> None:
    fault = parse_fault("latency:200ms@dispatch=2,jitter=50ms")
    assert (fault.duration_ms, fault.jitter_ms) == (200, 50)
    assert fault.describe() == "latency 200 ms +- 50 ms after dispatch 2"
    with pytest.raises(FaultPlanError, match="more than the latency itself"):
        parse_fault("latency:20ms@dispatch=2,jitter=50ms")
    with pytest.raises(FaultPlanError, match="a latency needs one"):
        parse_fault("latency@dispatch=2")
