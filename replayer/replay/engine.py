"""The replay engine, sans-I/O: one :class:`GatewayConnection` per client WebSocket.

Events go in (``start``, ``receive``, ``tick``, ``client_closed``), commands come out
(:class:`Send`, :class:`Close`, :class:`Abort`) and ``next_wakeup_ns`` says when to call
``tick`` again. Time enters only as ``now_ns``, so tests run a recorded hour in
milliseconds. Sessions live in :class:`Replay`, shared by all connections, so a client
can RESUME on a new connection.

Protocol rules cite Discord docs, Events > Gateway ("Connecting", "Sending Heartbeats",
"Identifying", "Resuming") and Topics > Opcodes and Status Codes (close codes).
"""

from __future__ import annotations

import enum
from array import array
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from replayer.archive.records import FrameRecord
from replayer.errors import CodecError, GatewayError
from replayer.gateway.close_codes import CloseCode, client_close_ends_session, may_reconnect
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.opcodes import Direction, Opcode, as_opcode
from replayer.gateway.payload import MAX_CLIENT_PAYLOAD_BYTES, Payload, parse_payload
from replayer.gateway.sequence import rewrite_json_seq
from replayer.replay.answers import (
    MemberRateLimit,
    answer_members,
    channel_info,
    rate_limited,
    soundboard_sounds,
)
from replayer.replay.client_payloads import identify_problem, payload_problem
from replayer.replay.faults import Fault, FaultKind, FaultPlan, Phase
from replayer.replay.injector import FaultInjector
from replayer.replay.intents import (
    GUILD_VOICE_STATES,
    Decision,
    IntentFilter,
    intents_notice,
    intents_refusal,
    recorded_grants,
)
from replayer.replay.script import ReplayScript, ShardScript
from replayer.replay.sharding import ShardRouter, shard_refusal
from replayer.replay.starts import Admission, SessionStartLimit, SessionStarts, limit_for
from replayer.replay.verdicts import RATE_LIMIT_EVENTS, RATE_LIMIT_WINDOW_NS, Judge, Verdict

if TYPE_CHECKING:  # the voice face imports this module's commands
    from replayer.replay.voice.engine import VoiceReplay

MAX_BATCH = 256  # sends per tick: the shell drains the socket between batches
# Recorded bytes per tick, too: what a connection holds in flight (its batch, then the
# socket's buffer) stays near this however large the frames, with a thousand connections.
MAX_BATCH_BYTES = 64 << 10
NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Send:
    """Send one payload, already encoded in the client's encoding."""

    raw: bytes
    op: int
    s: int | None = None
    t: str | None = None
    injected: bool = False
    # How the shell puts it on the wire: "" (one message), "fragment" (one message over
    # several WebSocket frames), "split" (a zlib-stream message over several messages),
    # "corrupt-stream" (bytes that break the connection's compression context).
    mode: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with this code (a close frame; 1005: one without a status)."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the TCP connection without a close frame."""


Command = Send | Close | Abort


class PayloadSource(Protocol):
    """Where recorded frames come from (a file reader in the server, a list in tests);
    ``size``: the record's length in bytes when known (0: not known)."""

    def frame(self, offset: int, size: int = 0) -> FrameRecord: ...


@dataclass(frozen=True)
class ReplayOptions:
    speed: float = 1.0  # 1 = recorded pace, 2 = twice as fast, 0 = as fast as the client reads
    token: str | None = None  # when set, IDENTIFY/RESUME with another token gets 4004
    gateway_url: str = "ws://127.0.0.1:0/"  # what READY's resume_gateway_url says
    close_at_end: int | None = None  # close code once the stream is over; None: stay
    verdict_window_ms: int = 15_000  # how long the judge waits for a reaction to a fault
    heartbeat_interval_ms: int | None = None  # HELLO's interval; None: the recorded one
    recorded_faults: bool = True  # replay the recorded op 7 / op 9 / server closes and drops
    # Issue #15 (timers, rate limit, sessions, versions): Discord's rules, on by default
    # (docs/gateway-conduct.md has each with its docs section and switch).
    heartbeat_timeout: bool = True  # no HEARTBEAT in interval * 1.25 + 1 s: close 4009
    identify_timeout_ms: int | None = 30_000  # no IDENTIFY/RESUME after HELLO: close 4009
    reconnect_close_ms: int | None = 5_000  # op 7 and the client stays: close 4000
    rate_limit: bool = True  # over 120 payloads in 60 s on a connection: close 4008
    session_ttl_ms: int | None = 180_000  # a session with no connection expires after this
    resume_buffer: int = 4096  # dispatches a session keeps for a RESUME to replay
    gateway_versions: frozenset[int] | None = frozenset({9, 10})  # others: 4012 (None: any)
    # Item 6 of #15, session starts and identify concurrency (replay/starts.py).
    session_start_limit: SessionStartLimit | None = None  # None: the archive's, else Discord's
    identify_concurrency: bool = True  # op 9 for an IDENTIFY beyond max_concurrency per 5 s
    enforce_session_start_limit: bool = True  # close 4004 for an IDENTIFY with no starts left
    # Issue 15 items 5 (intents, replay/intents.py) and 7 (sharding, replay/sharding.py).
    check_intents: bool = True  # IDENTIFY's intents: unknown bits 4013, ungranted privileged 4014
    grant_intents: int | None = None  # privileged intents granted; None: as recorded, else all
    filter_intents: bool = True  # dispatches, message content, GUILD_CREATE as intents allow
    check_shards: bool = True  # shard_id outside 0..num_shards-1 gets 4010
    require_sharding: bool = False  # an IDENTIFY handling every guild gets 4011
    reroute_shards: bool = True  # another num_shards than recorded: guilds routed by formula
    # Issue #15 items 8 and 9 (client payloads validated; requests answered from state).
    validate_payloads: bool = True  # ops 3, 4, 8, 31, 43 and IDENTIFY fields checked: 4001
    payload_compression: bool = True  # IDENTIFY compress=true: each message zlib'd (JSON)
    answer_from_state: bool = True  # ops 8, 31, 43 answered from the archive's state
    member_rate_limit_s: float = 30.0  # one all-members request per guild per N s; 0: off
    # Issue #18: a recorded VOICE_SERVER_UPDATE goes to the voice face (or endpoint null);
    # False passes it as recorded (a replay standing in for Discord upstream of a recorder).
    rewrite_voice_servers: bool = True


class SessionState:
    """One gateway session: created by IDENTIFY, carried over connections by RESUME."""

    def __init__(
        self, session_id: str, script: ShardScript, shard: list[int] | None, number: int = 1
    ) -> None:
        self.session_id = session_id
        self.number = number  # 1-based, in order of creation: its resume URL is /resume/N
        self.script = script
        self.shard = shard  # as the client sent it in IDENTIFY, echoed in READY
        # Item index for s = sent_base + i + 1 (-1: RESUMED or a dispatch of our own),
        # the last ``resume_buffer`` of them (Gateway > Resuming: a bounded buffer).
        self.sent: array[int] = array("q")
        self.sent_base = 0  # dispatches dropped from the front of ``sent``
        self.last_index = -1  # the last stream item sent
        self.left_ns: int | None = None  # when its last connection ended (None: one is on)
        self.next_item = 0
        self.resumable = True
        self.owner: GatewayConnection | None = None
        self.requests: dict[int, list[str | None]] = {}  # op -> nonces of client requests
        self.base_now_ns = 0  # clock: item i is due at base_now + (t_ns[i] - base_t) / speed
        self.base_t_ns = 0
        # Answers the stream passed before the client asked: (op, k) -> item indexes.
        self.parked: dict[tuple[int, int], list[int]] = {}
        self.ended = False
        self.dispatches = 0  # recorded dispatches sent (fault triggers count these)
        self.intent_filter: IntentFilter | None = None  # None: every dispatch as recorded
        self.request_intents = -1  # IDENTIFY's intents, for answers from state (-1: all)

    @property
    def seq(self) -> int:
        return self.sent_base + len(self.sent)

    def record_sent(self, index: int, buffer: int) -> None:
        """Dispatch number ``seq + 1`` was stream item ``index`` (-1: none)."""
        self.sent.append(index)
        if index >= 0:
            self.last_index = index
        if len(self.sent) > 2 * buffer:  # amortised: drop the oldest half at once
            drop = len(self.sent) - buffer
            del self.sent[:drop]
            self.sent_base += drop

    def item_for(self, s: int) -> int:
        """The stream item dispatch ``s`` was (-1: none); ``s`` within the buffer."""
        return self.sent[s - 1 - self.sent_base]

    def last_sent_t_ns(self) -> int:
        """Recorded time of the last item sent (the clock restarts there on RESUME)."""
        return self.script.t_ns[max(self.last_index, 0)]


class Replay:
    """Server-wide replay state: the script, the options and every session so far."""

    def __init__(
        self, script: ReplayScript, options: ReplayOptions, plan: FaultPlan | None = None
    ) -> None:
        self.script = script
        self.options = options
        self.sessions: dict[str, SessionState] = {}
        self.injector = FaultInjector(plan or FaultPlan())
        self.judge = Judge(self.heartbeat_interval_ms, options.verdict_window_ms)
        self.connections = 0
        self.rejected_resumes: list[Fault] = []  # armed reject-resume faults
        self.fired_incidents: set[tuple[int, int]] = set()  # (shard, position), once a run
        self.starts = SessionStarts(
            limit_for(script.http, options.session_start_limit),
            options.identify_concurrency,
            options.enforce_session_start_limit,
        )
        grant = options.grant_intents
        self.granted_intents = (
            grant
            if grant is not None
            else recorded_grants(script.identify_intents, script.application, script.http)
        )
        self.shard_router = ShardRouter(script, options.reroute_shards)
        # Sessions by shard (as IDENTIFY gave it): a look-up per IDENTIFY, not a scan of
        # every session (a thousand shards would make starting them quadratic).
        self._by_shard: dict[tuple[int, ...], list[SessionState]] = {}
        # Every recorded IDENTIFY's intents in one: what intents_notice needs, once.
        recorded_intents = 0
        for value in script.identify_intents:
            recorded_intents |= value
        self.recorded_intents = [recorded_intents] if script.identify_intents else []
        self.notices: list[str] = []  # said once a run; the shell logs them (on_notice)
        self.on_notice: Callable[[str], None] | None = None
        self.member_limit = MemberRateLimit(options.member_rate_limit_s)  # per bot: per run
        self.voice: VoiceReplay | None = None  # the voice face (issue #18), if it runs

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)
            if self.on_notice is not None:
                self.on_notice(text)

    @property
    def heartbeat_interval_ms(self) -> int:
        if self.options.heartbeat_interval_ms is not None:
            return self.options.heartbeat_interval_ms
        return next(iter(self.script.shards.values())).heartbeat_interval_ms

    def new_session(
        self, script: ShardScript, recorded_id: str, shard: list[int] | None
    ) -> SessionState:
        """A session with the recorded id, made unique within this run (deterministically)."""
        session_id, n = recorded_id, 1
        while session_id in self.sessions:
            n += 1
            session_id = f"{recorded_id}-{n}"
        session = SessionState(session_id, script, shard, len(self.sessions) + 1)
        self.sessions[session_id] = session
        self._by_shard.setdefault(tuple(shard or (0, 1)), []).append(session)
        return session

    def expire_sessions(self, now_ns: int) -> None:
        """Gateway > Initiating a Disconnect: a session left without a connection "will
        remain active and timeout after a few minutes" (``session_ttl_ms``); it is gone
        then (a RESUME gets op 9 false) and its state is freed."""
        ttl_ms = self.options.session_ttl_ms
        if ttl_ms is None:
            return
        expired = [
            sid
            for sid, session in self.sessions.items()
            if session.left_ns is not None and now_ns - session.left_ns >= ttl_ms * NS_PER_MS
        ]
        for sid in expired:
            session = self.sessions[sid]
            session.resumable = False
            session.sent = array("q")
            session.parked.clear()
            session.requests.clear()

    def finish(self, now_ns: int) -> list[Verdict]:
        """Every verdict of the run: each fault that never fired is one too (NOT FIRED)."""
        for fault in self.injector.pending:
            why = "its trigger never came in this run"
            if fault.trigger.now:
                why = f"connection {fault.trigger.conn} ended before it could be sent"
            self.judge.not_fired(fault, why)
        self.injector.pending.clear()
        for fault in self.rejected_resumes:
            self.judge.not_fired(fault, "armed, but no RESUME came to reject")
        self.rejected_resumes.clear()
        verdicts = self.judge.finish(now_ns) + self.starts.verdicts()
        if self.voice is not None:
            verdicts += self.voice.finish(now_ns)
        member_verdict = self.member_limit.verdict()
        return verdicts if member_verdict is None else [*verdicts, member_verdict]

    def resumable_session(self, shard: list[int] | None) -> str | None:
        """A session of this shard that its client left and may still RESUME: an IDENTIFY
        instead burns a session start (Events > Gateway > Resuming)."""
        for session in self._by_shard.get(tuple(shard or (0, 1)), ()):
            if session.resumable and session.owner is None and session.seq > 0:
                return session.session_id
        return None


def resume_url(gateway_url: str, session_number: int) -> str:
    """A session's own resume_gateway_url: a path of its own on the replay's port, so
    that the server knows which URL each connection used (Gateway > Resuming)."""
    return f"{gateway_url.rstrip('/')}/resume/{session_number}"


def resume_key(path: str) -> int | None:
    """The session number of a resume URL's path (``/resume/3``, ``/resume/3/``); None
    for any other path (the gateway URL)."""
    head, _, number = path.strip("/").partition("/")
    if head != "resume" or not number.isdigit():
        return None
    return int(number)


class State(enum.Enum):
    AWAIT_IDENTIFY = "await identify"
    STREAMING = "streaming"
    CLOSED = "closed"


_CLIENT_OPS = frozenset(op for op in Opcode if Direction.CLIENT in op.sent_by)
# Faults that send the client away from its connection (it must reconnect, or stop).
SENDS_AWAY = frozenset(
    {
        FaultKind.RECONNECT,
        FaultKind.INVALID_SESSION,
        FaultKind.CLOSE,
        FaultKind.DROP,
        FaultKind.ZOMBIE,
        FaultKind.WITHHOLD,
        FaultKind.CLOSE_NO_STATUS,
        FaultKind.CORRUPT,
        FaultKind.CORRUPT_STREAM,
        FaultKind.DEAF,
    }
)
NO_STATUS = 1005  # RFC 6455: "no status code was present" (never sent as a code itself)


def _trace(step: str) -> list[str]:
    """What Discord puts in HELLO's, READY's and RESUMED's ``_trace``: the servers that
    handled the step, as JSON text (libraries log it; discord.py keeps it)."""
    return [f'["replayer-gateway-{step}",{{"micros":0,"calls":[]}}]']


def _payload(op: int, d: Any = None, s: int | None = None, t: str | None = None) -> dict[str, Any]:
    return {"t": t, "s": s, "op": op, "d": d}


class GatewayConnection:
    """One client connection to the fake gateway."""

    def __init__(
        self,
        replay: Replay,
        encoding: Encoding,
        payloads: PayloadSource,
        *,
        path: str = "/",
        query: tuple[object, ...] | None = None,
    ) -> None:
        self.replay = replay
        self.encoding = encoding
        self.payloads = payloads
        self.url_key = resume_key(path)  # None: connected to the gateway URL
        self.query = query  # (v, encoding, compress) as the client asked
        self.zlib_stream = query is not None and query[2] == "zlib-stream"
        self.state = State.AWAIT_IDENTIFY
        self.session: SessionState | None = None
        self._wakeup_ns: int | None = None
        replay.connections += 1
        self.number = replay.connections  # 1-based, in order of connection
        self.client_ops: Counter[int] = Counter()
        self.faulted = False  # after op 7 / op 9: the stream stops, heartbeats go on
        self.zombie = False  # no more HEARTBEAT_ACKs
        self.stall_until_ns: int | None = None
        self.deferred_acks = 0
        self.sent_away_by: Fault | None = None  # the fault that told the client to go
        self.withheld: Phase | None = None  # a handshake step left unanswered (withhold)
        self.next_mode: tuple[str, Fault] | None = None  # fragment / split the next dispatch
        self.latency: tuple[int, int] | None = None  # (delay, jitter) of every frame, ms
        # Issue #15: the version asked for, and the server's timers (Events > Gateway).
        v = query[0] if query is not None else None
        self.version: int | None = v if type(v) is int else None
        self.hello_ns: int | None = None  # HELLO sent (None: withheld, or op 7 instead)
        self.last_beat_ns = 0  # the last HEARTBEAT (or HELLO)
        self.awaiting_since_ns: int | None = None  # waiting for IDENTIFY/RESUME since
        self.reconnect_ns: int | None = None  # op 7 sent at
        self.recent_payloads: deque[int] = deque()  # within the last 60 s (rate limit)
        self.payload_compression = False  # IDENTIFY compress=true honoured: the shell deflates
        self.last_request: dict[int, Any] = {}  # op -> d of the client's latest request
        self.limited_now = False  # a rate-limited fault answers the request in hand

    # --- events ------------------------------------------------------------------------

    def start(self, now_ns: int) -> list[Command]:
        """The client connected: HELLO first (Gateway > Connecting)."""
        self.replay.injector.started(now_ns)
        self.replay.judge.connection_opened(
            self.number, now_ns, url_key=self.url_key, query=self.query
        )
        # Reference > API Versioning; close 4012 "Invalid API version".
        versions = self.replay.options.gateway_versions
        if self.version is not None and versions is not None and self.version not in versions:
            known = ", ".join(map(str, sorted(versions)))
            return self._close(
                CloseCode.INVALID_API_VERSION, f"invalid API version {self.version} ({known})"
            )
        # Gateway Events > Reconnect: op 7 may come "even before/in place of" HELLO.
        out = self._phase(Phase.HELLO, now_ns)
        if out is not None:
            return out
        interval = self.replay.heartbeat_interval_ms
        self.hello_ns = self.last_beat_ns = self.awaiting_since_ns = now_ns
        hello = {"heartbeat_interval": interval, "_trace": _trace("hello")}
        return [self._send(_payload(Opcode.HELLO, hello))]

    def receive(self, data: bytes | str, now_ns: int) -> list[Command]:
        """A message from the client (clients never compress what they send)."""
        if self.state is State.CLOSED:
            return []
        raw = data.encode() if isinstance(data, str) else data
        # Gateway > Sending Events: over 4096 bytes closes with 4002.
        if len(raw) > MAX_CLIENT_PAYLOAD_BYTES:
            return self._close(CloseCode.DECODE_ERROR, "payload over 4096 bytes")
        try:
            payload = parse_payload(decode_payload(raw, self.encoding))
        except GatewayError as exc:
            return self._close(CloseCode.DECODE_ERROR, f"decode error: {exc}"[:120])
        op = as_opcode(payload.op)
        if op not in _CLIENT_OPS:
            return self._close(CloseCode.UNKNOWN_OPCODE, f"unknown opcode {payload.op}")
        # Gateway > Rate Limiting: 120 gateway events per 60 s; "apps that surpass the
        # limit are immediately disconnected" (close 4008).
        if self.replay.options.rate_limit:
            window = self.recent_payloads
            window.append(now_ns)
            while now_ns - window[0] >= RATE_LIMIT_WINDOW_NS:
                window.popleft()
            if len(window) > RATE_LIMIT_EVENTS:
                self.replay.judge.client_payload(self.number, int(op), payload.d, now_ns)
                return self._close(CloseCode.RATE_LIMITED, "you are being rate limited")
        if op is Opcode.HEARTBEAT:
            self.last_beat_ns = now_ns
        self.replay.judge.client_payload(self.number, int(op), payload.d, now_ns)
        # Events > Gateway Events > Send Events (before IDENTIFY, op 3 is 4003's business).
        if self.replay.options.validate_payloads and self.state is State.STREAMING:
            problem = payload_problem(int(op), payload.d)
            if problem is not None:
                return self._close(CloseCode.UNKNOWN_OPCODE, problem[:120])
        # A withheld step stays unanswered: without HELLO nothing is, after IDENTIFY or
        # RESUME only heartbeats are (the client must give up and reconnect).
        if self.withheld is not None and (
            self.withheld is Phase.HELLO or op is not Opcode.HEARTBEAT
        ):
            return []
        self.client_ops[int(op)] += 1
        faults = self.replay.injector.after_client_payload(
            self.number, int(op), self.client_ops[int(op)]
        )
        # Fix: "zombie@client-op=HEARTBEAT#2 stop ACKing from the client's 2nd heartbeat"
        # (faults.py): the heartbeat that triggers a zombie is itself left unanswered.
        # Injected after _handle, it used to get its ACK, and the zombie began one later.
        if op is Opcode.HEARTBEAT and any(f.kind is FaultKind.ZOMBIE for f in faults):
            self.zombie = True
        self.limited_now = any(f.kind is FaultKind.RATE_LIMITED for f in faults)
        out = self._handle(op, payload, now_ns)
        self.limited_now = False
        for fault in faults:
            out += self._inject(fault, now_ns)
        return out

    def _handle(self, op: Opcode | int, payload: Payload, now_ns: int) -> list[Command]:
        if op is Opcode.HEARTBEAT:  # answered in any state (Gateway > Sending Heartbeats)
            if self.zombie:
                return []
            if self.stall_until_ns is not None:
                self.deferred_acks += 1
                return []
            return [self._send(_payload(Opcode.HEARTBEAT_ACK))]
        if self.state is State.AWAIT_IDENTIFY:
            if op is Opcode.IDENTIFY:
                return self._identify(payload, now_ns)
            if op is Opcode.RESUME:
                return self._resume(payload, now_ns)
            return self._close(CloseCode.NOT_AUTHENTICATED, "not authenticated")
        if op in (Opcode.IDENTIFY, Opcode.RESUME):
            return self._close(CloseCode.ALREADY_AUTHENTICATED, "already authenticated")
        if op is Opcode.VOICE_STATE_UPDATE and self.session is not None:
            return self._voice_state(self.session, payload.d, now_ns) + self.tick(now_ns)
        if op in (
            Opcode.REQUEST_GUILD_MEMBERS,
            Opcode.REQUEST_SOUNDBOARD_SOUNDS,
            Opcode.REQUEST_CHANNEL_INFO,
        ):
            session = self.session
            if session is not None:
                nonce = payload.d.get("nonce") if isinstance(payload.d, dict) else None
                requests = session.requests.setdefault(int(op), [])
                requests.append(nonce if isinstance(nonce, str) else None)
                self.last_request[int(op)] = payload.d
                out: list[Command] = []
                if self.replay.options.answer_from_state:
                    # Not while stalled or sent away, nor a request a rate-limited fault answers.
                    streaming = self._streaming(session) and self.stall_until_ns is None
                    if streaming and not self.limited_now:
                        out += self._answer(session, int(op), payload.d, now_ns)
                    return out + self.tick(now_ns)
                if self._streaming(session) and self.stall_until_ns is None:
                    # Answers the stream already passed go out now, with this nonce.
                    for index in session.parked.pop((int(op), len(requests) - 1), []):
                        self._send_item(out, session, index, requests[-1], True, now_ns)
                        if self._stopped():
                            return out
                return out + self.tick(now_ns)
        return []

    def _deadline(self) -> tuple[int, int, str] | None:
        """The server's next timer on this connection: (due, close code, reason)."""
        if self.state is State.CLOSED or self.hello_ns is None:
            return None
        options = self.replay.options
        due: list[tuple[int, int, str]] = []
        if options.heartbeat_timeout:
            # Gateway > Sending Heartbeats: "If your app fails to send a heartbeat event in
            # time, your connection will be closed and you will be forced to Resume."
            # The same slack as the judge's schedule verdict: interval * 1.25 + 1 s.
            allowed = self.replay.heartbeat_interval_ms * 1.25 + 1_000
            due.append(
                (
                    self.last_beat_ns + int(allowed * NS_PER_MS),
                    CloseCode.SESSION_TIMED_OUT,
                    "no heartbeat in time",
                )
            )
        if (
            options.identify_timeout_ms is not None
            and self.state is State.AWAIT_IDENTIFY
            and self.awaiting_since_ns is not None
            and self.withheld is None
        ):
            due.append(
                (
                    self.awaiting_since_ns + options.identify_timeout_ms * NS_PER_MS,
                    CloseCode.SESSION_TIMED_OUT,
                    "no IDENTIFY or RESUME in time",
                )
            )
        if options.reconnect_close_ms is not None and self.reconnect_ns is not None:
            # Gateway Events > Reconnect: "A few seconds after the Reconnect event is
            # dispatched, the connection may be closed by the server."
            due.append(
                (
                    self.reconnect_ns + options.reconnect_close_ms * NS_PER_MS,
                    CloseCode.UNKNOWN_ERROR,
                    "reconnect requested",
                )
            )
        return min(due) if due else None

    def _timed_out(self, now_ns: int) -> list[Command] | None:
        deadline = self._deadline()
        if deadline is None or deadline[0] > now_ns:
            return None
        _, code, reason = deadline
        if self.reconnect_ns is not None and reason == "reconnect requested":
            self.replay.judge.stayed_after_reconnect(self.number, now_ns)
        if code == CloseCode.SESSION_TIMED_OUT and self.session is not None:
            # 4009 "Session timed out. Reconnect and start a new session" (close-code
            # table): the session goes with it, so a RESUME gets op 9 false.
            self.session.resumable = False
        return self._close(code, reason)

    def tick(self, now_ns: int) -> list[Command]:
        """Send what is due; set the next wake-up."""
        self._wakeup_ns = None
        timed_out = self._timed_out(now_ns)
        if timed_out is not None:
            return timed_out
        out: list[Command] = []
        if self.replay.injector.live:  # faults injected at run time (replay/control.py)
            for fault in self.replay.injector.due_now(self.number):
                out += self._inject(fault, now_ns)
            if self.state is State.CLOSED:
                return out
        if self.stall_until_ns is not None:
            if now_ns < self.stall_until_ns:
                self._wakeup_ns = self.stall_until_ns
                return out
            self.stall_until_ns = None
            out += [self._send(_payload(Opcode.HEARTBEAT_ACK)) for _ in range(self.deferred_acks)]
            self.deferred_acks = 0
        session = self.session
        if (
            self.state is not State.STREAMING
            or self.faulted
            or session is None
            or session.owner is not self
        ):
            return out
        voice = self.replay.voice
        if voice is not None and voice.main_outbox:  # a voice fault's VOICE_SERVER_UPDATE
            for event, d in voice.take_main_outbox():
                out.append(self._own_dispatch(session, event, d, injected=True))
                voice.main_sent(event, now_ns)
        for fault in self.replay.injector.due_by_time(self.number, now_ns):
            out += self._inject(fault, now_ns)
            if self._stopped():
                return out
        # Fix: a stall due by time (stall:1s@t=5s) starts here, before what is already
        # due; the loop below used to send that anyway.
        if self.stall_until_ns is not None:
            self._wakeup_ns = self.stall_until_ns
            return out
        script = session.script
        speed = self.replay.options.speed
        answers = script.answers
        # Recorded incidents are few: most streams have none, and skip the look-up.
        incidents = script.incidents if self.replay.options.recorded_faults else None
        length = len(script)
        intent_filter = session.intent_filter
        budget = MAX_BATCH_BYTES
        while len(out) < MAX_BATCH and budget > 0:
            index = session.next_item
            incident = self._incident(session, index) if incidents else None
            if incident is not None:
                due_t_ns, fault = incident
                if speed > 0:
                    due = session.base_now_ns + int((due_t_ns - session.base_t_ns) / speed)
                    if due > now_ns:
                        self._wakeup_ns = due
                        return out
                self.replay.fired_incidents.add((script.shard_id, index))
                out += self._inject(fault, now_ns)
                if self._stopped():
                    return out
                continue
            if index >= length:
                break
            if intent_filter is not None:
                event = script.events[index]
                if (
                    intent_filter.decisions.get(event) or intent_filter.decide(event)
                ) is Decision.DROP:
                    session.next_item += 1  # of an intent the client did not ask for
                    continue
            if speed > 0:
                due = session.base_now_ns + int((script.t_ns[index] - session.base_t_ns) / speed)
                if due > now_ns:
                    self._wakeup_ns = due
                    return out
            session.next_item += 1
            answer = answers.get(index) if answers else None
            nonce: str | None = None
            if answer is not None:
                if self.replay.options.answer_from_state:
                    continue  # the request gets its answer from state instead
                requests = session.requests.get(answer[0], [])
                if len(requests) <= answer[1]:
                    # Not asked for (yet): never sent unasked, never holds up the stream.
                    session.parked.setdefault(answer, []).append(index)
                    continue
                nonce = requests[answer[1]]
            self._send_item(out, session, index, nonce, answer is not None, now_ns)
            budget -= script.size(index)
            if self._stopped():
                return out
            if self.stall_until_ns is not None:
                self._wakeup_ns = self.stall_until_ns
                return out
        if session.next_item < len(script) or self._incident(session, session.next_item):
            self._wakeup_ns = now_ns  # more is due: come back after draining
        elif not session.ended:
            session.ended = True
            code = self.replay.options.close_at_end
            if code is not None:
                out.extend(self._close(code, "end of the recorded session"))
        return out

    def _streaming(self, session: SessionState) -> bool:
        return self.state is State.STREAMING and not self.faulted and session.owner is self

    def _incident(self, session: SessionState, position: int) -> tuple[int, Fault] | None:
        """The recorded server-side incident at ``position`` of the stream, if it is still
        to be replayed (once a run): (its recorded t_ns, the fault that replays it)."""
        if not self.replay.options.recorded_faults:
            return None
        incident = session.script.incidents.get(position)
        if incident is None or (session.script.shard_id, position) in self.replay.fired_incidents:
            return None
        return incident

    def _send_item(
        self,
        out: list[Command],
        session: SessionState,
        index: int,
        nonce: str | None,
        answers: bool,
        now_ns: int,
    ) -> None:
        """Send stream item ``index`` as the session's next dispatch, and whatever faults
        that dispatch triggers (appended to ``out``: this is the hot path)."""
        send = self._dispatch(session, index, nonce=nonce, answers=answers)
        if send is None:
            return  # not for this session's intents (known only from its payload)
        if self.next_mode is not None:
            mode, fault = self.next_mode
            self.next_mode = None
            send = replace(send, mode=mode, injected=True)
            self.replay.judge.fault_injected(fault, self.number, now_ns, s=send.s)
        out.append(send)
        session.record_sent(index, self.replay.options.resume_buffer)
        session.dispatches += 1
        for fault in self.replay.injector.after_dispatch(
            self.number,
            session.session_id,
            session.script.events[index],
            session.seq,
            session.dispatches,
        ):
            out += self._inject(fault, now_ns)

    def next_wakeup_ns(self) -> int | None:
        wake = self._wakeup_ns
        deadline = self._deadline()
        if deadline is not None and (wake is None or deadline[0] < wake):
            wake = deadline[0]
        # Fix: only timed faults this connection can fire now. A fault for another
        # connection (t=5s,conn=2), or one due during a stall, used to make a wake-up in
        # the past on which tick() sent nothing: the shell spun on it with timeout 0.
        if self.state is State.STREAMING and not self.faulted and self.stall_until_ns is None:
            timed = self.replay.injector.next_time_ns(self.number)
            if timed is not None and (wake is None or timed < wake):
                wake = timed
        return wake

    def client_closed(self, code: int | None, now_ns: int) -> None:
        """The client went away (``code`` None: without a close frame)."""
        if self.state is not State.CLOSED or code is not None:
            self.replay.judge.client_closed(self.number, code, now_ns)
        else:
            # Fix: the server closed it (a fault, close_at_end, a RESUME elsewhere). The
            # judge never heard, and judged the connection's heartbeats until the end of
            # the run ("heartbeats on schedule" failed for a connection long gone).
            self.replay.judge.connection_ended(self.number, now_ns)
        self.state = State.CLOSED
        session = self.session
        if session is not None and session.owner is self:
            session.owner = None
            session.left_ns = now_ns
            # Gateway > Disconnections: closing with 1000 or 1001 ends the session.
            if client_close_ends_session(code):
                session.resumable = False

    # --- IDENTIFY and RESUME ---------------------------------------------------------

    def _token_ok(self, payload: Payload) -> bool:
        token = self.replay.options.token
        if token is None:
            return True
        d = payload.d if isinstance(payload.d, dict) else {}
        given = d.get("token")
        return isinstance(given, str) and given.removeprefix("Bot ") == token.removeprefix("Bot ")

    def _identify(self, payload: Payload, now_ns: int) -> list[Command]:
        if not isinstance(payload.d, dict):
            return self._close(CloseCode.DECODE_ERROR, "IDENTIFY without a d object")
        problem = identify_problem(payload.d) if self.replay.options.validate_payloads else None
        if problem is not None:  # Events > Gateway Events > Identify Structure
            return self._close(CloseCode.UNKNOWN_OPCODE, problem[:120])
        if not self._token_ok(payload):
            return self._close(CloseCode.AUTHENTICATION_FAILED, "authentication failed")
        # Gateway > Gateway Intents: "required as of v8"; without them, close 4013.
        if self.version is not None and self.version >= 8 and "intents" not in payload.d:
            return self._close(CloseCode.INVALID_INTENTS, "intents are required from v8 on")
        shard = payload.d.get("shard")
        shard_id = 0
        if shard is not None:
            if not (
                isinstance(shard, list) and len(shard) == 2 and all(type(x) is int for x in shard)
            ):
                return self._close(CloseCode.INVALID_SHARD, "invalid shard")
            shard_id = shard[0]
        options = self.replay.options
        refused = shard_refusal(
            shard, require=options.require_sharding, check=options.check_shards
        ) or (
            intents_refusal(payload.d.get("intents"), self.replay.granted_intents)
            if options.check_intents
            else None
        )
        if refused is not None:
            return self._close(*refused)
        script = self.replay.shard_router.stream(shard, self.payloads)
        if script is None:
            return self._close(CloseCode.INVALID_SHARD, f"the archive has no shard {shard_id}")
        # Gateway Events > Invalid Session: "the gateway could not initialize a session
        # after receiving an Opcode 2 Identify"; close codes 4004, 4010-4014 come here too.
        answer = self._phase(Phase.IDENTIFY, now_ns)
        if answer is not None:
            return answer
        could_resume = self.replay.resumable_session(shard)
        admission = self.replay.starts.identify(self.number, shard_id, now_ns, could_resume)
        if admission is Admission.RATE_LIMITED:  # Events > Gateway > Identifying: op 9
            return [self._send(_payload(Opcode.INVALID_SESSION, False))]
        if admission is Admission.EXHAUSTED:  # ... "the bot token will be reset"
            return self._close(CloseCode.AUTHENTICATION_FAILED, "no session starts remaining")
        ready = self.payloads.frame(script.offsets[0], script.size(0))
        recorded = decode_payload(ready.payload, script.encoding)
        recorded_id = (
            recorded.get("d", {}).get("session_id") if isinstance(recorded, dict) else None
        )
        session = self.replay.new_session(script, str(recorded_id or "replayer-session"), shard)
        intents = payload.d.get("intents")
        if type(intents) is int:
            if options.filter_intents and IntentFilter.needed(intents):
                user = self.replay.script.ready_user
                bot_id = user.get("id") if isinstance(user, dict) else None
                session.intent_filter = IntentFilter(intents, str(bot_id) if bot_id else None)
            notice = intents_notice(intents, self.replay.recorded_intents)
            if notice is not None:
                self.replay.notice(notice)
        self.replay.judge.session_started(self.number, session.session_id, session.number, shard)
        intents = payload.d.get("intents")
        session.request_intents = intents if type(intents) is int else -1
        # Gateway > Payload Compression: JSON only, "disabled if you use transport compression".
        self.payload_compression = (
            self.replay.options.payload_compression
            and payload.d.get("compress") is True
            and self.encoding is Encoding.JSON
            and not (self.query is not None and self.query[2])
        )
        self._attach(session, now_ns, script.t_ns[0])
        return self._after_handshake(now_ns)

    def _resume(self, payload: Payload, now_ns: int) -> list[Command]:
        d = payload.d if isinstance(payload.d, dict) else {}
        if not self._token_ok(payload):
            return self._close(CloseCode.AUTHENTICATION_FAILED, "authentication failed")
        session_id = d.get("session_id")
        self.replay.expire_sessions(now_ns)
        session = self.replay.sessions.get(session_id) if isinstance(session_id, str) else None
        seq = d.get("seq")
        if seq is None:
            seq = 0
        # Gateway > Resuming: an unknown, ended or expired session gets INVALID_SESSION
        # d=false (the client must IDENTIFY anew); so does a seq older than the resume
        # buffer, which cannot be replayed.
        if session is None or not session.resumable:
            self.awaiting_since_ns = now_ns
            return [self._send(_payload(Opcode.INVALID_SESSION, False))]
        # Opcodes and Status Codes, close 4007: "The sequence sent when resuming the
        # session was invalid. Reconnect and start a new session."
        if type(seq) is not int or not 0 <= seq <= session.seq:
            session.resumable = False
            return self._close(CloseCode.INVALID_SEQ, f"invalid seq {seq!r}")
        if seq < session.sent_base:
            session.resumable = False
            self.awaiting_since_ns = now_ns
            return [self._send(_payload(Opcode.INVALID_SESSION, False))]
        self.session = session  # what a fault in answer to this RESUME acts on
        self.replay.judge.resume_attempted(self.number, session.session_id, seq)
        answer = self._phase(Phase.RESUME, now_ns)
        if answer is not None:
            return answer
        if self.replay.rejected_resumes:  # a reject-resume fault is armed: this is its moment
            fault = self.replay.rejected_resumes.pop(0)
            session.resumable = False
            self.replay.judge.fault_injected(fault, self.number, now_ns)
            return [self._send(_payload(Opcode.INVALID_SESSION, False), injected=True)]
        previous = session.owner
        if previous is not None:
            previous.state = State.CLOSED  # its stream stops; the shell closes its socket
        self.replay.judge.session_resumed(self.number, session.session_id, seq)
        out: list[Command] = []
        for s in range(seq + 1, session.seq + 1):  # what the client missed, in order
            index = session.item_for(s)
            if index >= 0:
                send = self._dispatch(session, index, s=s)
                if send is not None:  # it was sent, so it passes the filter again
                    out.append(send)
        session.record_sent(-1, self.replay.options.resume_buffer)
        # RESUMED's d is an object, never null: Discord sends {"_trace": [...]}, and
        # discord.py stores its shard id into it (``data["__shard_id__"] = ...``), so a
        # null d kills its connect loop with a TypeError.
        out.append(
            self._send(
                _payload(Opcode.DISPATCH, {"_trace": _trace("resume")}, session.seq, "RESUMED"),
                s=session.seq,
                t="RESUMED",
            )
        )
        self.replay.judge.dispatched(self.number, session.seq)
        last = session.last_sent_t_ns()
        self._attach(session, now_ns, last)
        out.extend(self._after_handshake(now_ns))
        return out

    def _after_handshake(self, now_ns: int) -> list[Command]:
        out: list[Command] = []
        for fault in self.replay.injector.after_handshake(self.number):
            out += self._inject(fault, now_ns)
        if not self._stopped():
            out += self.tick(now_ns)
        return out

    # --- faults --------------------------------------------------------------------------

    def _phase(self, phase: Phase, now_ns: int) -> list[Command] | None:
        """The faults that answer this handshake step instead, carried out; None if none."""
        faults = self.replay.injector.at_phase(phase, self.number)
        if not faults:
            return None
        out: list[Command] = []
        for fault in faults:  # the first is carried out; the others are superseded
            out += self._inject(fault, now_ns)
        return out

    def _stopped(self) -> bool:
        """No more stream on this connection (closed, dropped, or told to reconnect)."""
        return self.state is State.CLOSED or self.faulted

    def _inject(self, fault: Fault, now_ns: int) -> list[Command]:
        """Carry out one fault now; the judge starts watching (Events > Gateway)."""
        session = self.session
        if fault.kind is FaultKind.REJECT_RESUME:
            self.replay.rejected_resumes.append(fault)  # judged when a RESUME comes
            return []
        if fault.kind in (FaultKind.FRAGMENT, FaultKind.SPLIT):
            # Judged when the next dispatch goes out that way.
            if fault.kind is FaultKind.SPLIT and not self.zlib_stream:
                self.replay.judge.not_fired(
                    fault, f"connection {self.number} has no zlib-stream to split"
                )
            else:
                self.next_mode = (str(fault.kind), fault)
            return []
        if fault.kind in SENDS_AWAY:
            # One reaction settles one fault (verdicts.py): a connection already told to go
            # is not told again; the second fault did not happen.
            if self.sent_away_by is not None or self.state is State.CLOSED:
                by = self.sent_away_by.describe() if self.sent_away_by else "its close"
                self.replay.judge.not_fired(
                    fault, f"superseded: connection {self.number} was already sent away ({by})"
                )
                return []
            self.sent_away_by = fault
        self.replay.judge.fault_injected(fault, self.number, now_ns)
        match fault.kind:
            case FaultKind.RECONNECT:
                self.faulted = True
                self.reconnect_ns = now_ns
                return [self._send(_payload(Opcode.RECONNECT), injected=True)]
            case FaultKind.INVALID_SESSION:
                self.faulted = True
                self.awaiting_since_ns = now_ns  # the 1-5 s wait, then IDENTIFY
                # Fix: after op 9 the client may IDENTIFY or RESUME on this same socket
                # (the docs' flow; discord.js does, and the judge accepts it "on the same
                # connection"); it used to get close 4005 (already authenticated).
                self.state = State.AWAIT_IDENTIFY
                if session is not None and not fault.resumable:
                    session.resumable = False
                return [
                    self._send(_payload(Opcode.INVALID_SESSION, fault.resumable), injected=True)
                ]
            case FaultKind.CLOSE:
                code = fault.code if fault.code is not None else CloseCode.UNKNOWN_ERROR
                ends = not may_reconnect(code) or code in (
                    CloseCode.INVALID_SEQ,
                    CloseCode.SESSION_TIMED_OUT,
                )
                if session is not None and ends:
                    session.resumable = False
                return self._close(code, fault.reason or f"injected close {code}")
            case FaultKind.DROP:
                self._close(CloseCode.UNKNOWN_ERROR, "")
                return [Abort()]
            case FaultKind.ZOMBIE:
                self.zombie = True
                return []
            case FaultKind.WITHHOLD:
                self.withheld = fault.trigger.phase
                return []
            case FaultKind.CLOSE_NO_STATUS:
                return self._close(NO_STATUS, "")
            case FaultKind.CORRUPT:
                self.faulted = True
                garbage = b"\x83garbage" if self.encoding is Encoding.ETF else b'{"op": 0, "d'
                return [Send(garbage, Opcode.DISPATCH, injected=True)]
            case FaultKind.CORRUPT_STREAM:
                self.faulted = True
                return [Send(b"", Opcode.DISPATCH, injected=True, mode="corrupt-stream")]
            case FaultKind.LATENCY:
                self.latency = (fault.duration_ms, fault.jitter_ms)
                return []
            case FaultKind.DEAF:
                self.faulted = True  # the stream stops; heartbeats are still ACKed
                return []
            case FaultKind.HEARTBEAT:
                return [self._send(_payload(Opcode.HEARTBEAT), injected=True)]
            case FaultKind.STALL:
                self.stall_until_ns = now_ns + fault.duration_ms * NS_PER_MS
                return []
            case FaultKind.RATE_LIMITED:
                if session is None:
                    return []
                op = fault.trigger.client_op or int(Opcode.REQUEST_GUILD_MEMBERS)
                # The meta of the request in hand (Rate Limited: guild_id and nonce).
                d = rate_limited(op, self.last_request.get(op), fault.retry_after_s)
                return [self._own_dispatch(session, "RATE_LIMITED", d, injected=True)]
        raise AssertionError(fault.kind)

    # --- requests answered from state (issue #15, item 9) --------------------------------

    def _answer(self, session: SessionState, op: int, d: Any, now_ns: int) -> list[Command]:
        """The dispatches that answer a (valid) request, from the archive's state."""
        if not isinstance(d, dict):
            return []
        state = self.replay.script.guild_state(self.payloads)
        if op == Opcode.REQUEST_GUILD_MEMBERS:
            limit, intents = self.replay.member_limit, session.request_intents
            event, answers = answer_members(state, limit, d, intents, now_ns)
        elif op == Opcode.REQUEST_SOUNDBOARD_SOUNDS:
            answers, event = soundboard_sounds(state, d), "SOUNDBOARD_SOUNDS"
        else:
            info = channel_info(state, d)
            answers, event = ([] if info is None else [info]), "CHANNEL_INFO"
        return [self._own_dispatch(session, event, answer) for answer in answers]

    def _own_dispatch(
        self, session: SessionState, event: str, d: Any, *, injected: bool = False
    ) -> Send:
        """A dispatch of the replayer's own, numbered on (never replayed on RESUME)."""
        session.record_sent(-1, self.replay.options.resume_buffer)
        self.replay.judge.dispatched(self.number, session.seq)
        obj = _payload(Opcode.DISPATCH, d, session.seq, event)
        return self._send(obj, s=session.seq, t=event, injected=injected)

    # --- voice (issue #18): op 4 answered, recorded voice servers pointed at the face ----

    def _voice_state(self, session: SessionState, d: Any, now_ns: int) -> list[Command]:
        """Op 4 answered as Discord does (Topics > Voice Connections > Retrieving Voice
        Server Information): VOICE_STATE_UPDATE (GUILD_VOICE_STATES intent: Gateway > List
        of Intents), then VOICE_SERVER_UPDATE (no intent) with the voice face's endpoint."""
        voice = self.replay.voice
        user = self.replay.script.ready_user or {}
        if voice is None:
            self.replay.notice("a client asked to join voice (op 4): replay with --voice to answer")
            return []
        if not self._streaming(session):
            return []
        out: list[Command] = []
        for event, answer in voice.state_update(d, str(user.get("id", "")), session.session_id):
            gated = self.replay.options.filter_intents and event == "VOICE_STATE_UPDATE"
            if gated and not session.request_intents & GUILD_VOICE_STATES:
                continue
            out.append(self._own_dispatch(session, event, answer))
            voice.main_sent(event, now_ns)
        return out

    def _recorded_voice_server(self, d: dict[str, Any]) -> dict[str, Any]:
        """A recorded VOICE_SERVER_UPDATE never sends the client to a real Discord host
        with a stale token: pointed at the voice face with a token of its own, or, with no
        voice face, ``endpoint: null`` (the docs' "voice server is being reallocated")."""
        if not self.replay.options.rewrite_voice_servers:
            return d
        voice = self.replay.voice
        if voice is None:
            return {**d, "endpoint": None, "token": "replayer-no-voice-face"}
        answer: dict[str, Any] = voice.recorded_server_update(d)
        return answer

    def _attach(self, session: SessionState, now_ns: int, base_t_ns: int) -> None:
        self.faulted = False  # a new handshake (after op 9) streams again
        self.sent_away_by = None
        self.session = session
        session.owner = self
        session.left_ns = None
        session.base_now_ns = now_ns
        session.base_t_ns = base_t_ns
        self.state = State.STREAMING

    # --- output ------------------------------------------------------------------------

    def _send(
        self,
        obj: Mapping[str, Any],
        *,
        s: int | None = None,
        t: str | None = None,
        injected: bool = False,
    ) -> Send:
        return Send(encode_payload(obj, self.encoding), int(obj["op"]), s, t, injected)

    def _dispatch(
        self,
        session: SessionState,
        index: int,
        *,
        s: int | None = None,
        nonce: str | None = None,
        answers: bool = False,
    ) -> Send | None:
        """Item ``index`` as dispatch number ``s`` (default: the next one); None: not for
        this session's intents (replay/intents.py: only INSPECT events are decoded)."""
        script = session.script
        event = script.events[index]
        intent_filter = session.intent_filter
        inspect = (
            intent_filter is not None
            and index > 0
            and (intent_filter.decisions.get(event) or intent_filter.decide(event))
            is Decision.INSPECT
        )
        record = self.payloads.frame(script.offsets[index], script.size(index))
        if s is None:
            s = session.seq + 1
        # VOICE_SERVER_UPDATE: its endpoint and token are rewritten for the voice face.
        voice_server = event == "VOICE_SERVER_UPDATE"
        as_recorded = index > 0 and not answers and self.encoding is script.encoding
        if as_recorded and not inspect and not voice_server:
            raw = self._recorded_bytes(record, s)
            if raw is not None:
                self.replay.judge.dispatched(self.number, s)
                return Send(raw, Opcode.DISPATCH, s, event)
        try:
            obj = decode_payload(record.payload, script.encoding)
        except CodecError:
            obj = {}
        d = obj.get("d") if isinstance(obj, dict) else None
        if inspect and intent_filter is not None:
            recorded_d = d
            d = intent_filter.apply(event, d)
            if d is None:
                return None
            if d is recorded_d and as_recorded:  # passed unchanged: not re-encoded
                raw = self._recorded_bytes(record, s)
                if raw is not None:
                    self.replay.judge.dispatched(self.number, s)
                    return Send(raw, Opcode.DISPATCH, s, event)
        self.replay.judge.dispatched(self.number, s)
        if index == 0 and isinstance(d, dict):
            d = self._ready(d, session)
        elif voice_server and isinstance(d, dict):
            d = self._recorded_voice_server(d)
        elif answers and isinstance(d, dict):
            d = dict(d)
            if nonce is None:
                d.pop("nonce", None)
            else:
                d["nonce"] = nonce
        try:
            return self._send(_payload(Opcode.DISPATCH, d, s, event), s=s, t=event)
        except CodecError:
            # Not expressible in the client's encoding (ETF to JSON: an integer over 4300
            # digits, a non-UTF-8 binary): sent as an undecodable recording is, d = null.
            return self._send(_payload(Opcode.DISPATCH, None, s, event), s=s, t=event)

    def _recorded_bytes(self, record: FrameRecord, s: int) -> bytes | None:
        """The recorded payload as dispatch number ``s``: its bytes as they were, or with
        only their "s" rewritten (numbered otherwise, after dispatches the intents filter
        dropped); None when that cannot be done exactly (then it is re-encoded)."""
        if record.s == s:
            return record.payload
        return rewrite_json_seq(record.payload, s) if self.encoding is Encoding.JSON else None

    def _ready(self, d: dict[str, Any], session: SessionState) -> dict[str, Any]:
        """READY, pointed at this server: resume_gateway_url, session_id, shard."""
        d = dict(d)
        d["resume_gateway_url"] = resume_url(self.replay.options.gateway_url, session.number)
        d["session_id"] = session.session_id
        if self.version is not None:  # Events > Gateway Events > Ready: v, the API version
            d["v"] = self.version
        if session.script.ready_guilds is not None:  # a re-routed shard (sharding.py)
            d["guilds"] = list(session.script.ready_guilds)
        if session.shard is not None:
            d["shard"] = list(session.shard)
        else:
            d.pop("shard", None)
        return d

    def _close(self, code: int, reason: str) -> list[Command]:
        self.state = State.CLOSED
        if self.session is not None and self.session.owner is self:
            self.session.owner = None
        return [Close(int(code), reason)]
