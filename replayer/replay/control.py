"""The replay's control API, pure part: faults injected while a test runs (as Toxiproxy
takes toxics) and the status a test reads. ``server.py`` serves both on the replay's own
port (``POST /_replayer/faults``, ``GET /_replayer/status``), to loopback peers only; the
pytest plugin calls them directly (``replayer_gateway.inject``).

A run-time fault is written in the ``--fault`` syntax. Without a trigger
(``reconnect``, ``close:4000``, ``reconnect@conn=2``) it fires now, on the newest open
connection or on connection ``conn``; with one (``reconnect@event=MESSAGE_CREATE#2``) it
is armed as a planned fault would be. Either way the judge rules on it as on a planned
one: NOT FIRED when there is no connection to send it on, or when its trigger never
comes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from replayer.replay.engine import GatewayConnection, Replay, State
from replayer.replay.faults import Fault, FaultPlan, FaultPlanError, parse_fault
from replayer.replay.reachability import check_reachable
from replayer.replay.verdicts import summary

CONTROL_PREFIX = "/_replayer/"
MAX_FAULT_BODY_BYTES = 4096


def is_loopback(host: str | None) -> bool:
    """Whether a peer address is this machine's own (127.0.0.0/8, ::1, ::ffff:127.x):
    the only peers the control API answers."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def fault_from_body(body: bytes) -> Fault:
    """The fault a ``POST /_replayer/faults`` body names: the fault text itself, or JSON
    ``{"fault": "reconnect"}``. :class:`FaultPlanError` (one line) when it names none."""
    if len(body) > MAX_FAULT_BODY_BYTES:
        raise FaultPlanError(f"request body: over {MAX_FAULT_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise FaultPlanError("request body: not UTF-8 text") from None
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise FaultPlanError(f"request body: not valid JSON: {exc}") from None
        fault = obj.get("fault") if isinstance(obj, dict) else None
        if not isinstance(fault, str):
            raise FaultPlanError('request body: JSON needs a "fault" string, {"fault": "..."}')
        text = fault.strip()
    if not text:
        raise FaultPlanError('request body: empty; send a fault such as "reconnect"')
    return parse_fault(text, now_ok=True)


@dataclass(frozen=True)
class Injection:
    """What became of a run-time fault: ``due`` (it goes out on ``connection`` at once),
    ``armed`` (it waits for its trigger) or ``not fired`` (nothing to send it on)."""

    fault: Fault
    state: str
    connection: int | None

    def to_json(self) -> dict[str, Any]:
        return {**fault_json(self.fault), "state": self.state, "connection": self.connection}


def fault_json(fault: Fault) -> dict[str, Any]:
    return {
        "fault": fault.source or fault.describe(),
        "kind": str(fault.kind),
        "description": fault.describe(),
    }


def _conn_only(fault: Fault) -> bool:
    t = fault.trigger
    return t.conn is not None and all(
        v is None for v in (t.dispatch, t.event, t.seq, t.client_op, t.t_ms, t.phase)
    )


def inject(
    replay: Replay, fault: Fault, connections: Sequence[GatewayConnection], now_ns: int
) -> Injection:
    """Hand a run-time fault to the injector. ``connections``: those the shell drives
    now. A fault due now is taken by its connection's next ``tick`` (the shell wakes
    it); a triggered one is refused, as a plan's would be, if it could never fire."""
    trigger = fault.trigger
    if trigger.now or _conn_only(fault):
        live = [c for c in connections if c.state is not State.CLOSED]
        if trigger.conn is not None:
            target = next((c for c in live if c.number == trigger.conn), None)
        else:
            target = max(live, key=lambda c: c.number, default=None)
        if target is not None:
            return Injection(replay.injector.inject_now(fault, target.number), "due", target.number)
        if trigger.now or trigger.conn is None or trigger.conn <= replay.connections:
            where = "no connection is open" if trigger.conn is None else "it is not open"
            replay.judge.not_fired(fault, f"injected at run time, but {where}")
            return Injection(fault, "not fired", trigger.conn)
        # conn=N for a connection still to come: as a plan has it, once it has opened.
    check_reachable(FaultPlan((fault,)), replay.script)
    replay.injector.arm(fault)
    return Injection(fault, "armed", trigger.conn)


def connection_status(conn: GatewayConnection) -> dict[str, Any]:
    session = conn.session
    return {
        "id": conn.number,
        "state": conn.state.value,
        "sent_away_by": conn.sent_away_by.describe() if conn.sent_away_by else None,
        "shard": list(session.shard) if session is not None and session.shard else None,
        "session": session.session_id if session is not None else None,
        "last_seq": session.seq if session is not None else None,
        "version": conn.version,
        "encoding": str(conn.encoding),
        "compression": (conn.query[2] if conn.query is not None else None) or "none",
        "resume_url": conn.url_key is not None,
    }


def status(replay: Replay, connections: Sequence[GatewayConnection], now_ns: int) -> dict[str, Any]:
    """What ``GET /_replayer/status`` answers: the open connections, every session, the
    faults pending and fired, and the verdicts so far (``result`` null: still open)."""
    replay.judge.tick(now_ns)  # reactions whose window ran out are judged first
    verdicts = replay.judge.verdicts
    return {
        "connections_total": replay.connections,
        "connections": [connection_status(c) for c in sorted(connections, key=lambda c: c.number)],
        "sessions": [
            {
                "id": s.session_id,
                "number": s.number,
                "shard": list(s.shard) if s.shard else None,
                "last_seq": s.seq,
                "connection": s.owner.number if s.owner is not None else None,
                "resumable": s.resumable,
                "dispatches": s.dispatches,
                "ended": s.ended,
            }
            for s in replay.sessions.values()
        ],
        "faults": {
            "pending": [fault_json(f) for f in replay.injector.pending],
            "armed_reject_resume": [fault_json(f) for f in replay.rejected_resumes],
            "fired": [fault_json(f) for f in replay.injector.fired],
        },
        "verdicts": [v.to_json() for v in verdicts],
        "summary": summary(verdicts),
        "open_expectations": replay.judge.open_expectations,
    }
