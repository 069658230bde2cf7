"""Faults at run time (replay/control.py): a fault with no trigger goes to the injector
now and out on its connection's next tick; a triggered one is armed as a planned one;
one with nothing to go out on is NOT FIRED. And the status the control API serves.

Archive (``session_lines``): READY s=1, GUILD_CREATE s=2 and s=3, MESSAGE_CREATE s=4..6.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.replay import control
from replayer.replay.faults import FaultKind, FaultPlanError, parse_fault
from replayer.replay.verdicts import Result

from .conftest import Harness
from .test_engine_faults import S, heartbeat, identify, view


def streaming(harness: Callable[..., Harness]) -> tuple[Harness, object]:
    h = harness()
    conn = h.connect()
    conn.start(0)
    identify(conn)
    while conn.next_wakeup_ns() is not None and conn.next_wakeup_ns() <= S:
        conn.tick(S)
    return h, conn


def test_the_injector_takes_a_fault_now_and_its_connection_sends_it_at_the_next_tick(
    harness: Callable[..., Harness],
) -> None:
    h, conn = streaming(harness)
    injection = control.inject(h.replay, parse_fault("reconnect", now_ok=True), [conn], 2 * S)
    assert (injection.state, injection.connection) == ("due", 1)
    assert h.replay.injector.pending == [injection.fault]
    assert view(conn.tick(2 * S)) == [("send", 7, None, None, None, True)]
    assert h.replay.injector.pending == []
    assert [f.kind for f in h.replay.injector.fired] == [FaultKind.RECONNECT]
    [verdict] = h.replay.judge.verdicts
    assert verdict.name == "reconnect injected at run time, on connection 1"
    assert verdict.result is None  # open: the client is to RESUME
    assert verdict.t_fault_ms == 2000


def test_a_run_time_fault_goes_to_the_newest_open_connection_or_the_one_named(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    first, second = h.connect(), h.connect()
    first.start(0)
    second.start(0)
    newest = control.inject(h.replay, parse_fault("heartbeat", now_ok=True), [first, second], 0)
    named = control.inject(
        h.replay, parse_fault("heartbeat@conn=1", now_ok=True), [first, second], 0
    )
    assert (newest.connection, named.connection) == (2, 1)
    assert view(first.tick(0)) == [("send", 1, None, None, None, True)]
    assert view(second.tick(0)) == [("send", 1, None, None, None, True)]


def test_a_run_time_fault_with_no_connection_open_is_not_fired(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    injection = control.inject(h.replay, parse_fault("close:4000", now_ok=True), [], 0)
    assert injection.state == "not fired"
    [verdict] = h.replay.finish(S)[:1]
    assert verdict.result is Result.NOT_FIRED
    assert verdict.observed == "injected at run time, but no connection is open"


def test_a_fault_due_on_a_connection_that_ends_first_is_not_fired(
    harness: Callable[..., Harness],
) -> None:
    h, conn = streaming(harness)
    control.inject(h.replay, parse_fault("reconnect", now_ok=True), [conn], S)
    conn.client_closed(1000, S)
    verdicts = h.replay.finish(2 * S)
    assert verdicts[0].result is Result.NOT_FIRED
    assert verdicts[0].observed == "connection 1 ended before it could be sent"


def test_a_triggered_run_time_fault_is_armed_like_a_planned_one(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    conn = h.connect()
    conn.start(0)
    injection = control.inject(
        h.replay, parse_fault("reconnect@event=GUILD_CREATE#2", now_ok=True), [conn], 0
    )
    assert injection.state == "armed"
    out = view(identify(conn) + conn.tick(S))
    assert out[-1] == ("send", 7, None, None, None, True)
    assert [c[2] for c in out if c[1] == 0] == [1, 2, 3]  # op 7 right after s=3


def test_a_triggered_run_time_fault_that_could_never_fire_is_refused(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    with pytest.raises(FaultPlanError, match=r"READDY.*could never fire"):
        control.inject(h.replay, parse_fault("reconnect@event=READDY", now_ok=True), [], 0)
    assert h.replay.injector.pending == []


def test_conn_n_for_a_connection_still_to_come_waits_for_it(
    harness: Callable[..., Harness],
) -> None:
    h = harness()
    injection = control.inject(h.replay, parse_fault("reconnect@conn=1", now_ok=True), [], 0)
    assert injection.state == "armed"
    conn = h.connect()
    conn.start(0)
    assert ("send", 7, None, None, None, True) in view(identify(conn))


def test_the_plan_syntax_still_needs_a_trigger() -> None:
    with pytest.raises(FaultPlanError, match="missing '@'"):
        parse_fault("reconnect")
    assert parse_fault("reconnect", now_ok=True).trigger.now
    with pytest.raises(FaultPlanError, match="times and every need a trigger"):
        parse_fault("reconnect@times=2", now_ok=True)
    with pytest.raises(FaultPlanError, match="withhold needs a handshake step"):
        parse_fault("withhold", now_ok=True)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"reconnect", FaultKind.RECONNECT),
        (b"  close:4000\n", FaultKind.CLOSE),
        (b'{"fault": "invalid-session:true"}', FaultKind.INVALID_SESSION),
    ],
)
def test_a_request_body_names_a_fault_as_text_or_json(body: bytes, kind: FaultKind) -> None:
    assert control.fault_from_body(body).kind is kind


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"\xff", "not UTF-8"),
        (b"{nope", "not valid JSON"),
        (b'{"fault": 7}', 'needs a "fault" string'),
        (b"explode", "is not one of"),
        (b"x" * 5000, "over 4096 bytes"),
    ],
)
def test_a_bad_request_body_is_one_line(body: bytes, message: str) -> None:
    with pytest.raises(FaultPlanError, match=message) as info:
        control.fault_from_body(body)
    assert "\n" not in str(info.value)


@given(st.binary(max_size=300))
def test_any_request_body_is_a_fault_or_a_fault_plan_error(body: bytes) -> None:
    message = ""
    try:
        control.fault_from_body(body)
    except FaultPlanError as exc:
        message = str(exc)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False), ("192.168.1.5", False), ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False), ("", False), (None, False), ("localhost", False),
    ],
)  # fmt: skip
def test_only_loopback_peers_may_use_the_control_api(host: str | None, loopback: bool) -> None:
    assert control.is_loopback(host) is loopback


def test_the_status_shows_connections_sessions_faults_and_verdicts_so_far(
    harness: Callable[..., Harness],
) -> None:
    h, conn = streaming(harness)
    control.inject(h.replay, parse_fault("reconnect", now_ok=True), [conn], 2 * S)
    conn.tick(2 * S)
    heartbeat(conn, 2 * S)
    status = control.status(h.replay, [conn], 2 * S)
    json.dumps(status)  # JSON-ready
    [c] = status["connections"]
    assert c["id"] == 1
    assert c["state"] == "streaming"
    assert c["sent_away_by"] == "reconnect injected at run time, on connection 1"
    assert (c["session"], c["last_seq"], c["encoding"], c["compression"]) == (
        "sess1",
        6,
        "json",
        "none",
    )
    assert status["sessions"][0]["id"] == "sess1"
    assert status["sessions"][0]["last_seq"] == 6
    assert status["faults"]["pending"] == []
    assert [f["fault"] for f in status["faults"]["fired"]] == ["reconnect"]
    [verdict] = status["verdicts"]
    assert (verdict["name"], verdict["result"]) == (
        "reconnect injected at run time, on connection 1",
        None,
    )
