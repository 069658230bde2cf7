"""Verdicts: after each injected fault, watch what the client does and judge it against
the gateway docs (Events > Gateway: "Resuming", "Reconnecting", "Sending Heartbeats",
"Rate Limiting"; Topics > Opcodes and Status Codes: close codes). Pure: observations
come in with ``now_ns``; :meth:`Judge.finish` closes whatever is still open.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any

from replayer.gateway.close_codes import CloseCode, client_close_ends_session, may_reconnect
from replayer.gateway.opcodes import Opcode
from replayer.replay.faults import Fault, FaultKind

NS_PER_MS = 1_000_000
# Discord docs, Events > Gateway > Rate Limiting: 120 events per 60 seconds.
RATE_LIMIT_EVENTS = 120
RATE_LIMIT_WINDOW_NS = 60_000 * NS_PER_MS


class Expect(enum.Enum):
    RESUME = "a new connection that RESUMEs the session with the last seq received"
    RESUME_ANY = "a RESUME of the session with the last seq received"
    IDENTIFY = "a fresh IDENTIFY (the session is gone)"
    RECONNECT = "a reconnect (RESUME, or IDENTIFY)"
    REIDENTIFY = "a new connection with a fresh IDENTIFY (this close code ends the session)"
    NO_RECONNECT = "no reconnect (the close code is fatal)"
    ZOMBIE = "the client closes with a non-1000 code, then RESUMEs"
    HEARTBEAT = "a HEARTBEAT right away"
    STAY = "the connection stays up through the stall"
    BACK_OFF = "no repeat of the rate-limited request before retry_after"


@dataclass
class Verdict:
    """One judged expectation, as the table and the JSON report show it."""

    name: str
    expected: str
    observed: str = "nothing yet"
    passed: bool | None = None  # None: still open
    t_fault_ms: float | None = None
    reaction_ms: float | None = None
    connection: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "expected": self.expected,
            "observed": self.observed,
            "t_fault_ms": self.t_fault_ms,
            "reaction_ms": self.reaction_ms,
            "connection": self.connection,
            "notes": self.notes,
        }


@dataclass
class _Open:
    verdict: Verdict
    expect: Expect
    fault: Fault
    t_ns: int
    deadline_ns: int
    conn: int
    session_id: str | None
    seq: int
    op: int | None = None  # BACK_OFF: the opcode to hold back
    closed_code: int | None = None  # ZOMBIE: how the client closed
    closed: bool = False


@dataclass
class _ConnWatch:
    opened_ns: int
    heartbeats: list[int] = field(default_factory=list)
    payloads: list[int] = field(default_factory=list)
    closed_ns: int | None = None


class Judge:
    """Collects observations and turns them into verdicts."""

    def __init__(self, heartbeat_interval_ms: int, window_ms: int = 15_000) -> None:
        self.heartbeat_interval_ns = heartbeat_interval_ms * NS_PER_MS
        self.window_ns = window_ms * NS_PER_MS
        self.verdicts: list[Verdict] = []
        self._open: list[_Open] = []
        self._conns: dict[int, _ConnWatch] = {}
        self._t0_ns: int | None = None

    def _ms(self, t_ns: int) -> float:
        return round((t_ns - (self._t0_ns or 0)) / NS_PER_MS, 1)

    # --- observations ------------------------------------------------------------------

    def connection_opened(self, conn: int, now_ns: int) -> None:
        if self._t0_ns is None:
            self._t0_ns = now_ns
        self._conns[conn] = _ConnWatch(now_ns)

    def fault_injected(
        self, fault: Fault, conn: int, session_id: str | None, seq: int, now_ns: int
    ) -> None:
        """A fault just went out on ``conn``; ``seq`` is the last s the client was sent."""
        expect = _expectation(fault)
        verdict = Verdict(
            name=fault.describe(),
            expected=expect.value
            + (
                f" (session {session_id}, seq {seq})"
                if expect in (Expect.RESUME, Expect.RESUME_ANY, Expect.ZOMBIE)
                else ""
            ),
            t_fault_ms=self._ms(now_ns),
            connection=conn,
        )
        self.verdicts.append(verdict)
        window = self.window_ns
        if expect is Expect.ZOMBIE:
            window = max(window, 3 * self.heartbeat_interval_ns)
        elif expect is Expect.HEARTBEAT:
            window = 2_000 * NS_PER_MS
        elif expect is Expect.STAY:
            window = fault.duration_ms * NS_PER_MS + 1_000 * NS_PER_MS
        elif expect is Expect.BACK_OFF:
            window = int(fault.retry_after_s * 1e9)
        self._open.append(
            _Open(
                verdict,
                expect,
                fault,
                now_ns,
                now_ns + window,
                conn,
                session_id,
                seq,
                op=fault.trigger.client_op or Opcode.REQUEST_GUILD_MEMBERS,
            )
        )

    def client_payload(self, conn: int, op: int, d: Any, now_ns: int) -> None:
        watch = self._conns.get(conn)
        if watch is not None:
            watch.payloads.append(now_ns)
            if op == Opcode.HEARTBEAT:
                watch.heartbeats.append(now_ns)
        self._expire(now_ns)
        for item in list(self._open):
            if now_ns < item.t_ns:
                continue
            self._judge_payload(item, conn, op, d if isinstance(d, dict) else {}, now_ns)

    def client_closed(self, conn: int, code: int | None, now_ns: int) -> None:
        watch = self._conns.get(conn)
        if watch is not None:
            watch.closed_ns = now_ns
        self._expire(now_ns)
        for item in list(self._open):
            if item.conn != conn:
                continue
            item.closed = True
            item.closed_code = code
            if item.expect is Expect.STAY:
                self._decide(item, False, f"the client closed ({code}) during the stall", now_ns)
            elif (
                item.expect is Expect.ZOMBIE
                and code is not None
                and client_close_ends_session(code)
            ):
                self._decide(
                    item,
                    False,
                    f"closed with {code}, which ends the session: it cannot resume",
                    now_ns,
                )

    def connection_ended(self, conn: int, now_ns: int) -> None:
        """The server closed or dropped ``conn``: its heartbeats are judged up to here.
        (Added with a fix: nothing about the client's own reaction is judged here.)"""
        watch = self._conns.get(conn)
        if watch is not None and watch.closed_ns is None:
            watch.closed_ns = now_ns
        self._expire(now_ns)

    def tick(self, now_ns: int) -> None:
        self._expire(now_ns)

    @property
    def open_expectations(self) -> int:
        """Faults whose reaction is still awaited."""
        return len(self._open)

    def finish(self, now_ns: int) -> list[Verdict]:
        """Close every open expectation and add the whole-run checks."""
        self._expire(now_ns)
        for item in list(self._open):
            self._timeout(item, now_ns, ended=True)
        self._heartbeat_verdict(now_ns)
        self._rate_verdict()
        return self.verdicts

    # --- judging -----------------------------------------------------------------------

    def _decide(self, item: _Open, passed: bool, observed: str, now_ns: int) -> None:
        item.verdict.passed = passed
        item.verdict.observed = observed
        item.verdict.reaction_ms = round((now_ns - item.t_ns) / NS_PER_MS, 1)
        if item in self._open:
            self._open.remove(item)

    def _expire(self, now_ns: int) -> None:
        for item in list(self._open):
            if now_ns >= item.deadline_ns:
                self._timeout(item, now_ns, ended=False)

    def _timeout(self, item: _Open, now_ns: int, *, ended: bool) -> None:
        window_s = (item.deadline_ns - item.t_ns) / 1e9
        early = ended and now_ns < item.deadline_ns
        if item.expect is Expect.NO_RECONNECT:
            watched_s = (min(now_ns, item.deadline_ns) - item.t_ns) / 1e9
            when = (
                f"in the {watched_s:.1f} s until the replay ended"
                if early
                else f"within {window_s:.1f} s"
            )
            self._decide(item, True, f"no reconnect {when}", min(now_ns, item.deadline_ns))
        elif item.expect is Expect.STAY:
            self._decide(item, True, "stayed connected", item.deadline_ns)
        elif item.expect is Expect.BACK_OFF:
            self._decide(
                item, True, f"no repeat within {item.fault.retry_after_s:g} s", item.deadline_ns
            )
        else:
            when = (
                "before the replay ended"
                if ended and now_ns < item.deadline_ns
                else f"within {window_s:.1f} s"
            )
            self._decide(
                item,
                False,
                f"nothing {when}" + (" (the client closed)" if item.closed else ""),
                now_ns,
            )
            item.verdict.reaction_ms = None

    def _judge_payload(
        self, item: _Open, conn: int, op: int, d: dict[str, Any], now_ns: int
    ) -> None:
        expect = item.expect
        new_conn = conn != item.conn
        if expect is Expect.HEARTBEAT:
            if conn == item.conn and op == Opcode.HEARTBEAT:
                self._decide(item, True, "HEARTBEAT sent", now_ns)
            return
        if expect is Expect.BACK_OFF:
            if op == item.op:
                self._decide(item, False, f"sent op {op} again before retry_after", now_ns)
            return
        if expect is Expect.STAY or op not in (Opcode.IDENTIFY, Opcode.RESUME):
            return
        if expect is Expect.NO_RECONNECT:
            self._decide(
                item, False, f"reconnected and sent {Opcode(op).name} after a fatal close", now_ns
            )
            return
        if expect is Expect.IDENTIFY:
            if op == Opcode.IDENTIFY:
                self._decide(
                    item, True, "IDENTIFY" + (" on a new connection" if new_conn else ""), now_ns
                )
            else:
                self._decide(
                    item, False, f"RESUMEd session {d.get('session_id')!r}, which is gone", now_ns
                )
            return
        if expect in (Expect.RECONNECT, Expect.REIDENTIFY):
            if not new_conn:
                return
            needs_identify = item.fault.code is not None and _needs_new_session(item.fault.code)
            if needs_identify and op == Opcode.RESUME:
                self._decide(
                    item, False, f"RESUMEd after {item.fault.code}, which ends the session", now_ns
                )
            else:
                self._decide(item, True, f"{Opcode(op).name} on a new connection", now_ns)
            return
        # RESUME, RESUME_ANY, ZOMBIE
        if expect is Expect.RESUME and not new_conn:
            return
        if expect is Expect.ZOMBIE:
            if not new_conn:
                return
            if not item.closed:
                item.verdict.notes.append(
                    "the zombie connection was not closed before reconnecting"
                )
        if op == Opcode.IDENTIFY:
            self._decide(
                item,
                False,
                "IDENTIFY instead of RESUME: the session and missed events are lost",
                now_ns,
            )
            return
        session_id, seq = d.get("session_id"), d.get("seq")
        if session_id != item.session_id:
            self._decide(
                item,
                False,
                f"RESUME with session_id {session_id!r}, expected {item.session_id!r}",
                now_ns,
            )
        elif seq != item.seq:
            self._decide(
                item, False, f"RESUME with seq {seq}, but the last seq sent was {item.seq}", now_ns
            )
        else:
            how = (
                f"closed with {item.closed_code}, then "
                if expect is Expect.ZOMBIE and item.closed
                else ""
            )
            self._decide(
                item,
                True,
                f"{how}RESUME (session {session_id}, seq {seq})"
                + (" on a new connection" if new_conn else " on the same connection"),
                now_ns,
            )

    def _heartbeat_verdict(self, now_ns: int) -> None:
        """Gateway > Sending Heartbeats: one every heartbeat_interval (the first after
        interval * jitter). Allow 25 % and one second of slack for scheduling."""
        limit = int(self.heartbeat_interval_ns * 1.25) + 1_000 * NS_PER_MS
        worst = 0
        where = ""
        judged = 0
        for conn, watch in self._conns.items():
            end = watch.closed_ns if watch.closed_ns is not None else now_ns
            marks = [watch.opened_ns, *watch.heartbeats, end]
            if end - watch.opened_ns < limit and not watch.heartbeats:
                continue  # too short-lived to judge
            judged += 1
            for a, b in itertools.pairwise(marks):
                if b - a > worst:
                    worst, where = b - a, f"connection {conn}"
        if not judged:
            return
        interval_s = self.heartbeat_interval_ns / 1e9
        passed = worst <= limit
        self.verdicts.append(
            Verdict(
                name="heartbeats on schedule",
                expected=f"a HEARTBEAT at least every {interval_s:g} s (+25 %)",
                observed=f"longest gap {worst / 1e9:.1f} s ({where})",
                passed=passed,
            )
        )

    def _rate_verdict(self) -> None:
        worst = 0
        where = ""
        for conn, watch in self._conns.items():
            times = watch.payloads
            start = 0
            for end, t in enumerate(times):
                while t - times[start] >= RATE_LIMIT_WINDOW_NS:
                    start += 1
                if end - start + 1 > worst:
                    worst, where = end - start + 1, f"connection {conn}"
        if not self._conns:
            return
        self.verdicts.append(
            Verdict(
                name="payload rate",
                expected=f"at most {RATE_LIMIT_EVENTS} payloads per 60 s per connection",
                observed=f"at most {worst} in any 60 s" + (f" ({where})" if where else ""),
                passed=worst <= RATE_LIMIT_EVENTS,
            )
        )


def _needs_new_session(code: int) -> bool:
    try:
        return CloseCode(code).needs_new_session
    except ValueError:
        return False


def _expectation(fault: Fault) -> Expect:
    match fault.kind:
        case FaultKind.RECONNECT | FaultKind.DROP:
            return Expect.RESUME
        case FaultKind.INVALID_SESSION:
            return Expect.RESUME_ANY if fault.resumable else Expect.IDENTIFY
        case FaultKind.CLOSE:
            code = fault.code or CloseCode.UNKNOWN_ERROR
            if not may_reconnect(code):
                return Expect.NO_RECONNECT
            if _needs_new_session(code):
                return Expect.REIDENTIFY
            if client_close_ends_session(code):
                return Expect.RECONNECT
            return Expect.RESUME
        case FaultKind.ZOMBIE:
            return Expect.ZOMBIE
        case FaultKind.HEARTBEAT:
            return Expect.HEARTBEAT
        case FaultKind.STALL:
            return Expect.STAY
        case FaultKind.RATE_LIMITED:
            return Expect.BACK_OFF
        case FaultKind.REJECT_RESUME:
            return Expect.IDENTIFY
    raise AssertionError(fault.kind)
