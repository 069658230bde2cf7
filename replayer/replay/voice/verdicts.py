"""Voice verdicts: what the voice docs require after each voice fault, and of every
heartbeat, judged from a log of what happened (pure; times come in as ``now_ns``).

The verdicts are :class:`replayer.replay.verdicts.Verdict`\\ s, so the table, the JSON
report and the pytest plugin show them with the gateway's own. Sections cited:

* Topics > Opcodes and Status Codes > Voice Close Event Codes (what each code asks for);
* Topics > Voice Connections > Resuming Voice Connection, Buffered Resume (RESUME with the
  last seq_ack; heartbeats carry seq_ack since v8);
* Events > Gateway Events > Voice Server Update (endpoint null: disconnect and wait;
  a new endpoint or token: connect anew, "you cannot re-use the previous session");
* Topics > Voice Connections > Protocol Transitions (op 23 with the transition id).

A voice connection whose first payload is IDENTIFY starts a new session; one whose first
is RESUME resumes one. Each fault is settled by the first voice connection opened after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replayer.replay.verdicts import Result, Verdict
from replayer.replay.voice.faults import ServerUpdate, VoiceFault, VoiceFaultKind
from replayer.voice.close_codes import VOICE_CLOSE_CODES, VoiceReconnect, voice_close_rule
from replayer.voice.opcodes import VoiceOp

NS_PER_MS = 1_000_000
DOCS_CLOSE_CODES = "Topics > Opcodes and Status Codes > Voice Close Event Codes"
DOCS_RESUME = "Topics > Voice Connections > Resuming Voice Connection (Buffered Resume)"
DOCS_HEARTBEAT = "Topics > Voice Connections > Heartbeating (Example Heartbeat Payload since V8)"
DOCS_SERVER_UPDATE = (
    "Events > Gateway Events > Voice Server Update; Topics > Voice Connections > "
    "Retrieving Voice Server Information"
)
DOCS_TRANSITION = "Topics > Voice Connections > Protocol Transitions"
DOCS_AUDIO = (
    "Topics > Voice Connections > Resuming Voice Connection; Transport Encryption and Sending Voice"
)


@dataclass
class _Conn:
    number: int
    opened_ns: int
    port: int | None  # the voice face's port it came in on
    first_op: int | None = None
    first_d: dict[str, Any] = field(default_factory=dict)
    first_ns: int | None = None
    handshake_ns: int | None = None  # READY or RESUMED sent
    closed_ns: int | None = None
    closed_by_client: bool = False
    close_code: int | None = None
    heartbeats: list[tuple[int | None, int]] = field(default_factory=list)  # (seq_ack, last seq)
    version: int | None = None


@dataclass
class _Fired:
    fault: VoiceFault
    conn: int
    t_ns: int
    session: tuple[str, str] | None  # (server_id, session_id) of the connection
    last_seq: int  # the last seq sent to the connection
    token: str | None = None  # voice-server-update: the new token
    port: int | None = None  # voice-server-update new-endpoint: the new port


class VoiceJudge:
    """Told what happened on the voice face; :meth:`finish` gives the verdicts."""

    def __init__(self, window_ms: int = 15_000) -> None:
        self.window_ns = window_ms * NS_PER_MS
        self.t0_ns: int | None = None
        self.conns: dict[int, _Conn] = {}
        self.fired: list[_Fired] = []
        self.rtp_ns: list[int] = []
        self.server_updates_ns: list[int] = []
        self.transitions: list[tuple[int, int, int]] = []  # (conn, transition id, t)
        self.not_fired: list[VoiceFault] = []

    def _ms(self, t_ns: int) -> float:
        return round((t_ns - (self.t0_ns or 0)) / NS_PER_MS, 3)

    # --- observations ----------------------------------------------------------------

    def connection_opened(
        self, conn: int, now_ns: int, port: int | None, version: int | None
    ) -> None:
        if self.t0_ns is None:
            self.t0_ns = now_ns
        self.conns[conn] = _Conn(conn, now_ns, port, version=version)

    def client_payload(self, conn: int, op: int, d: Any, now_ns: int) -> None:
        c = self.conns[conn]
        if c.first_op is None and op in (VoiceOp.IDENTIFY, VoiceOp.RESUME):
            c.first_op, c.first_ns = op, now_ns
            c.first_d = d if isinstance(d, dict) else {}
        if op == VoiceOp.DAVE_TRANSITION_READY and isinstance(d, dict):
            tid = d.get("transition_id")
            if type(tid) is int:
                self.transitions.append((conn, tid, now_ns))

    def heartbeat(self, conn: int, seq_ack: int | None, last_seq: int) -> None:
        self.conns[conn].heartbeats.append((seq_ack, last_seq))

    def handshake_done(self, conn: int, now_ns: int) -> None:
        c = self.conns[conn]
        if c.handshake_ns is None:
            c.handshake_ns = now_ns

    def closed(self, conn: int, now_ns: int, *, by_client: bool, code: int | None) -> None:
        c = self.conns[conn]
        if c.closed_ns is None:
            c.closed_ns, c.closed_by_client, c.close_code = now_ns, by_client, code

    def rtp(self, now_ns: int) -> None:
        self.rtp_ns.append(now_ns)

    def server_update_sent(self, now_ns: int) -> None:
        self.server_updates_ns.append(now_ns)

    def fault_fired(self, fired: _Fired) -> None:
        self.fired.append(fired)

    def fault_not_fired(self, fault: VoiceFault) -> None:
        self.not_fired.append(fault)

    # --- verdicts --------------------------------------------------------------------

    def finish(self, now_ns: int) -> list[Verdict]:
        verdicts = [self._fault_verdict(f, now_ns) for f in self.fired]
        verdicts += [v for f in self.fired if (v := self._audio_verdict(f, now_ns)) is not None]
        for fault in self.not_fired:
            verdicts.append(
                Verdict(
                    f"voice: {fault.describe()}",
                    "the fault fires",
                    "its trigger never came in this run",
                    Result.NOT_FIRED,
                    _docs(fault),
                )
            )
        heartbeat = self._heartbeat_verdict()
        if heartbeat is not None:
            verdicts.append(heartbeat)
        return verdicts

    def _next_conn(self, after_ns: int, conn: int) -> _Conn | None:
        later = [c for c in self.conns.values() if c.number > conn and c.opened_ns >= after_ns]
        return min(later, key=lambda c: c.number) if later else None

    def _verdict(self, f: _Fired, expected: str, docs: str) -> Verdict:
        return Verdict(
            f"voice: {f.fault.describe()}",
            expected,
            docs=docs,
            t_fault_ms=self._ms(f.t_ns),
            connection=f.conn,
        )

    def _decide(
        self, v: Verdict, f: _Fired, result: Result, observed: str, at_ns: int | None
    ) -> Verdict:
        v.result, v.observed = result, observed
        if at_ns is not None:
            v.reaction_ms = round((at_ns - f.t_ns) / NS_PER_MS, 3)
        return v

    def _fault_verdict(self, f: _Fired, now_ns: int) -> Verdict:
        kind = f.fault.kind
        nxt = self._next_conn(f.t_ns, f.conn)
        waited_ms = round((now_ns - f.t_ns) / NS_PER_MS)
        if kind in (VoiceFaultKind.DAVE_TRANSITION, VoiceFaultKind.DAVE_EPOCH):
            v = self._verdict(
                f,
                f"op 23 DAVE_TRANSITION_READY with transition_id {f.fault.transition_id}",
                DOCS_TRANSITION,
            )
            for conn, tid, t in self.transitions:
                if t >= f.t_ns and tid == f.fault.transition_id:
                    return self._decide(
                        v,
                        f,
                        Result.PASS,
                        f"op 23 with transition_id {tid} on voice connection {conn}",
                        t,
                    )
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"no op 23 for transition {f.fault.transition_id} in {waited_ms} ms",
                None,
            )
        if kind is VoiceFaultKind.SERVER_UPDATE:
            return self._server_update_verdict(f, nxt, waited_ms)
        if kind is VoiceFaultKind.DROP:
            v = self._verdict(
                f,
                "a new voice connection that RESUMEs the session with the last seq_ack",
                DOCS_RESUME,
            )
            if nxt is None or nxt.first_op is None:
                return self._decide(
                    v,
                    f,
                    Result.FAIL,
                    f"no RESUME or IDENTIFY on a new voice connection in {waited_ms} ms",
                    None,
                )
            if nxt.first_op == VoiceOp.RESUME:
                return self._resume_result(v, f, nxt)
            return self._decide(
                v,
                f,
                Result.NON_STRICT,
                f"a new session (IDENTIFY on voice connection {nxt.number}) instead of a RESUME",
                nxt.first_ns,
            )
        code = f.fault.code or 1000
        rule = voice_close_rule(code)
        row = VOICE_CLOSE_CODES.get(code)
        name = f"{code} {row.name}" if row else str(code)
        if rule is VoiceReconnect.RESUME:
            v = self._verdict(
                f,
                f"after {name}: a new voice connection that RESUMEs with seq_ack {f.last_seq}",
                DOCS_CLOSE_CODES + "; " + DOCS_RESUME,
            )
            if nxt is None or nxt.first_op is None:
                return self._decide(
                    v,
                    f,
                    Result.FAIL,
                    f"no RESUME on a new voice connection in {waited_ms} ms",
                    None,
                )
            if nxt.first_op != VoiceOp.RESUME:
                return self._decide(
                    v,
                    f,
                    Result.FAIL,
                    f"IDENTIFY (a new session) on voice connection {nxt.number}, not a RESUME",
                    nxt.first_ns,
                )
            return self._resume_result(v, f, nxt)
        if rule is VoiceReconnect.NEW_SESSION:
            v = self._verdict(
                f, f"after {name}: a new voice connection with a fresh IDENTIFY", DOCS_CLOSE_CODES
            )
            if nxt is None or nxt.first_op is None:
                return self._decide(
                    v,
                    f,
                    Result.FAIL,
                    f"no IDENTIFY on a new voice connection in {waited_ms} ms",
                    None,
                )
            if nxt.first_op == VoiceOp.RESUME:
                return self._decide(
                    v,
                    f,
                    Result.FAIL,
                    f"a RESUME of the ended session on voice connection {nxt.number}",
                    nxt.first_ns,
                )
            return self._decide(
                v, f, Result.PASS, f"IDENTIFY on voice connection {nxt.number}", nxt.first_ns
            )
        if rule is VoiceReconnect.WAIT_FOR_SERVER_UPDATE:
            v = self._verdict(
                f,
                f"after {name}: no voice reconnect unless a new VOICE_SERVER_UPDATE comes",
                DOCS_CLOSE_CODES,
            )
            if nxt is None:
                return self._decide(
                    v, f, Result.PASS, f"no new voice connection in {waited_ms} ms", None
                )
            updated = any(f.t_ns <= t <= nxt.opened_ns for t in self.server_updates_ns)
            if updated:
                return self._decide(
                    v,
                    f,
                    Result.PASS,
                    f"reconnected on voice connection {nxt.number} after a new VOICE_SERVER_UPDATE",
                    nxt.opened_ns,
                )
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"voice connection {nxt.number} opened with no new VOICE_SERVER_UPDATE",
                nxt.opened_ns,
            )
        v = self._verdict(
            f,
            f"after {name}: no voice reconnect (the client must change something first)",
            DOCS_CLOSE_CODES,
        )
        if nxt is None:
            return self._decide(
                v, f, Result.PASS, f"no new voice connection in {waited_ms} ms", None
            )
        return self._decide(
            v, f, Result.FAIL, f"voice connection {nxt.number} opened", nxt.opened_ns
        )

    def _resume_result(self, v: Verdict, f: _Fired, nxt: _Conn) -> Verdict:
        d = nxt.first_d
        seq_ack = d.get("seq_ack")
        same = f.session is not None and (str(d.get("server_id")), d.get("session_id")) == f.session
        if not same:
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"a RESUME of another session ({d.get('session_id')!r}) "
                f"on voice connection {nxt.number}",
                nxt.first_ns,
            )
        if seq_ack != f.last_seq:
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"RESUME with seq_ack {seq_ack!r}, the last seq sent was {f.last_seq}",
                nxt.first_ns,
            )
        return self._decide(
            v,
            f,
            Result.PASS,
            f"RESUME with seq_ack {seq_ack} on voice connection {nxt.number}",
            nxt.first_ns,
        )

    def _server_update_verdict(self, f: _Fired, nxt: _Conn | None, waited_ms: int) -> Verdict:
        update = f.fault.update
        old = self.conns.get(f.conn)
        if update is ServerUpdate.NULL:
            v = self._verdict(
                f,
                "endpoint null: disconnect from the voice server, "
                "no reconnect until a new one is allocated",
                DOCS_SERVER_UPDATE,
            )
            if nxt is not None:
                return self._decide(
                    v,
                    f,
                    Result.FAIL,
                    f"voice connection {nxt.number} opened with no voice server allocated",
                    nxt.opened_ns,
                )
            closed_ns = old.closed_ns if old is not None else None
            if (
                old is not None
                and closed_ns is not None
                and old.closed_by_client
                and closed_ns - f.t_ns <= self.window_ns
            ):
                return self._decide(
                    v,
                    f,
                    Result.PASS,
                    f"closed voice connection {f.conn} ({old.close_code}) and waited",
                    old.closed_ns,
                )
            return self._decide(
                v,
                f,
                Result.NON_STRICT,
                f"stayed on voice connection {f.conn} ({waited_ms} ms)",
                None,
            )
        where = (
            f"the new endpoint (port {f.port})"
            if update is ServerUpdate.NEW_ENDPOINT
            else "the endpoint"
        )
        v = self._verdict(
            f,
            f"a new voice connection to {where} with a fresh IDENTIFY and the new token",
            DOCS_SERVER_UPDATE,
        )
        if nxt is None or nxt.first_op is None:
            return self._decide(
                v, f, Result.FAIL, f"no new voice connection with IDENTIFY in {waited_ms} ms", None
            )
        if update is ServerUpdate.NEW_ENDPOINT and nxt.port != f.port:
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"voice connection {nxt.number} went to port {nxt.port}, not the new endpoint",
                nxt.opened_ns,
            )
        if nxt.first_op != VoiceOp.IDENTIFY:
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"a RESUME of the previous session on voice connection {nxt.number}",
                nxt.first_ns,
            )
        if nxt.first_d.get("token") != f.token:
            return self._decide(
                v,
                f,
                Result.FAIL,
                f"IDENTIFY on voice connection {nxt.number} with the old token",
                nxt.first_ns,
            )
        return self._decide(
            v,
            f,
            Result.PASS,
            f"IDENTIFY with the new token on voice connection {nxt.number}",
            nxt.first_ns,
        )

    def _audio_verdict(self, f: _Fired, now_ns: int) -> Verdict | None:
        """After a fault that moved the client to a new voice connection, RTP again."""
        moves = f.fault.kind in (VoiceFaultKind.CLOSE, VoiceFaultKind.DROP) or (
            f.fault.kind is VoiceFaultKind.SERVER_UPDATE and f.fault.update is not ServerUpdate.NULL
        )
        if not moves or not any(t <= f.t_ns for t in self.rtp_ns):
            return None  # no audio before the fault: nothing to resume
        if f.fault.kind is VoiceFaultKind.CLOSE and voice_close_rule(f.fault.code or 1000) in (
            VoiceReconnect.STOP,
            VoiceReconnect.WAIT_FOR_SERVER_UPDATE,
        ):
            return None
        nxt = self._next_conn(f.t_ns, f.conn)
        v = Verdict(
            f"voice: audio after {f.fault.describe()}",
            "RTP packets again once the client is back on a voice connection",
            docs=DOCS_AUDIO,
            t_fault_ms=self._ms(f.t_ns),
            connection=f.conn,
        )
        if nxt is None or nxt.handshake_ns is None:
            return self._decide(v, f, Result.FAIL, "never back on a voice connection", None)
        after = [t for t in self.rtp_ns if t >= nxt.handshake_ns]
        window_ms = self.window_ns // NS_PER_MS
        if not after or after[0] - nxt.handshake_ns > self.window_ns:
            waited = round((now_ns - nxt.handshake_ns) / NS_PER_MS)
            late = (
                f", the first {round((after[0] - nxt.handshake_ns) / NS_PER_MS)} ms after"
                if after
                else ""
            )
            return self._decide(
                v, f, Result.FAIL,
                f"no RTP packet in the {window_ms} ms after voice connection {nxt.number} "
                f"was ready ({waited} ms watched{late})",
                None,
            )  # fmt: skip
        return self._decide(
            v, f, Result.PASS,
            f"{len(after)} RTP packets after voice connection {nxt.number} was ready",
            after[0],
        )  # fmt: skip

    def _heartbeat_verdict(self) -> Verdict | None:
        beats = [
            (c, b)
            for c in self.conns.values()
            if c.version is None or c.version >= 8
            for b in c.heartbeats
        ]
        if not beats:
            return None
        v = Verdict(
            "voice: heartbeats carry seq_ack (v8)",
            "every HEARTBEAT's d has seq_ack, the last seq received",
            docs=DOCS_HEARTBEAT,
        )
        for c, (seq_ack, last) in beats:
            if seq_ack is None and last > 0:
                v.result, v.observed, v.connection = (
                    Result.FAIL,
                    f"a HEARTBEAT without seq_ack on voice connection {c.number} "
                    f"(last seq sent {last})",
                    c.number,
                )
                return v
            if seq_ack is not None and seq_ack > last:
                v.result, v.observed, v.connection = (
                    Result.FAIL,
                    f"seq_ack {seq_ack} ahead of the last seq sent ({last}) "
                    f"on voice connection {c.number}",
                    c.number,
                )
                return v
        v.result, v.observed = Result.PASS, f"{len(beats)} heartbeats, each with seq_ack"
        return v


def _docs(fault: VoiceFault) -> str:
    if fault.kind is VoiceFaultKind.SERVER_UPDATE:
        return DOCS_SERVER_UPDATE
    if fault.kind in (VoiceFaultKind.DAVE_TRANSITION, VoiceFaultKind.DAVE_EPOCH):
        return DOCS_TRANSITION
    return DOCS_CLOSE_CODES


Fired = _Fired
