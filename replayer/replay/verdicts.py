"""Verdicts: after each fault, watch what the client does and judge it against the gateway
docs; over the whole run, judge the standing rules (heartbeats, payload rate, resume URLs).
Pure: observations come in with ``now_ns``; :meth:`Judge.finish` closes what is still open.

Every verdict is one of four results, as in Autobahn|Testsuite: PASS; NON-STRICT (a SHOULD
of the docs not met, or a documented timing exceeded); FAIL (a MUST not met); NOT FIRED
(a planned fault whose trigger never came: never a pass). Each names the docs section it
checks.

What a client is expected to do is taken from what it had received when it reacted: the
session its connection was in and the last ``s`` actually sent on that connection, not a
snapshot taken when the fault was armed (dispatches go on during a zombie; discord.py
heartbeats before it IDENTIFYs).

Overlapping faults: a reaction (an IDENTIFY or a RESUME) settles one fault only, the
oldest open one it answers (a RESUME the fault whose connection was in the session it
names, an IDENTIFY the fault of its shard, else the oldest). A second fault that would
send the client away from a connection already told to go is not carried out: it ends
NOT FIRED, "superseded" (see ``GatewayConnection._inject``).
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from replayer.gateway.close_codes import CloseCode, client_close_ends_session, may_reconnect
from replayer.gateway.opcodes import Opcode
from replayer.replay.faults import Fault, FaultKind, Phase

NS_PER_MS = 1_000_000
# Discord docs, Events > Gateway > Rate Limiting: 120 events per 60 seconds.
RATE_LIMIT_EVENTS = 120
RATE_LIMIT_WINDOW_NS = 60_000 * NS_PER_MS

# Docs sections, as the Discord developer docs title them (discord/discord-api-docs).
DOCS_RECONNECT = "Events > Gateway Events > Reconnect; Events > Gateway > Resuming"
DOCS_INVALID_SESSION = "Events > Gateway Events > Invalid Session"
DOCS_CLOSE_CODES = "Topics > Opcodes and Status Codes > Gateway Close Event Codes"
DOCS_DISCONNECT = "Events > Gateway > Resuming (Handling a Disconnect)"
DOCS_ZOMBIE = "Events > Gateway > Sending Heartbeats (zombied or failed connections)"
DOCS_HEARTBEAT_REQUEST = "Events > Gateway > Sending Heartbeats (Heartbeat Requests)"
DOCS_HEARTBEAT_INTERVAL = "Events > Gateway > Sending Heartbeats (Heartbeat Interval)"
DOCS_RATE_LIMIT = "Events > Gateway > Rate Limiting"
DOCS_RATE_LIMITED = "Events > Gateway Events > Rate Limited"
DOCS_RESUME_URL = "Events > Gateway > Resuming (Preparing to Resume); Change Log 2022-08-09"
DOCS_RESUME_QUERY = "Events > Gateway > Resuming (Preparing to Resume: same query parameters)"
DOCS_CACHED_URL = "Events > Gateway > Connection Lifecycle (reconnect to the cached gateway URL)"
DOCS_STALL = "Events > Gateway > Connection Lifecycle"
DOCS_COMPRESSION = "Events > Gateway > Encoding and Compression (Transport Compression)"
DOCS_BACKOFF = "Events > Gateway > Identifying (Session Start Limit); Connection Lifecycle"
DOCS_HELLO = "Events > Gateway Events > Reconnect (may come before or in place of Hello)"
DOCS_WITHHOLD = "Events > Gateway > Connection Lifecycle (Hello, Ready)"


class Result(enum.StrEnum):
    PASS = "PASS"
    NON_STRICT = "NON-STRICT"  # a SHOULD not met, or a documented timing exceeded
    FAIL = "FAIL"  # a MUST not met
    NOT_FIRED = "NOT FIRED"  # the fault never happened: nothing was judged

    def ok(self, strict: bool = False) -> bool:
        """Whether this result lets a run pass (``strict``: NON-STRICT does not)."""
        return self is Result.PASS or (self is Result.NON_STRICT and not strict)


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
    COPE = "the client reads it and stays: its next HEARTBEAT carries this s or later"
    DEAF = "a RESUME once the client notices no dispatch comes (or it stays: NON-STRICT)"
    RETRY = "another connection attempt"


# Events > Gateway Events > Invalid Session: wait a random 1-5 s before a fresh IDENTIFY.
INVALID_SESSION_WAIT_NS = 1_000 * NS_PER_MS
# Reconnect back-off: failed connection attempts (no READY or RESUMED on them) may come at
# most this many in any STORM_WINDOW, and a run of them should wait longer and longer.
STORM_ATTEMPTS = 5
STORM_WINDOW_NS = 5_000 * NS_PER_MS
BACKOFF_RUN = 3  # failed attempts in a row before the delays are judged
BACKOFF_GROWTH_NS = 100 * NS_PER_MS
FALLBACK_AFTER = 3  # refused resume-URL attempts in a row before the gateway URL is due

# Expectations that an IDENTIFY or a RESUME settles: one reaction, one fault.
_RECONNECTS = frozenset(
    {
        Expect.RESUME,
        Expect.RESUME_ANY,
        Expect.IDENTIFY,
        Expect.RECONNECT,
        Expect.REIDENTIFY,
        Expect.NO_RECONNECT,
        Expect.ZOMBIE,
        Expect.DEAF,
    }
)


@dataclass
class Verdict:
    """One judged expectation, as the table and the JSON report show it."""

    name: str
    expected: str
    observed: str = "nothing yet"
    result: Result | None = None  # None: still open
    docs: str = ""
    t_fault_ms: float | None = None
    reaction_ms: float | None = None
    connection: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        """PASS or NON-STRICT; None while open. ``result`` tells them apart."""
        return None if self.result is None else self.result.ok()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "result": str(self.result) if self.result is not None else None,
            "passed": bool(self.passed),
            "docs": self.docs,
            "expected": self.expected,
            "observed": self.observed,
            "t_fault_ms": self.t_fault_ms,
            "reaction_ms": self.reaction_ms,
            "connection": self.connection,
            "notes": self.notes,
        }


def all_ok(verdicts: list[Verdict], strict: bool = False) -> bool:
    """Whether a run passes: no FAIL, no NOT FIRED (``strict``: no NON-STRICT either)."""
    return all(v.result is not None and v.result.ok(strict) for v in verdicts)


def summary(verdicts: list[Verdict]) -> str:
    """``3 passed, 1 non-strict, 0 failed, 1 not fired``."""
    counts = {r: sum(1 for v in verdicts if v.result is r) for r in Result}
    return (
        f"{counts[Result.PASS]} passed, {counts[Result.NON_STRICT]} non-strict, "
        f"{counts[Result.FAIL]} failed, {counts[Result.NOT_FIRED]} not fired"
    )


@dataclass
class _Open:
    verdict: Verdict
    expect: Expect
    fault: Fault
    t_ns: int
    deadline_ns: int
    conn: int
    newer_than: int = 0  # a reaction on another connection must be on a later one
    s: int | None = None  # COPE: the s of the dispatch sent in pieces
    op: int | None = None  # BACK_OFF: the opcode to hold back
    closed_code: int | None = None  # ZOMBIE: how the client closed
    closed: bool = False


@dataclass
class _ConnWatch:
    opened_ns: int
    url_key: int | None = None  # None: the gateway URL; k: the resume URL of session k
    query: tuple[object, ...] | None = None  # (v, encoding, compress) of its URL
    session_id: str | None = None  # the session it is in (IDENTIFY or RESUME)
    shard: object = None
    last_s: int = 0  # the last s sent on this connection
    handshaken: bool = False  # got READY or RESUMED
    # Bounded whatever the client sends: the heartbeat schedule as its longest gap so
    # far, the payload rate as the payloads of the last 60 s (freed once it closes).
    heartbeats: int = 0
    last_heartbeat_ns: int | None = None  # None: none yet (gaps count from opened_ns)
    worst_gap_ns: int = 0
    recent_payloads: deque[int] = field(default_factory=deque)
    worst_rate: int = 0
    closed_ns: int | None = None

    def payload(self, op: int, now_ns: int) -> None:
        window = self.recent_payloads
        window.append(now_ns)
        while now_ns - window[0] >= RATE_LIMIT_WINDOW_NS:
            window.popleft()
        self.worst_rate = max(self.worst_rate, len(window))
        if op == Opcode.HEARTBEAT:
            since = self.opened_ns if self.last_heartbeat_ns is None else self.last_heartbeat_ns
            self.worst_gap_ns = max(self.worst_gap_ns, now_ns - since)
            self.last_heartbeat_ns = now_ns
            self.heartbeats += 1

    def closed(self, now_ns: int) -> None:
        if self.closed_ns is None:
            self.closed_ns = now_ns
        self.recent_payloads = deque()


@dataclass
class _SessionInfo:
    url_key: int  # the k of its resume URL
    query: tuple[object, ...] | None  # of the connection that IDENTIFYed it


@dataclass
class _UrlRule:
    """A standing rule over every connection that did what it judges."""

    name: str
    expected: str
    docs: str
    breach: Result
    judged: int = 0
    breaches: list[str] = field(default_factory=list)


class Judge:
    """Collects observations and turns them into verdicts."""

    def __init__(self, heartbeat_interval_ms: int, window_ms: int = 15_000) -> None:
        self.heartbeat_interval_ns = heartbeat_interval_ms * NS_PER_MS
        self.window_ns = window_ms * NS_PER_MS
        self.verdicts: list[Verdict] = []
        self._open: list[_Open] = []
        self._conns: dict[int, _ConnWatch] = {}
        self._sessions: dict[str, _SessionInfo] = {}
        self._t0_ns: int | None = None
        self._refused: list[int] = []  # connection attempts refused before the WebSocket
        self._refused_resume: list[int] = []  # ... of them, those on a resume URL
        self._resume_url = _UrlRule(
            "RESUMEs on resume_gateway_url",
            "every RESUME on the resume_gateway_url READY gave its session",
            DOCS_RESUME_URL,
            Result.NON_STRICT,
        )
        self._resume_query = _UrlRule(
            "RESUMEs keep the query",
            "every resumed connection with the v, encoding and compress of the session's first",
            DOCS_RESUME_QUERY,
            Result.FAIL,
        )
        self._identify_url = _UrlRule(
            "new sessions on the gateway URL",
            "every IDENTIFY on the cached gateway URL, not on a resume_gateway_url",
            DOCS_CACHED_URL,
            Result.NON_STRICT,
        )

    @property
    def t0_ns(self) -> int | None:
        """When the first connection (or refused attempt) came: the origin of every
        verdict's ``t_fault_ms``; None before any."""
        return self._t0_ns

    def _ms(self, t_ns: int) -> float:
        return round((t_ns - (self._t0_ns or 0)) / NS_PER_MS, 1)

    # --- observations ------------------------------------------------------------------

    def connection_opened(
        self,
        conn: int,
        now_ns: int,
        *,
        url_key: int | None = None,
        query: tuple[object, ...] | None = None,
    ) -> None:
        """Connection ``conn`` opened, on the gateway URL (``url_key`` None) or on the
        resume URL of session number ``url_key``; ``query`` is its (v, encoding, compress)."""
        if self._t0_ns is None:
            self._t0_ns = now_ns
        self._retried(now_ns)
        self._conns[conn] = _ConnWatch(now_ns, url_key, query)

    def attempt_refused(self, now_ns: int, *, resume_url: bool = False) -> None:
        """A connection attempt the server refused before it became a WebSocket (a
        transport fault): a failed attempt for the back-off rule; on a resume URL, a
        failed resume for the fall-back rule."""
        if self._t0_ns is None:
            self._t0_ns = now_ns
        self._retried(now_ns)
        self._refused.append(now_ns)
        if resume_url:
            self._refused_resume.append(now_ns)

    def _retried(self, now_ns: int) -> None:
        """A connection attempt: the reaction to refused ones before it."""
        for item in list(self._open):
            if item.expect is Expect.RETRY and now_ns > item.t_ns:
                seconds = (now_ns - item.t_ns) / 1e9
                self._decide(item, Result.PASS, f"tried again after {seconds:.1f} s", now_ns)

    def session_started(
        self, conn: int, session_id: str, url_key: int, shard: object = None
    ) -> None:
        """``conn`` IDENTIFYed and got session ``session_id`` (resume URL number ``url_key``)."""
        watch = self._conns.get(conn)
        if watch is None:
            return
        watch.session_id, watch.shard, watch.last_s = session_id, shard, 0
        watch.handshaken = True
        self._sessions[session_id] = _SessionInfo(url_key, watch.query)
        rule = self._identify_url
        rule.judged += 1
        if watch.url_key is not None:
            rule.breaches.append(f"connection {conn} IDENTIFYed on a resume_gateway_url")

    def session_resumed(self, conn: int, session_id: str, seq: int) -> None:
        """``conn`` RESUMEd ``session_id`` from ``seq`` (the server accepted it)."""
        watch = self._conns.get(conn)
        info = self._sessions.get(session_id)
        if watch is None or info is None:
            return
        watch.session_id, watch.last_s = session_id, seq
        watch.handshaken = True
        self._resume_url.judged += 1
        if watch.url_key != info.url_key:
            where = "the gateway URL" if watch.url_key is None else "another session's resume URL"
            self._resume_url.breaches.append(f"connection {conn} RESUMEd on {where}")
        self._resume_query.judged += 1
        if info.query is not None and watch.query is not None and watch.query != info.query:
            self._resume_query.breaches.append(
                f"connection {conn} RESUMEd with v/encoding/compress {_query(watch.query)}, "
                f"the session began with {_query(info.query)}"
            )

    def resume_attempted(self, conn: int, session_id: str, seq: int) -> None:
        """``conn`` sent a RESUME of a session the server knows (before it is answered)."""
        watch = self._conns.get(conn)
        if watch is not None:
            watch.session_id, watch.last_s = session_id, seq

    def dispatched(self, conn: int, s: int) -> None:
        """A dispatch with sequence number ``s`` went out on ``conn``."""
        watch = self._conns.get(conn)
        if watch is not None:
            watch.last_s = s

    def fault_injected(self, fault: Fault, conn: int, now_ns: int, s: int | None = None) -> None:
        """A fault just went out on ``conn`` (0: a refused connection attempt); ``s``:
        the dispatch it sent in pieces (fragment, split)."""
        expect = _expectation(fault)
        expected = expect.value
        if fault.kind is FaultKind.LATENCY:
            expected = "the connection stays up through the latency (ACKs come late)"
        watch = self._conns.get(conn)
        if watch is not None and expect in (Expect.RESUME, Expect.RESUME_ANY, Expect.ZOMBIE):
            # What the connection had so far; settled when the client reacts.
            expected += f" (session {watch.session_id}, seq {watch.last_s})"
        verdict = Verdict(
            name=fault.describe(),
            expected=expected,
            docs=_docs(fault),
            t_fault_ms=self._ms(now_ns),
            connection=conn,
        )
        self.verdicts.append(verdict)
        window = self.window_ns
        if expect is Expect.ZOMBIE:
            window = max(window, 3 * self.heartbeat_interval_ns)
        elif expect is Expect.HEARTBEAT:
            window = 2_000 * NS_PER_MS
        elif expect is Expect.STAY and fault.kind is FaultKind.LATENCY:
            window = max(window, 2 * self.heartbeat_interval_ns)
        elif expect is Expect.STAY:
            window = fault.duration_ms * NS_PER_MS + 1_000 * NS_PER_MS
        elif expect is Expect.BACK_OFF:
            window = int(fault.retry_after_s * 1e9)
        elif expect is Expect.COPE:
            window = max(window, 2 * self.heartbeat_interval_ns)
        elif expect is Expect.DEAF:
            window = max(window, 3 * self.heartbeat_interval_ns)
        self._open.append(
            _Open(
                verdict,
                expect,
                fault,
                now_ns,
                now_ns + window,
                conn,
                newer_than=max(self._conns, default=0),
                s=s,
                op=fault.trigger.client_op or Opcode.REQUEST_GUILD_MEMBERS,
            )
        )

    def not_fired(self, fault: Fault, why: str) -> None:
        """A planned fault that never happened: a verdict of its own, never a pass."""
        self.verdicts.append(
            Verdict(
                name=fault.describe(),
                expected=_expectation(fault).value,
                observed=why,
                result=Result.NOT_FIRED,
                docs=_docs(fault),
            )
        )

    def client_payload(self, conn: int, op: int, d: Any, now_ns: int) -> None:
        watch = self._conns.get(conn)
        if watch is not None:
            watch.payload(op, now_ns)
        self._expire(now_ns)
        data = d if isinstance(d, dict) else {}
        if op in (Opcode.IDENTIFY, Opcode.RESUME):
            for item in self._answered_by(op, data):
                if now_ns >= item.t_ns and self._judge_reconnect(item, conn, op, data, now_ns):
                    break  # one reaction settles one fault
            return
        for item in list(self._open):
            if now_ns >= item.t_ns and item.expect not in _RECONNECTS:
                self._judge_other(item, conn, op, d, now_ns)

    def client_closed(self, conn: int, code: int | None, now_ns: int) -> None:
        watch = self._conns.get(conn)
        if watch is not None:
            watch.closed_ns = now_ns  # the client's own close is the end, whenever it comes
            watch.closed(now_ns)
        self._expire(now_ns)
        for item in list(self._open):
            if item.conn != conn:
                continue
            item.closed = True
            item.closed_code = code
            if item.expect is Expect.COPE:
                self._decide(
                    item,
                    Result.FAIL,
                    f"the client closed ({code}) after the dispatch in pieces: it could not "
                    "read it",
                    now_ns,
                )
                continue
            if item.expect is Expect.STAY:
                if item.fault.duration_ms * NS_PER_MS <= self.heartbeat_interval_ns:
                    self._decide(
                        item, Result.FAIL, f"the client closed ({code}) during the stall", now_ns
                    )
                    continue
                # The stall held an ACK back past a heartbeat: to the client it is a zombie
                # connection, and closing it, then resuming, is right too.
                item.expect = Expect.ZOMBIE
                item.verdict.expected = f"{Expect.STAY.value}, or {Expect.ZOMBIE.value}"
                item.deadline_ns = max(item.deadline_ns, now_ns + self.window_ns)
                if client_close_ends_session(code):
                    self._decide(
                        item,
                        Result.FAIL,
                        f"closed with {code}, which ends the session: it cannot resume",
                        now_ns,
                    )
            elif (
                item.expect is Expect.ZOMBIE
                and code is not None
                and client_close_ends_session(code)
            ):
                self._decide(
                    item,
                    Result.FAIL,
                    f"closed with {code}, which ends the session: it cannot resume",
                    now_ns,
                )

    def stayed_after_reconnect(self, conn: int, now_ns: int) -> None:
        """The server closed ``conn`` because the client stayed on it after op 7: what
        it does next is no reaction to the op 7 (Gateway Events > Reconnect)."""
        self._expire(now_ns)
        for item in list(self._open):
            if item.conn == conn and item.fault.kind is FaultKind.RECONNECT:
                waited_s = (now_ns - item.t_ns) / 1e9
                self._decide(
                    item,
                    Result.FAIL,
                    f"stayed on the connection: the server closed it after {waited_s:.1f} s",
                    now_ns,
                )

    def connection_ended(self, conn: int, now_ns: int) -> None:
        """The server closed or dropped ``conn``: its heartbeats are judged up to here."""
        watch = self._conns.get(conn)
        if watch is not None:
            watch.closed(now_ns)
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
        self._backoff_verdict()
        self._fallback_verdict()
        for rule in (self._resume_url, self._resume_query, self._identify_url):
            if rule.judged:
                self.verdicts.append(
                    Verdict(
                        name=rule.name,
                        expected=rule.expected,
                        observed=(
                            "; ".join(rule.breaches)
                            if rule.breaches
                            else f"{rule.judged} of {rule.judged} did"
                        ),
                        result=rule.breach if rule.breaches else Result.PASS,
                        docs=rule.docs,
                    )
                )
        return self.verdicts

    # --- judging -----------------------------------------------------------------------

    def _decide(self, item: _Open, result: Result, observed: str, now_ns: int) -> None:
        item.verdict.result = result
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
            self._decide(item, Result.PASS, f"no reconnect {when}", min(now_ns, item.deadline_ns))
        elif item.expect is Expect.STAY:
            self._decide(item, Result.PASS, "stayed connected", item.deadline_ns)
        elif item.expect is Expect.BACK_OFF:
            self._decide(
                item,
                Result.PASS,
                f"no repeat within {item.fault.retry_after_s:g} s",
                item.deadline_ns,
            )
        elif item.fault.kind in (FaultKind.WITHHOLD, FaultKind.BLACKHOLE) and not item.closed:
            # The docs set no timeout for HELLO or READY: waiting forever is not a MUST
            # broken, but a client stuck there (discord.js#9275) should give up and retry.
            self._decide(
                item,
                Result.NON_STRICT,
                f"still waiting after {window_s:.1f} s: never gave up and reconnected",
                item.deadline_ns,
            )
            item.verdict.reaction_ms = None
        elif item.expect is Expect.DEAF and not item.closed:
            self._decide(
                item,
                Result.NON_STRICT,
                f"stayed {window_s:.1f} s on a connection that sent no dispatch",
                item.deadline_ns,
            )
            item.verdict.reaction_ms = None
        else:
            when = "before the replay ended" if early else f"within {window_s:.1f} s"
            self._decide(
                item,
                Result.FAIL,
                f"nothing {when}" + (" (the client closed)" if item.closed else ""),
                now_ns,
            )
            item.verdict.reaction_ms = None

    def _answered_by(self, op: int, d: dict[str, Any]) -> list[_Open]:
        """The open reconnect faults an IDENTIFY or RESUME may answer, best match first:
        for a RESUME those whose connection was in the session it names, for an IDENTIFY
        those of its shard; then the rest, oldest first."""
        items = [item for item in self._open if item.expect in _RECONNECTS]

        def matches(item: _Open) -> bool:
            watch = self._conns.get(item.conn)
            if watch is None:
                return False
            if op == Opcode.RESUME:
                return watch.session_id is not None and watch.session_id == d.get("session_id")
            return watch.shard is not None and watch.shard == d.get("shard")

        return sorted(items, key=lambda item: not matches(item))

    def _judge_other(self, item: _Open, conn: int, op: int, d: Any, now_ns: int) -> None:
        if item.expect is Expect.COPE:
            read = type(d) is int and item.s is not None and d >= item.s
            if conn == item.conn and op == Opcode.HEARTBEAT and read:
                self._decide(item, Result.PASS, f"read it: HEARTBEAT with s={d}", now_ns)
        elif item.expect is Expect.HEARTBEAT:
            if conn == item.conn and op == Opcode.HEARTBEAT:
                self._decide(item, Result.PASS, "HEARTBEAT sent", now_ns)
        elif item.expect is Expect.BACK_OFF and op == item.op:
            self._decide(item, Result.FAIL, f"sent op {op} again before retry_after", now_ns)

    def _judge_reconnect(
        self, item: _Open, conn: int, op: int, d: dict[str, Any], now_ns: int
    ) -> bool:
        """Judge an IDENTIFY or RESUME against ``item``; True if it settled it."""
        expect = item.expect
        new_conn = conn != item.conn
        if new_conn and conn <= item.newer_than:
            return False  # that connection was open before the fault: not a reaction to it
        name = Opcode(op).name
        if expect is Expect.NO_RECONNECT:
            self._decide(
                item, Result.FAIL, f"reconnected and sent {name} after a fatal close", now_ns
            )
            return True
        if expect is Expect.IDENTIFY:
            if op == Opcode.IDENTIFY:
                on = " on a new connection" if new_conn else ""
                waited_ns = now_ns - item.t_ns
                if item.fault.kind in (FaultKind.INVALID_SESSION, FaultKind.REJECT_RESUME) and (
                    waited_ns < INVALID_SESSION_WAIT_NS
                ):
                    self._decide(
                        item,
                        Result.NON_STRICT,
                        f"IDENTIFY{on} {waited_ns / 1e9:.1f} s after op 9; the docs ask for "
                        "a random 1-5 s wait first",
                        now_ns,
                    )
                else:
                    self._decide(item, Result.PASS, f"IDENTIFY{on}", now_ns)
            else:
                self._decide(
                    item,
                    Result.FAIL,
                    f"RESUMEd session {d.get('session_id')!r}, which is gone",
                    now_ns,
                )
            return True
        if expect in (Expect.RECONNECT, Expect.REIDENTIFY):
            if not new_conn:
                return False
            if expect is Expect.REIDENTIFY and op == Opcode.RESUME:
                self._decide(
                    item,
                    Result.FAIL,
                    f"RESUMEd after {item.fault.code}, which ends the session",
                    now_ns,
                )
            else:
                self._decide(item, Result.PASS, f"{name} on a new connection", now_ns)
            return True
        # RESUME, RESUME_ANY, ZOMBIE, DEAF: the session and last seq of the connection left.
        if expect in (Expect.RESUME, Expect.ZOMBIE, Expect.DEAF) and not new_conn:
            return False
        watch = self._conns.get(item.conn)
        session_id = watch.session_id if watch is not None else None
        seq = watch.last_s if watch is not None else 0
        item.verdict.expected = f"{expect.value} (session {session_id}, seq {seq})"
        if op == Opcode.IDENTIFY:
            self._decide(
                item,
                Result.FAIL,
                "IDENTIFY instead of RESUME: the session and missed events are lost",
                now_ns,
            )
            return True
        given_session, given_seq = d.get("session_id"), d.get("seq")
        if given_session != session_id:
            self._decide(
                item,
                Result.FAIL,
                f"RESUME with session_id {given_session!r}, expected {session_id!r}",
                now_ns,
            )
            return True
        if given_seq != seq:
            self._decide(
                item,
                Result.FAIL,
                f"RESUME with seq {given_seq}, but the last seq sent was {seq}",
                now_ns,
            )
            return True
        on = " on a new connection" if new_conn else " on the same connection"
        resumed = f"RESUME (session {given_session}, seq {given_seq}){on}"
        if expect is Expect.ZOMBIE and not item.closed:
            # The docs: close the zombied connection with a non-1000/1001 code, then resume.
            self._decide(
                item,
                Result.NON_STRICT,
                f"{resumed}, but the zombie connection was left open",
                now_ns,
            )
            return True
        how = f"closed with {item.closed_code}, then " if expect is Expect.ZOMBIE else ""
        self._decide(item, Result.PASS, how + resumed, now_ns)
        return True

    def _heartbeat_verdict(self, now_ns: int) -> None:
        """Gateway > Sending Heartbeats: one every heartbeat_interval (the first after
        interval * jitter). Allow 25 % and one second of slack for scheduling."""
        limit = int(self.heartbeat_interval_ns * 1.25) + 1_000 * NS_PER_MS
        worst = 0
        where = ""
        judged = 0
        for conn, watch in self._conns.items():
            end = watch.closed_ns if watch.closed_ns is not None else now_ns
            if end - watch.opened_ns < limit and not watch.heartbeats:
                continue  # too short-lived to judge
            judged += 1
            last = watch.opened_ns if watch.last_heartbeat_ns is None else watch.last_heartbeat_ns
            gap = max(watch.worst_gap_ns, end - last)
            if gap > worst:
                worst, where = gap, f"connection {conn}"
        if not judged:
            return
        interval_s = self.heartbeat_interval_ns / 1e9
        self.verdicts.append(
            Verdict(
                name="heartbeats on schedule",
                expected=f"a HEARTBEAT at least every {interval_s:g} s (+25 %)",
                observed=f"longest gap {worst / 1e9:.1f} s ({where})",
                result=Result.PASS if worst <= limit else Result.FAIL,
                docs=DOCS_HEARTBEAT_INTERVAL,
            )
        )

    def _rate_verdict(self) -> None:
        worst = 0
        where = ""
        for conn, watch in self._conns.items():
            if watch.worst_rate > worst:
                worst, where = watch.worst_rate, f"connection {conn}"
        if not self._conns:
            return
        self.verdicts.append(
            Verdict(
                name="payload rate",
                expected=f"at most {RATE_LIMIT_EVENTS} payloads per 60 s per connection",
                observed=f"at most {worst} in any 60 s" + (f" ({where})" if where else ""),
                result=Result.PASS if worst <= RATE_LIMIT_EVENTS else Result.FAIL,
                docs=DOCS_RATE_LIMIT,
            )
        )

    def _backoff_verdict(self) -> None:
        """No reconnect storm: failed attempts (connections that got no READY or RESUMED,
        and refused ones) at most STORM_ATTEMPTS in any STORM_WINDOW (FAIL), and a run of
        BACKOFF_RUN or more should wait longer between tries (NON-STRICT; serenity#1433)."""
        attempts = sorted(
            [(w.opened_ns, w.handshaken) for w in self._conns.values()]
            + [(t, False) for t in self._refused]
        )
        failed = [t for t, ok in attempts if not ok]
        if len(failed) < BACKOFF_RUN:
            return
        worst = 0
        start = 0
        for end, t in enumerate(failed):
            while t - failed[start] >= STORM_WINDOW_NS:
                start += 1
            worst = max(worst, end - start + 1)
        runs: list[list[int]] = [[]]
        for t, ok in attempts:
            if ok:
                runs.append([])
            else:
                runs[-1].append(t)
        flat = []
        for run in runs:
            gaps = [b - a for a, b in itertools.pairwise(run)]
            # Grown: the last delay half as long again as the first, and 100 ms longer at
            # least (scheduling jitter alone does neither).
            grown = gaps and gaps[-1] >= 1.5 * gaps[0] and gaps[-1] - gaps[0] >= BACKOFF_GROWTH_NS
            if len(run) >= BACKOFF_RUN and not grown:
                flat.append(", ".join(f"{gap / 1e9:.1f} s" for gap in gaps))
        window_s = STORM_WINDOW_NS / 1e9
        observed = f"{len(failed)} failed attempts, at most {worst} in {window_s:g} s"
        if worst > STORM_ATTEMPTS:
            result = Result.FAIL
        elif flat:
            result = Result.NON_STRICT
            observed += f"; the delays did not grow: {'; '.join(flat)}"
        else:
            result = Result.PASS
        self.verdicts.append(
            Verdict(
                name="reconnect back-off",
                expected=(
                    f"at most {STORM_ATTEMPTS} failed attempts in {window_s:g} s, "
                    "with growing delays"
                ),
                observed=observed,
                result=result,
                docs=DOCS_BACKOFF,
            )
        )

    def _fallback_verdict(self) -> None:
        """Back to the gateway URL: after resume-URL attempts keep failing, the client
        should connect to the cached gateway URL (and IDENTIFY) rather than retry the
        resume URL forever (Gateway > Resuming; discord.py#10511). NON-STRICT beyond
        FALLBACK_AFTER refused resume-URL attempts in a row."""
        if not self._refused_resume:
            return
        attempts = sorted(
            [(w.opened_ns, w.url_key is not None) for w in self._conns.values()]
            + [(t, True) for t in self._refused_resume]
        )
        refused = set(self._refused_resume)
        longest = run = 0
        for t, on_resume_url in attempts:
            run = run + 1 if on_resume_url and t in refused else 0
            longest = max(longest, run)
        self.verdicts.append(
            Verdict(
                name="back to the gateway URL",
                expected=(
                    f"at most {FALLBACK_AFTER} refused resume URL attempts in a row, then the "
                    "cached gateway URL"
                ),
                observed=f"{longest} refused resume URL attempts in a row",
                result=Result.PASS if longest <= FALLBACK_AFTER else Result.NON_STRICT,
                docs=DOCS_CACHED_URL,
            )
        )


def _query(query: tuple[object, ...]) -> str:
    return "/".join(str(part) for part in query)


def _needs_new_session(code: int) -> bool:
    try:
        return CloseCode(code).needs_new_session
    except ValueError:
        return False


def _expectation(fault: Fault) -> Expect:
    expect = _base_expectation(fault)
    phase = fault.trigger.phase
    if phase in (Phase.HELLO, Phase.IDENTIFY) and expect in (
        Expect.RESUME,
        Expect.RESUME_ANY,
    ):
        # No session was made on this connection: any reconnect will do, and in answer to
        # IDENTIFY an op 9 asks for a fresh IDENTIFY whatever its d.
        if phase is Phase.IDENTIFY and fault.kind is FaultKind.INVALID_SESSION:
            return Expect.IDENTIFY
        return Expect.RECONNECT
    return expect


def _base_expectation(fault: Fault) -> Expect:
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
        case FaultKind.STALL | FaultKind.LATENCY:
            return Expect.STAY
        case FaultKind.RATE_LIMITED:
            return Expect.BACK_OFF
        case FaultKind.REJECT_RESUME:
            return Expect.IDENTIFY
        case FaultKind.WITHHOLD:
            # The client gives up on the step and tries again: what it sends then is judged
            # by the rules that apply anyway (the fault that sent it there, the standing
            # rules), so a withheld step takes no reaction away from another fault.
            return Expect.RETRY
        case FaultKind.CLOSE_NO_STATUS | FaultKind.CORRUPT | FaultKind.CORRUPT_STREAM:
            return Expect.RESUME  # the session survives what the transport did
        case FaultKind.DEAF:
            return Expect.DEAF
        case FaultKind.FRAGMENT | FaultKind.SPLIT:
            return Expect.COPE
        case FaultKind.REFUSE | FaultKind.BLACKHOLE | FaultKind.HTTP:
            return Expect.RETRY
    raise AssertionError(fault.kind)


def _docs(fault: Fault) -> str:
    if fault.trigger.phase is Phase.HELLO and fault.kind is FaultKind.RECONNECT:
        return DOCS_HELLO
    match fault.kind:
        case FaultKind.RECONNECT:
            return DOCS_RECONNECT
        case FaultKind.INVALID_SESSION | FaultKind.REJECT_RESUME:
            return DOCS_INVALID_SESSION
        case FaultKind.CLOSE:
            return DOCS_CLOSE_CODES
        case FaultKind.DROP:
            return DOCS_DISCONNECT
        case FaultKind.ZOMBIE:
            return DOCS_ZOMBIE
        case FaultKind.HEARTBEAT:
            return DOCS_HEARTBEAT_REQUEST
        case FaultKind.STALL | FaultKind.LATENCY:
            return DOCS_STALL
        case FaultKind.RATE_LIMITED:
            return DOCS_RATE_LIMITED
        case FaultKind.WITHHOLD:
            return DOCS_WITHHOLD
        case FaultKind.CLOSE_NO_STATUS | FaultKind.DEAF | FaultKind.CORRUPT:
            return DOCS_DISCONNECT
        case FaultKind.CORRUPT_STREAM | FaultKind.FRAGMENT | FaultKind.SPLIT:
            return DOCS_COMPRESSION
        case FaultKind.REFUSE | FaultKind.BLACKHOLE | FaultKind.HTTP:
            return DOCS_BACKOFF
    raise AssertionError(fault.kind)
