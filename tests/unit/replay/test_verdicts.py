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
