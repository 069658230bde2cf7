"""The voice gateway engine, sans-I/O: one :class:`VoiceConnection` per voice WebSocket,
sessions and tokens in :class:`VoiceReplay`, shared with the main gateway (which grants
the tokens in answer to op 4) and with the UDP responder (:meth:`VoiceReplay.datagram`).

Events in (``start``, ``receive``, ``tick``, ``client_closed``), commands out
(:class:`VoiceSend`, ``Close``, ``Abort``); time only as ``now_ns``. The protocol is
Topics > Voice Connections (Connecting to Voice, Heartbeating, Establishing a Voice UDP
Connection, Resuming Voice Connection, Buffered Resume, IP Discovery) and Topics > Opcodes
and Status Codes > Voice (opcodes, close codes).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replayer.errors import ReplayerError
from replayer.replay.engine import Abort, Close
from replayer.replay.verdicts import Verdict
from replayer.replay.voice.faults import (
    ServerUpdate,
    VoiceFault,
    VoiceFaultKind,
    VoiceInjector,
    VoicePlan,
)
from replayer.replay.voice.verdicts import Fired, VoiceJudge
from replayer.voice.close_codes import VoiceReconnect, voice_close_rule
from replayer.voice.frames import parse_binary
from replayer.voice.ip_discovery import REQUEST, RESPONSE, build_discovery, parse_discovery
from replayer.voice.opcodes import SENDER, VoiceOp
from replayer.voice.rtp import rtp_ssrc
from replayer.voice.session import ENCRYPTION_MODES, SECRET_KEY_BYTES, heartbeat_fields

HEARTBEAT_INTERVAL_MS = 13_750  # what Discord's voice servers say in HELLO
RESUME_BUFFER = 512  # numbered messages a voice session keeps for a buffered resume
FIRST_SSRC = 1001

# Close codes (Topics > Opcodes and Status Codes > Voice Close Event Codes).
UNKNOWN_OPCODE = 4001
DECODE_ERROR = 4002
NOT_AUTHENTICATED = 4003
AUTHENTICATION_FAILED = 4004
ALREADY_AUTHENTICATED = 4005
SESSION_NO_LONGER_VALID = 4006
UNKNOWN_PROTOCOL = 4012
UNKNOWN_ENCRYPTION_MODE = 4016

_CLIENT_OPS = frozenset(op for op, who in SENDER.items() if who in ("client", "both"))
_UNNUMBERED = frozenset({VoiceOp.HELLO, VoiceOp.HEARTBEAT_ACK, VoiceOp.RESUMED})


@dataclass(frozen=True, slots=True)
class VoiceSend:
    """One voice message: JSON text, or a binary frame."""

    data: str | bytes
    op: int
    seq: int | None = None
    injected: bool = False


VoiceCommand = VoiceSend | Close | Abort


@dataclass(frozen=True, slots=True)
class VoiceGrant:
    """What one VOICE_SERVER_UPDATE gave a client: the token for this guild and user."""

    guild_id: str
    user_id: str
    session_id: str  # the main gateway's voice session id (VOICE_STATE_UPDATE's)
    token: str
    endpoint: str | None
    channel_id: str | None = None  # the voice channel joined


@dataclass
class VoiceSession:
    """One voice session: created by IDENTIFY, carried over connections by RESUME."""

    number: int
    server_id: str
    session_id: str
    user_id: str
    token: str
    ssrc: int
    secret_key: list[int]
    seq: int = 0  # the last numbered message sent
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=RESUME_BUFFER))
    mode: str | None = None
    resumable: bool = True
    owner: VoiceConnection | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.server_id, self.session_id)


class VoiceReplay:
    """The voice face's shared state: grants, sessions, the UDP responder's counts."""

    def __init__(
        self,
        endpoints: tuple[str, ...],
        udp_address: tuple[str, int],
        plan: VoicePlan | None = None,
        *,
        window_ms: int = 15_000,
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    ) -> None:
        """``endpoints``: the voice face's ``host:port``\\ s (a second one is where a
        ``voice-server-update:new-endpoint`` fault sends the client)."""
        self.endpoints = endpoints
        self.udp_address = udp_address
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.injector = VoiceInjector(plan or VoicePlan())
        self.judge = VoiceJudge(window_ms)
        self.grants: dict[str, VoiceGrant] = {}  # guild id -> the latest grant
        self.sessions: dict[tuple[str, str], VoiceSession] = {}
        self.connections = 0
        self.rtp_packets: Counter[int] = Counter()  # ssrc -> RTP packets received
        self.rtp_total = 0
        self.discoveries = 0  # IP discovery requests answered
        self.main_outbox: list[tuple[str, dict[str, Any]]] = []  # dispatches for the main gateway
        self.on_change: Callable[[], None] | None = None  # the shell: something to send
        self._tokens = 0
        self._endpoint_index = 0

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._endpoint_index]

    def move_endpoint(self) -> None:
        """From now on, grants point at the face's next endpoint (a new-endpoint fault)."""
        self._endpoint_index = (self._endpoint_index + 1) % len(self.endpoints)

    def _token(self) -> str:
        self._tokens += 1
        return hashlib.sha256(f"replayer-voice-token-{self._tokens}".encode()).hexdigest()[:16]

    # --- the main gateway's side ---------------------------------------------------

    def state_update(
        self, d: Any, user_id: str, main_session_id: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """The dispatches that answer a client's op 4 VOICE_STATE_UPDATE (Topics > Voice
        Connections > Retrieving Voice Server Information: VOICE_STATE_UPDATE, then
        VOICE_SERVER_UPDATE; leaving: VOICE_STATE_UPDATE with channel_id null only)."""
        if not isinstance(d, dict) or d.get("guild_id") is None:
            return []
        guild_id = str(d["guild_id"])
        channel_id = d.get("channel_id")
        voice_session_id = hashlib.sha256(f"{main_session_id}/{guild_id}".encode()).hexdigest()[:32]
        state = {
            "guild_id": guild_id,
            "channel_id": None if channel_id is None else str(channel_id),
            "user_id": user_id,
            "session_id": voice_session_id,
            "deaf": False,
            "mute": False,
            "self_deaf": bool(d.get("self_deaf", False)),
            "self_mute": bool(d.get("self_mute", False)),
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        current = self.grants.get(guild_id)
        if channel_id is not None and current is not None and current.channel_id == str(channel_id):
            # The channel it is in already: the same voice server and token again (the
            # voice session stays valid, so a RESUME after 4015 can still use it).
            again = {"token": current.token, "guild_id": guild_id, "endpoint": current.endpoint}
            return [("VOICE_STATE_UPDATE", state), ("VOICE_SERVER_UPDATE", again)]
        if channel_id is None:
            # Leaving: the voice session ends, and a voice connection still open is closed
            # with 4014 "Disconnected" (Voice Close Event Codes).
            self.grants.pop(guild_id, None)
            for session in self.sessions.values():
                if session.server_id == guild_id:
                    session.resumable = False
                    if session.owner is not None and not session.owner.closed:
                        session.owner.close_with = 4014
                        if self.on_change is not None:
                            self.on_change()
            return [("VOICE_STATE_UPDATE", state)]
        grant = self.grant(guild_id, user_id, voice_session_id, channel_id=str(channel_id))
        return [("VOICE_STATE_UPDATE", state), ("VOICE_SERVER_UPDATE", grant)]

    def grant(
        self,
        guild_id: str,
        user_id: str,
        session_id: str,
        endpoint: str | None = "",
        *,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        """A new token for ``guild_id``; the VOICE_SERVER_UPDATE ``d`` that carries it."""
        point = self.endpoint if endpoint == "" else endpoint
        if channel_id is None and guild_id in self.grants:
            channel_id = self.grants[guild_id].channel_id
        grant = VoiceGrant(guild_id, user_id, session_id, self._token(), point, channel_id)
        self.grants[guild_id] = grant
        return {"token": grant.token, "guild_id": guild_id, "endpoint": point}

    def recorded_server_update(self, d: Any) -> Any:
        """A recorded VOICE_SERVER_UPDATE, pointed at the voice face with a fresh token
        (it must never send the client to a real Discord host with a stale one)."""
        if not isinstance(d, dict):
            return d
        guild_id = str(d.get("guild_id"))
        previous = self.grants.get(guild_id)
        user_id = previous.user_id if previous else ""
        session_id = previous.session_id if previous else ""
        endpoint = None if d.get("endpoint") is None else ""
        return {**d, **self.grant(guild_id, user_id, session_id, endpoint)}

    def take_main_outbox(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.main_outbox = self.main_outbox, []
        return out

    def main_sent(self, event: str, now_ns: int) -> None:
        """The main gateway sent ``event`` (the judge notes VOICE_SERVER_UPDATEs)."""
        if event == "VOICE_SERVER_UPDATE":
            self.judge.server_update_sent(now_ns)

    # --- UDP ------------------------------------------------------------------------

    def datagram(self, data: bytes, address: tuple[str, int], now_ns: int) -> bytes | None:
        """One UDP packet from a client: an IP discovery request gets its answer (the
        address and port it came from); an RTP packet is counted by ssrc."""
        discovery = parse_discovery(data)
        if discovery is not None:
            if discovery.type != REQUEST:
                return None
            self.discoveries += 1
            return build_discovery(RESPONSE, discovery.ssrc, address[0], address[1])
        ssrc = rtp_ssrc(data)
        if ssrc is None:
            return None
        self.rtp_packets[ssrc] += 1
        self.rtp_total += 1
        self.judge.rtp(now_ns)
        total = self.rtp_total
        owner = next(
            (s.owner for s in self.sessions.values() if s.ssrc == ssrc and s.owner is not None),
            None,
        )
        due = self.injector.after_rtp(owner.number if owner else None, total)
        if due and owner is not None:
            owner.pending.extend(due)
            if self.on_change is not None:
                self.on_change()
        else:
            self.injector.pending.extend(due)  # no connection to act on yet: later
        return None

    # --- verdicts -------------------------------------------------------------------

    def finish(self, now_ns: int) -> list[Verdict]:
        for fault in self.injector.pending:
            self.judge.fault_not_fired(fault)
        self.injector.pending.clear()
        return self.judge.finish(now_ns)

    def session_for(self, server_id: str, session_id: str) -> VoiceSession | None:
        return self.sessions.get((server_id, session_id))


class VoiceState(enum.Enum):
    AWAIT_IDENTIFY = "await identify"
    READY = "ready"
    CLOSED = "closed"


class VoiceConnection:
    """One client connection to the voice face."""

    def __init__(
        self, replay: VoiceReplay, *, version: int | None = None, port: int | None = None
    ) -> None:
        self.replay = replay
        self.version = version  # ?v= of the URL
        self.port = port
        replay.connections += 1
        self.number = replay.connections
        self.state = VoiceState.AWAIT_IDENTIFY
        self.session: VoiceSession | None = None
        self.client_ops: Counter[int] = Counter()
        self.server_ops: Counter[int] = Counter()
        self.pending: list[VoiceFault] = []  # faults due (from UDP), carried out on tick
        self.close_with: int | None = None  # a close the main gateway asked for (leaving)
        self.offered_modes = ENCRYPTION_MODES
        self.last_seq = 0  # the last numbered message sent on this connection

    @property
    def closed(self) -> bool:
        return self.state is VoiceState.CLOSED

    # --- events ---------------------------------------------------------------------

    def start(self, now_ns: int) -> list[VoiceCommand]:
        """Connected: HELLO with the heartbeat interval (Voice Connections > Heartbeating)."""
        self.replay.judge.connection_opened(self.number, now_ns, self.port, self.version)
        hello = {"heartbeat_interval": self.replay.heartbeat_interval_ms}
        return self._out(VoiceOp.HELLO, hello, now_ns)

    def receive(self, data: str | bytes, now_ns: int) -> list[VoiceCommand]:
        if self.state is VoiceState.CLOSED:
            return []
        if isinstance(data, bytes):
            # DAVE's binary client messages (26, 28): this face negotiates no DAVE, so
            # they are read and left unanswered; before IDENTIFY, 4003.
            try:
                message = parse_binary(data, from_server=False)
            except ReplayerError:
                return self._close(DECODE_ERROR, "binary frame too short")
            if self.state is VoiceState.AWAIT_IDENTIFY:
                return self._close(NOT_AUTHENTICATED, "not authenticated")
            if message.op not in _CLIENT_OPS:
                return self._close(UNKNOWN_OPCODE, f"unknown opcode {message.op}")
            self.client_ops[message.op] += 1
            return []
        try:
            obj = json.loads(data)
        except ValueError:
            return self._close(DECODE_ERROR, "failed to decode payload")
        op = obj.get("op") if isinstance(obj, dict) else None
        if type(op) is not int or op not in _CLIENT_OPS:
            return self._close(UNKNOWN_OPCODE, f"unknown opcode {op!r}")
        d = obj.get("d")
        self.client_ops[op] += 1
        self.replay.judge.client_payload(self.number, op, d, now_ns)
        out = self._handle(op, d, now_ns)
        if not self.closed:
            for fault in self.replay.injector.after_client(self.number, op, self.client_ops[op]):
                out += self._inject(fault, now_ns)
        return out

    def tick(self, now_ns: int) -> list[VoiceCommand]:
        """Carry out faults that came due elsewhere (after an RTP packet), and a close
        the main gateway asked for."""
        out: list[VoiceCommand] = []
        while self.pending and self.state is not VoiceState.CLOSED:
            out += self._inject(self.pending.pop(0), now_ns)
        if self.close_with is not None and not self.closed:
            out += self._close(self.close_with, "disconnected")
        return out

    def next_wakeup_ns(self) -> int | None:
        return None

    def client_closed(self, code: int | None, now_ns: int) -> None:
        """The connection ended (``code``: the client's close code, None: no close frame
        or the server ended it)."""
        by_client = self.state is not VoiceState.CLOSED
        self.replay.judge.closed(self.number, now_ns, by_client=by_client, code=code)
        self.state = VoiceState.CLOSED
        if self.session is not None and self.session.owner is self:
            self.session.owner = None

    # --- payloads -------------------------------------------------------------------

    def _handle(self, op: int, d: Any, now_ns: int) -> list[VoiceCommand]:
        if op == VoiceOp.HEARTBEAT:  # answered in any state, the nonce echoed
            t, seq_ack = heartbeat_fields(d)
            self.replay.judge.heartbeat(self.number, seq_ack, self.last_seq)
            ack: Any = {"t": t} if isinstance(d, dict) else d
            return self._out(VoiceOp.HEARTBEAT_ACK, ack, now_ns)
        if self.state is VoiceState.AWAIT_IDENTIFY:
            if op == VoiceOp.IDENTIFY:
                return self._identify(d, now_ns)
            if op == VoiceOp.RESUME:
                return self._resume(d, now_ns)
            return self._close(NOT_AUTHENTICATED, "not authenticated")
        if op in (VoiceOp.IDENTIFY, VoiceOp.RESUME):
            return self._close(ALREADY_AUTHENTICATED, "already authenticated")
        if op == VoiceOp.SELECT_PROTOCOL:
            return self._select_protocol(d, now_ns)
        return []  # SPEAKING, DAVE_TRANSITION_READY, ...: noted, nothing to answer

    def _grant_ok(self, d: dict[str, Any]) -> bool:
        grant = self.replay.grants.get(str(d.get("server_id")))
        return grant is not None and d.get("token") == grant.token

    def _identify(self, d: Any, now_ns: int) -> list[VoiceCommand]:
        d = d if isinstance(d, dict) else {}
        if not self._grant_ok(d):
            return self._close(AUTHENTICATION_FAILED, "authentication failed")
        grant = self.replay.grants[str(d["server_id"])]
        if grant.user_id and str(d.get("user_id")) != grant.user_id:
            return self._close(AUTHENTICATION_FAILED, "authentication failed (user_id)")
        if grant.session_id and d.get("session_id") != grant.session_id:
            return self._close(AUTHENTICATION_FAILED, "authentication failed (session_id)")
        replay = self.replay
        number = len(replay.sessions) + 1
        key = hashlib.sha256(f"replayer-voice-key-{number}".encode()).digest()[:SECRET_KEY_BYTES]
        session = VoiceSession(
            number,
            grant.guild_id,
            str(d.get("session_id")),
            str(d.get("user_id")),
            grant.token,
            FIRST_SSRC + number - 1,
            list(key),
        )
        old = replay.sessions.get(session.key)
        if old is not None and old.owner is not None and old.owner is not self:
            old.resumable = False
        replay.sessions[session.key] = session
        self._attach(session)
        ip, port = replay.udp_address
        ready = {"ssrc": session.ssrc, "ip": ip, "port": port, "modes": list(self.offered_modes)}
        out = self._out(VoiceOp.READY, ready, now_ns)
        replay.judge.handshake_done(self.number, now_ns)
        return out

    def _resume(self, d: Any, now_ns: int) -> list[VoiceCommand]:
        d = d if isinstance(d, dict) else {}
        session = self.replay.session_for(str(d.get("server_id")), str(d.get("session_id")))
        if session is None or not session.resumable:
            return self._close(SESSION_NO_LONGER_VALID, "session no longer valid")
        if d.get("token") != session.token:
            return self._close(AUTHENTICATION_FAILED, "authentication failed")
        seq_ack = d.get("seq_ack")
        if type(seq_ack) is not int:
            seq_ack = -1
        buffered = [(seq, text) for seq, text in session.buffer if seq > seq_ack]
        oldest = session.buffer[0][0] if session.buffer else session.seq + 1
        if seq_ack < session.seq and oldest > seq_ack + 1:
            # Buffered Resume: a missed message no longer buffered ends the session.
            session.resumable = False
            return self._close(SESSION_NO_LONGER_VALID, "missed messages no longer buffered")
        previous = session.owner
        if previous is not None and previous is not self:
            previous.state = VoiceState.CLOSED  # the shell closes its socket, once woken
            if self.replay.on_change is not None:
                self.replay.on_change()
        self._attach(session)
        out = self._out(VoiceOp.RESUMED, None, now_ns)
        for seq, text in buffered:
            out.append(VoiceSend(text, json.loads(text)["op"], seq))
            self.last_seq = seq
        self.replay.judge.handshake_done(self.number, now_ns)
        return out

    def _select_protocol(self, d: Any, now_ns: int) -> list[VoiceCommand]:
        d = d if isinstance(d, dict) else {}
        if d.get("protocol") != "udp":
            return self._close(UNKNOWN_PROTOCOL, f"unknown protocol {d.get('protocol')!r}")
        data = d.get("data") if isinstance(d.get("data"), dict) else {}
        mode = data.get("mode")
        if mode not in self.offered_modes:
            return self._close(UNKNOWN_ENCRYPTION_MODE, f"unknown encryption mode {mode!r}")
        session = self.session
        assert session is not None
        session.mode = mode
        description = {
            "mode": mode,
            "secret_key": session.secret_key,
            "dave_protocol_version": 0,
            "audio_codec": "opus",
            "video_codec": None,
            "media_session_id": f"replayer-media-{session.number}",
        }
        return self._out(VoiceOp.SESSION_DESCRIPTION, description, now_ns)

    # --- faults ---------------------------------------------------------------------

    def _inject(self, fault: VoiceFault, now_ns: int) -> list[VoiceCommand]:
        session = self.session
        fired = Fired(fault, self.number, now_ns, session.key if session else None, self.last_seq)
        kind = fault.kind
        if kind is VoiceFaultKind.CLOSE:
            code = fault.code or 1000
            # Only 4015 leaves a session to RESUME (Voice Close Event Codes).
            if session is not None and voice_close_rule(code) is not VoiceReconnect.RESUME:
                session.resumable = False
            self.replay.judge.fault_fired(fired)
            return self._close(code, f"injected voice close {code}")
        if kind is VoiceFaultKind.DROP:
            self.replay.judge.fault_fired(fired)
            self._close(1006, "")
            return [Abort()]
        if kind is VoiceFaultKind.SERVER_UPDATE:
            grant = self.replay.grants.get(session.server_id if session else "")
            if session is None or grant is None:
                self.replay.judge.fault_not_fired(fault)
                return []
            if fault.update is ServerUpdate.NULL:
                d: dict[str, Any] = {
                    "token": grant.token,
                    "guild_id": grant.guild_id,
                    "endpoint": None,
                }
                # The voice server "has gone away": this session cannot be resumed.
                session.resumable = False
            else:
                if fault.update is ServerUpdate.NEW_ENDPOINT:
                    self.replay.move_endpoint()
                d = self.replay.grant(grant.guild_id, grant.user_id, grant.session_id)
                fired.token = d["token"]
                fired.port = int(str(d["endpoint"]).rpartition(":")[2])
            self.replay.main_outbox.append(("VOICE_SERVER_UPDATE", d))
            self.replay.judge.fault_fired(fired)
            if self.replay.on_change is not None:
                self.replay.on_change()
            return []
        if kind is VoiceFaultKind.DAVE_TRANSITION:
            self.replay.judge.fault_fired(fired)
            d = {"transition_id": fault.transition_id, "protocol_version": 0}
            return self._out(VoiceOp.DAVE_PREPARE_TRANSITION, d, now_ns, injected=True)
        self.replay.judge.fault_fired(fired)
        d = {"transition_id": fault.transition_id, "epoch": 2, "protocol_version": 1}
        return self._out(VoiceOp.DAVE_PREPARE_EPOCH, d, now_ns, injected=True)

    # --- output ---------------------------------------------------------------------

    def _attach(self, session: VoiceSession) -> None:
        self.session = session
        session.owner = self
        self.state = VoiceState.READY

    def _out(self, op: int, d: Any, now_ns: int, *, injected: bool = False) -> list[VoiceCommand]:
        """Send ``op``; numbered (``seq``) and buffered unless it is HELLO, an ACK or
        RESUMED; then the faults that message triggers."""
        session = self.session
        obj: dict[str, Any] = {"op": op, "d": d}
        seq: int | None = None
        if op not in _UNNUMBERED and session is not None:
            session.seq += 1
            seq = obj["seq"] = session.seq
            self.last_seq = seq
        text = json.dumps(obj, separators=(",", ":"))
        if seq is not None and session is not None:
            session.buffer.append((seq, text))
        out: list[VoiceCommand] = [VoiceSend(text, op, seq, injected)]
        self.server_ops[op] += 1
        for fault in self.replay.injector.after_server(self.number, op, self.server_ops[op]):
            if self.state is VoiceState.CLOSED:
                self.replay.judge.fault_not_fired(fault)
            else:
                out += self._inject(fault, now_ns)
        return out

    def _close(self, code: int, reason: str) -> list[VoiceCommand]:
        self.state = VoiceState.CLOSED
        if self.session is not None and self.session.owner is self:
            self.session.owner = None
        return [Close(code, reason)]
