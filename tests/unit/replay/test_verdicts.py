"""Every check of the judge can pass and can fail."""

from __future__ import annotations

import pytest

from replayer.gateway.opcodes import Opcode
from replayer.replay.faults import parse_fault
from replayer.replay.verdicts import Judge, Verdict

S = 1_000_000_000


def run(
    fault: str,
    events: list[tuple[str, tuple[object, ...]]],
    end_s: float = 60.0,
    interval_ms: int = 1000,
) -> Verdict:
    judge = Judge(heartbeat_interval_ms=interval_ms, window_ms=10_000)
    judge.connection_opened(1, 0)
    judge.session_started(1, "sess", 1)
    judge.dispatched(1, 7)
    judge.fault_injected(parse_fault(fault), 1, 1 * S)
    for kind, args in events:
        getattr(judge, kind)(*args)
    return judge.finish(int(end_s * S))[0]


RESUME_OK = ("client_payload", (2, Opcode.RESUME, {"session_id": "sess", "seq": 7}, 3 * S))
OPEN_2 = ("connection_opened", (2, 2 * S))


@pytest.mark.parametrize(
    ("fault", "events", "passed", "observed"),
    [
        (
            "reconnect@dispatch=1",
            [("client_closed", (1, 4000, 2 * S)), OPEN_2, RESUME_OK],
            True,
            "RESUME (session sess, seq 7) on a new connection",
        ),
        (
            "reconnect@dispatch=1",
            [
                OPEN_2,
                ("client_payload", (2, Opcode.RESUME, {"session_id": "sess", "seq": 5}, 3 * S)),
            ],
            False,
            "seq 5, but the last seq sent was 7",
        ),
        (
            "reconnect@dispatch=1",
            [
                OPEN_2,
                ("client_payload", (2, Opcode.RESUME, {"session_id": "old", "seq": 7}, 3 * S)),
            ],
            False,
            "session_id 'old'",
        ),
        (
            "reconnect@dispatch=1",
            [OPEN_2, ("client_payload", (2, Opcode.IDENTIFY, {}, 3 * S))],
            False,
            "IDENTIFY instead of RESUME",
        ),
        ("reconnect@dispatch=1", [], False, "nothing within 10.0 s"),
        (
            "reconnect@dispatch=1",
            [("client_payload", (1, Opcode.RESUME, {"session_id": "sess", "seq": 7}, 2 * S))],
            False,
            "nothing",
        ),
        (
            "invalid-session:true@dispatch=1",
            [("client_payload", (1, Opcode.RESUME, {"session_id": "sess", "seq": 7}, 2 * S))],
            True,
            "on the same connection",
        ),
        (
            "invalid-session:false@dispatch=1",
            [OPEN_2, ("client_payload", (2, Opcode.IDENTIFY, {}, 6 * S))],
            True,
            "IDENTIFY on a new connection",
        ),
        ("invalid-session:false@dispatch=1", [OPEN_2, RESUME_OK], False, "which is gone"),
        (
            "close:4009@dispatch=1",
            [OPEN_2, ("client_payload", (2, Opcode.IDENTIFY, {}, 3 * S))],
            True,
            "IDENTIFY on a new connection",
        ),
        ("close:4009@dispatch=1", [OPEN_2, RESUME_OK], False, "RESUMEd after 4009"),
        ("close:4000@dispatch=1", [OPEN_2, RESUME_OK], True, "RESUME"),
        ("close:4004@dispatch=1", [], True, "no reconnect within 10.0 s"),
        (
            "close:4004@dispatch=1",
            [OPEN_2, ("client_payload", (2, Opcode.IDENTIFY, {}, 3 * S))],
            False,
            "after a fatal close",
        ),
        ("drop@dispatch=1", [OPEN_2, RESUME_OK], True, "RESUME"),
        (
            "zombie@dispatch=1",
            [("client_closed", (1, 4000, 2 * S)), OPEN_2, RESUME_OK],
            True,
            "closed with 4000, then RESUME",
        ),
        ("zombie@dispatch=1", [("client_closed", (1, 1000, 2 * S))], False, "ends the session"),
        (
            "heartbeat@dispatch=1",
            [("client_payload", (1, Opcode.HEARTBEAT, 7, int(1.5 * S)))],
            True,
            "HEARTBEAT sent",
        ),
        ("heartbeat@dispatch=1", [], False, "nothing within 2.0 s"),
        ("stall:2s@dispatch=1", [], True, "stayed connected"),
        # Shorter than the heartbeat interval (1 s): no ACK was missed, closing is wrong.
        (
            "stall:800ms@dispatch=1",
            [("client_closed", (1, 4000, 1.5 * S))],
            False,
            "during the stall",
        ),
        # Longer: an ACK was held back past a heartbeat, so the client may take it for a
        # zombie connection: closing with 4000, then resuming, is right too.
        (
            "stall:2s@dispatch=1",
            [("client_closed", (1, 4000, 2 * S)), OPEN_2, RESUME_OK],
            True,
            "closed with 4000, then RESUME (session sess, seq 7) on a new connection",
        ),
        (
            "stall:2s@dispatch=1",
            [("client_closed", (1, 1000, 2 * S))],
            False,
            "which ends the session",
        ),
        (
            "rate-limited:3s@client-op=8",
            [("client_payload", (1, 8, {}, 2 * S))],
            False,
            "again before retry_after",
        ),
        (
            "rate-limited:3s@client-op=8",
            [("client_payload", (1, 8, {}, 5 * S))],
            True,
            "no repeat within 3 s",
        ),
    ],
)
def test_fault_verdicts(
    fault: str, events: list[tuple[str, tuple[object, ...]]], passed: bool, observed: str
) -> None:
    verdict = run(fault, events)
    assert verdict.passed is passed, verdict
    assert observed in verdict.observed


def test_reaction_time_is_measured() -> None:
    verdict = run("reconnect@dispatch=1", [OPEN_2, RESUME_OK])
    assert verdict.reaction_ms == 2000.0
    assert verdict.t_fault_ms == 1000.0


def test_heartbeat_schedule_and_rate() -> None:
    judge = Judge(heartbeat_interval_ms=1000)
    judge.connection_opened(1, 0)
    for i in range(1, 6):
        judge.client_payload(1, Opcode.HEARTBEAT, i, i * S)
    judge.client_closed(1, 1000, 6 * S)
    on_time = {v.name: v for v in judge.finish(6 * S)}
    assert on_time["heartbeats on schedule"].passed
    assert on_time["payload rate"].passed

    late = Judge(heartbeat_interval_ms=1000)
    late.connection_opened(1, 0)
    late.client_payload(1, Opcode.HEARTBEAT, None, 1 * S)
    for i in range(130):  # a burst over the 120 per 60 s limit
        late.client_payload(1, Opcode.PRESENCE_UPDATE, {}, 2 * S + i)
    late.client_payload(1, Opcode.HEARTBEAT, None, 5 * S)  # a 4 s gap on a 1 s interval
    verdicts = {v.name: v for v in late.finish(5 * S)}
    assert not verdicts["heartbeats on schedule"].passed
    assert "longest gap 4.0 s" in verdicts["heartbeats on schedule"].observed
    assert not verdicts["payload rate"].passed
    assert "132" in verdicts["payload rate"].observed


def test_the_judge_keeps_bounded_history_of_a_connection() -> None:
    """A million payloads cost a window, not a list: what the standing rules need is
    folded in as it comes (the longest heartbeat gap, the most payloads in 60 s), and a
    closed connection's window is freed."""
    judge = Judge(heartbeat_interval_ms=1000)
    judge.connection_opened(1, 0)
    watch = judge._conns[1]
    for i in range(1, 200_001):  # one payload every 100 ms: 600 in any 60 s
        judge.client_payload(1, Opcode.HEARTBEAT if i % 10 == 0 else 3, {}, i * S // 10)
        assert len(watch.recent_payloads) <= 600
    assert watch.worst_rate == 600
    judge.client_closed(1, 1000, 20_001 * S)
    assert not watch.recent_payloads
    verdicts = {v.name: v for v in judge.finish(20_001 * S)}
    assert verdicts["payload rate"].observed == "at most 600 in any 60 s (connection 1)"
    assert verdicts["heartbeats on schedule"].observed == "longest gap 1.0 s (connection 1)"


@pytest.mark.parametrize(
    ("opened_s", "result", "observed"),
    [
        ([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "FAIL", "7 failed attempts, at most 7 in 5 s"),
        ([0, 1, 2, 3], "NON-STRICT", "4 failed attempts, at most 4 in 5 s; the delays did not grow: 1.0 s, 1.0 s, 1.0 s"),
        ([0, 0.5, 1.5, 3.5], "PASS", "4 failed attempts, at most 4 in 5 s"),
    ],
)  # fmt: skip
def test_reconnect_back_off(opened_s: list[float], result: str, observed: str) -> None:
    """Connections that never got READY or RESUMED are failed attempts (serenity#1433)."""
    judge = Judge(heartbeat_interval_ms=1000)
    for conn, t in enumerate(opened_s, start=1):
        judge.connection_opened(conn, int(t * S))
    [verdict] = [v for v in judge.finish(10 * S) if v.name == "reconnect back-off"]
    assert (str(verdict.result), verdict.observed) == (result, observed)


def test_successful_connections_are_no_failed_attempts() -> None:
    judge = Judge(heartbeat_interval_ms=1000)
    for conn in range(1, 8):
        judge.connection_opened(conn, conn * S // 10)
        judge.session_started(conn, f"s{conn}", conn)
    assert "reconnect back-off" not in [v.name for v in judge.finish(10 * S)]


def judged(
    fault: str, events: list[tuple[str, tuple[object, ...]]], s: int | None = None
) -> Verdict:
    judge = Judge(heartbeat_interval_ms=1000, window_ms=3000)
    judge.connection_opened(1, 0)
    judge.session_started(1, "sess", 1)
    judge.dispatched(1, 7)
    judge.fault_injected(parse_fault(fault), 1 if "upgrade" not in fault else 0, 1 * S, s=s)
    for kind, args in events:
        getattr(judge, kind)(*args)
    return judge.finish(60 * S)[0]


@pytest.mark.parametrize(
    ("fault", "events", "s", "result", "observed"),
    [
        ("withhold@phase=identify", [], None, "NON-STRICT", "still waiting after 3.0 s: never gave up and reconnected"),
        ("withhold@phase=identify", [("client_closed", (1, 4000, 2 * S)), OPEN_2, ("client_payload", (2, Opcode.IDENTIFY, {}, 3 * S))], None, "PASS", "tried again after 1.0 s"),
        ("deaf@dispatch=1", [], None, "NON-STRICT", "stayed 3.0 s on a connection that sent no dispatch"),
        ("deaf@dispatch=1", [("client_closed", (1, 4000, 2 * S)), OPEN_2, RESUME_OK], None, "PASS", "RESUME (session sess, seq 7) on a new connection"),
        ("fragment@dispatch=1", [("client_payload", (1, Opcode.HEARTBEAT, 8, 2 * S))], 8, "PASS", "read it: HEARTBEAT with s=8"),
        ("fragment@dispatch=1", [("client_payload", (1, Opcode.HEARTBEAT, 7, 2 * S))], 8, "FAIL", "nothing within 3.0 s"),
        ("fragment@dispatch=1", [("client_closed", (1, 1006, 2 * S))], 8, "FAIL", "the client closed (1006) after the dispatch in pieces: it could not read it"),
        ("refuse@phase=upgrade", [OPEN_2], None, "PASS", "tried again after 1.0 s"),
        ("http:503@phase=upgrade", [], None, "FAIL", "nothing within 3.0 s"),
        ("corrupt@dispatch=1", [OPEN_2, ("client_payload", (2, Opcode.IDENTIFY, {}, 3 * S))], None, "FAIL", "IDENTIFY instead of RESUME: the session and missed events are lost"),
    ],
)  # fmt: skip
def test_transport_fault_verdicts(
    fault: str,
    events: list[tuple[str, tuple[object, ...]]],
    s: int | None,
    result: str,
    observed: str,
) -> None:
    verdict = judged(fault, events, s)
    assert (str(verdict.result), verdict.observed) == (result, observed)


@pytest.mark.parametrize(
    ("refused", "opened", "result", "observed"),
    [
        ([1, 2, 3], [(4, None)], "PASS", "3 refused resume URL attempts in a row"),
        ([1, 2, 3, 4, 5], [(6, 1)], "NON-STRICT", "5 refused resume URL attempts in a row"),
        ([1, 2, 4, 5], [(3, None), (6, 1)], "PASS", "2 refused resume URL attempts in a row"),
    ],
)
def test_back_to_the_gateway_url(
    refused: list[int], opened: list[tuple[int, int | None]], result: str, observed: str
) -> None:
    """discord.py#10511: a resume URL that answers 503, retried forever."""
    judge = Judge(heartbeat_interval_ms=1000)
    for t in refused:
        judge.attempt_refused(t * S, resume_url=True)
    for conn, (t, key) in enumerate(opened, start=1):
        judge.connection_opened(conn, t * S, url_key=key)
    [verdict] = [v for v in judge.finish(10 * S) if v.name == "back to the gateway URL"]
    assert (str(verdict.result), verdict.observed) == (result, observed)


def test_latency_is_a_stay_verdict() -> None:
    assert judged("latency:300ms@dispatch=1", []).observed == "stayed connected"
    closed = judged("latency:300ms@dispatch=1", [("client_closed", (1, 4000, 2 * S))])
    assert (str(closed.result), closed.observed) == (
        "FAIL",
        "the client closed (4000) during the stall",
    )
