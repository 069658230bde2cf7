"""The recorder's logic, free of mitmproxy: gateway connections and REST exchanges in,
archive records out, plus the rewrites that keep a client on the proxy.

The mitmproxy addon (addons/gateway_recorder.py) only translates hooks into calls here.
Every call is safe to make from a live proxy: a payload that cannot be decoded is
stored raw and flagged, never dropped, and the client still gets the upstream's bytes.

Rewrites (only with ``rewrite_base``, i.e. in reverse mode): the ``url`` of
``GET /gateway`` and ``/gateway/bot`` and READY's ``resume_gateway_url`` name Discord's
hosts; a reconnecting client would bypass the proxy. They are replaced by the proxy's own
address; a resume URL becomes ``<proxy>/_replayer/resume/<key>/`` so that
:meth:`GatewayRecorder.upstream_for` can route the resumed connection to the real host.
On a compressed connection the proxy then re-compresses the server's stream itself
(one changed message breaks the shared zlib/zstd context): the client receives the same
payloads, in a stream of the proxy's making. VOICE_SERVER_UPDATE's ``endpoint`` (a host and
port, no scheme) becomes ``<proxy host:port>/_replayer/voice/<key>``, routed to the real
voice server the same way.

Voice connections (Topics > Voice Connections) are recorded as their own kind: known at open
when their address is the endpoint of a VOICE_SERVER_UPDATE seen on a main gateway (or our
voice route), else recognised by their handshake (the server's first message is the voice
HELLO, op 8 with ``heartbeat_interval`` and no ``t``; or the client's first is a voice
IDENTIFY/RESUME with ``server_id``, ``session_id`` and ``token``), which a ``connection_info``
record then says. Not from a ``v=`` query: the main gateway has one too. Their frames are
read by the voice rules (``replayer.voice.messages``): op and ``seq``, text or binary.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    Headers,
    HttpRecord,
    Record,
)
from replayer.archive.writer import ArchiveWriter
from replayer.errors import CodecError
from replayer.gateway.close_codes import ABNORMAL_CLOSURE
from replayer.gateway.codec import DecodedMessage, FrameDecoder, FrameEncoder
from replayer.gateway.compression import Compression
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.opcodes import Direction, Opcode
from replayer.gateway.url import GatewayQuery
from replayer.voice.endpoint import (
    VoiceEndpoint,
    is_voice_handshake,
    is_voice_hello,
    parse_endpoint,
    url_address,
)
from replayer.voice.messages import VoiceMessageError, read_voice_message
from replayer.voice.opcodes import VoiceOp

DEFAULT_GATEWAY_HOSTS = frozenset({"gateway.discord.gg"})
# Server payloads from this size on are read for op, s and t only (FrameDecoder's
# head_only_bytes), READY excepted: its d is needed. Decoding a 1 MB GUILD_CREATE in
# full would cost the live connection milliseconds per message, for nothing stored.
HEAD_ONLY_BYTES = 4096
_FULL_EVENTS = frozenset({"READY"})
RESUME_PATH = "/_replayer/resume/"
VOICE_PATH = "/_replayer/voice/"
_GATEWAY_ROUTE = re.compile(r"^/api(?:/v\d+)?/gateway(?:/bot)?/?(?:\?.*)?$")
_API = re.compile(r"^/api(?:/v\d+)?/")
_GATEWAY_QUERY = re.compile(r"(^|&)(v|encoding)=")


def is_gateway(gateway_hosts: frozenset[str], host: str, path: str) -> bool:
    """A gateway WebSocket: one of the gateway hosts, a resume route of ours, or any host
    with the gateway's ``v=``/``encoding=`` query."""
    if host in gateway_hosts or path.startswith((RESUME_PATH, VOICE_PATH)):
        return True
    query = path.partition("?")[2]
    return bool(_GATEWAY_QUERY.search(query))


def is_rest(path: str) -> bool:
    """A Discord REST call (``/api/...``)."""
    return bool(_API.match(path))


@dataclass
class _Connection:
    conn_id: int
    encoding: Encoding
    server_decoder: FrameDecoder
    client_decoder: FrameDecoder
    reencoder: FrameEncoder | None  # set when the proxy re-compresses the server stream
    kind: ConnectionKind = ConnectionKind.GATEWAY
    frames_in: int = 0
    frames_out: int = 0
    session_id: str | None = None
    # Fix (see server_fallback): the client has been sent bytes of the proxy's own
    # re-compressed stream, so the upstream's bytes would now corrupt its stream; and
    # "pass-through for good", after a failure before that.
    own_stream: bool = False
    passthrough: bool = False


@dataclass
class ConnectionStats:
    """What the live display shows for one connection."""

    conn_id: int
    url: str
    frames_in: int
    frames_out: int
    closed: str | None = None


@dataclass
class GatewayRecorder:
    """Turns proxied traffic into archive records. One per archive."""

    writer: ArchiveWriter
    gateway_hosts: frozenset[str] = DEFAULT_GATEWAY_HOSTS
    record_rest: bool = True
    rewrite_base: str | None = None  # e.g. "ws://127.0.0.1:8080": enables the rewrites
    clock_ns: Callable[[], int] = time.monotonic_ns
    stats: dict[int, ConnectionStats] = field(default_factory=dict)
    gateway_upstream: str | None = None  # learned from /gateway answers when not configured
    _t0_ns: int = 0
    _next_conn_id: int = 1
    _conns: dict[object, _Connection] = field(default_factory=dict)
    _sessions: dict[str, int] = field(default_factory=dict)  # session_id -> conn_id with READY
    _resume_urls: dict[str, str] = field(default_factory=dict)  # key -> real resume URL
    # Voice servers named by VOICE_SERVER_UPDATE: their (host, port), their hosts, and the
    # route keys of the rewritten endpoints (reverse mode).
    _voice_addresses: set[tuple[str, int]] = field(default_factory=set)
    _voice_hosts: set[str] = field(default_factory=set)
    _voice_routes: dict[str, VoiceEndpoint] = field(default_factory=dict)
    _voice_sessions: dict[str, int] = field(default_factory=dict)  # session_id -> conn_id

    on_error: Callable[[str], None] = lambda message: None
    write_errors: int = 0  # records not written
    #: The failed write (a full disk) that stopped the recording, or None.
    write_failure: OSError | None = None

    def __post_init__(self) -> None:
        self._t0_ns = self.clock_ns()

    def _write(self, record: Record) -> None:
        """Write one record; a failure is reported, never raised: what the client gets
        must not depend on whether the archive could be written."""
        if self.write_failure is not None:
            self.write_errors += 1
            return
        try:
            self.writer.write(record)
        except OSError as exc:
            self.write_errors += 1
            self.stop_writing(exc)
        except Exception as exc:
            self.write_errors += 1
            self.on_error(f"cannot write {type(record).__name__}: {exc!r}")

    def stop_writing(self, exc: OSError) -> None:
        """The archive could not be written (a full disk, a file size limit): say so
        once, with the OS's reason, and write nothing more, since records after a gap
        would not make a consistent archive. The writer has cut the file back to its
        last complete record; the connections go on as before."""
        if self.write_failure is None:
            self.write_failure = exc
            self.on_error(
                f"cannot write {self.writer.path}: {exc.strerror or exc}: recording stopped, "
                "the connections go on; the archive keeps every record written before"
            )

    def _now(self) -> int:
        return max(0, self.clock_ns() - self._t0_ns)

    # --- which traffic -----------------------------------------------------------------

    def is_gateway(self, host: str, path: str) -> bool:
        """A connection to record: a main gateway, or a voice server a VOICE_SERVER_UPDATE named."""
        return is_gateway(self.gateway_hosts, host, path) or host.lower() in self._voice_hosts

    def is_rest(self, path: str) -> bool:
        return is_rest(path)

    def close_archive(self, timeout_s: float = 60.0) -> int | None:
        """Close the archive, at once (the worker's counterpart waits up to ``timeout_s``
        for its worker and returns its exit status)."""
        self.writer.close()
        return None

    def upstream_for(self, path: str) -> tuple[str, str] | None:
        """Where a proxied gateway connection must go: (base URL, path with query).

        ``/_replayer/resume/<key>/?v=10...`` goes to the recorded resume URL; anything else
        to the gateway upstream. None when neither is known.
        """
        if path.startswith(RESUME_PATH):
            key, _, rest = path[len(RESUME_PATH) :].partition("/")
            real = self._resume_urls.get(key)
            if real is not None:
                return real.rstrip("/"), "/" + rest
        if path.startswith(VOICE_PATH):
            rest = path[len(VOICE_PATH) :]
            cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
            endpoint = self._voice_routes.get(rest[:cut])
            if endpoint is not None:
                tail = rest[cut:]
                return endpoint.base_url, tail if tail.startswith("/") else "/" + tail
        if self.gateway_upstream is not None:
            return self.gateway_upstream.rstrip("/"), path
        return None

    # --- gateway connections -----------------------------------------------------------

    def _is_voice_url(self, url: str) -> bool:
        address = url_address(url)
        return address is not None and (address[0].lower(), address[1]) in self._voice_addresses

    def open(self, key: object, url: str, headers: Headers) -> int:
        query = GatewayQuery.from_url(url)
        kind = ConnectionKind.VOICE if self._is_voice_url(url) else ConnectionKind.GATEWAY
        try:
            encoding = Encoding.parse(query.encoding)
        except CodecError:
            encoding = Encoding.JSON
        try:
            compression = Compression.parse(query.compress)
        except CodecError:
            compression = Compression.NONE
        if kind is ConnectionKind.VOICE:  # JSON and binary frames, no transport compression
            encoding, compression = Encoding.JSON, Compression.NONE
        reencode = self.rewrite_base is not None and compression is not Compression.NONE
        conn = _Connection(
            conn_id=self._next_conn_id,
            encoding=encoding,
            server_decoder=FrameDecoder(
                encoding, compression, head_only_bytes=HEAD_ONLY_BYTES, full_events=_FULL_EVENTS
            ),
            # Clients never compress (Events > Gateway > Encoding and Compression).
            client_decoder=FrameDecoder(encoding, Compression.NONE, inflate_payloads=False),
            reencoder=FrameEncoder(encoding, compression) if reencode else None,
            kind=kind,
        )
        self._next_conn_id += 1
        self._conns[key] = conn
        resumes = None
        self._write(
            ConnectionRecord(
                conn.conn_id, self._now(), url, query.archived(), headers, None, resumes, kind
            )
        )
        self.stats[conn.conn_id] = ConnectionStats(conn.conn_id, url, 0, 0)
        return conn.conn_id

    def client_message(self, key: object, content: bytes, is_text: bool) -> None:
        """A message the client sent (forwarded unchanged)."""
        conn = self._conns.get(key)
        if conn is None:
            return
        if conn.frames_out == 0 and conn.kind is ConnectionKind.GATEWAY and is_text:
            self._recognise_voice(conn, content, is_voice_handshake)
        if conn.kind is ConnectionKind.VOICE:
            self._voice_frame(conn, Direction.CLIENT, content, is_text)
            conn.frames_out += 1
            self.stats[conn.conn_id].frames_out = conn.frames_out
            return
        decoder = conn.client_decoder
        for message in decoder.feed_text(content) if is_text else decoder.feed(content):
            self._frame(conn, Direction.CLIENT, message, is_text)
            conn.frames_out += 1
            self._learn_from_client(conn, message)
        self.stats[conn.conn_id].frames_out = conn.frames_out

    def server_message(self, key: object, content: bytes, is_text: bool) -> bytes | None:
        """A message from the upstream. Returns None to forward it unchanged, or the
        content the client must get instead; ``b""`` means "send nothing yet" (a
        re-compressed stream whose message is not complete)."""
        conn = self._conns.get(key)
        if conn is None:
            return None
        if conn.frames_in == 0 and conn.kind is ConnectionKind.GATEWAY and is_text:
            self._recognise_voice(conn, content, is_voice_hello)
        if conn.kind is ConnectionKind.VOICE:
            self._voice_frame(conn, Direction.SERVER, content, is_text)
            conn.frames_in += 1
            self.stats[conn.conn_id].frames_in = conn.frames_in
            return None
        decoder = conn.server_decoder
        messages = decoder.feed_text(content) if is_text else decoder.feed(content)
        replacement: list[bytes] = []
        changed = False
        for message in messages:
            raw_for_client, flags = message.raw, FrameFlag.NONE
            try:
                raw_for_client, flags = self._rewrite(conn, message)
                if conn.passthrough:  # the client gets the upstream's bytes: not rewritten
                    raw_for_client, flags = message.raw, FrameFlag.NONE
                self._frame(conn, Direction.SERVER, message, is_text, flags)
            except Exception as exc:
                # Fix: a bug in the rewrite or the record must not escape once the decoder
                # has been fed: the message would be lost from the client's stream (from
                # the proxy's re-compressed one, the whole stream). Keep it raw, forward it.
                self.on_error(f"server message kept raw: {exc!r}")
                self.store_raw(key, False, message.raw, is_text, repr(exc))
            if flags:
                changed = True
            conn.frames_in += 1
            replacement.append(raw_for_client)
        self.stats[conn.conn_id].frames_in = conn.frames_in
        if conn.passthrough:
            return None  # see server_fallback
        if conn.reencoder is not None and not is_text:
            if conn.server_decoder.broken is not None:
                return None  # the client's stream is as broken as ours: pass it through
            conn.own_stream = True
            out = b""
            for raw in replacement:
                frame, _ = conn.reencoder.encode_raw(raw)
                out += frame if isinstance(frame, bytes) else frame.encode()
            return out  # b"" when the message is not complete yet: the caller drops it
        if changed:
            return b"".join(replacement)  # uncompressed: one message per WebSocket message
        return None

    def server_fallback(self, key: object, content: bytes, is_text: bool) -> bytes | None:
        """What the client gets for a server message whose :meth:`server_message` raised
        (a bug; the caller archives the message raw): like ``server_message``'s answer.

        Fix: forwarding the upstream's bytes, as for any other failure, is right unless
        the proxy re-compresses this connection. Once the client has had bytes of the
        proxy's stream, one message from the upstream's zlib/zstd context breaks its
        decompressor for good (discord.py stops with a JSONDecodeError, hikari hangs): the
        message goes into the proxy's stream instead, unrecorded. Before that, the
        connection turns to pass-through for good: the client stays on the upstream's
        stream (READY is then not rewritten: a RESUME would bypass the proxy).
        """
        conn = self._conns.get(key)
        if conn is None or conn.reencoder is None or is_text:
            return None
        # Keep the decoder in step, so that the next messages are still recorded.
        messages = conn.server_decoder.feed(content)
        if conn.passthrough or not conn.own_stream:
            conn.passthrough = True
            return None
        if conn.server_decoder.broken is not None:
            return None  # nothing can mend the client's stream now
        out = b""
        for message in messages:
            frame, _ = conn.reencoder.encode_raw(message.raw)
            out += frame if isinstance(frame, bytes) else frame.encode()
        return out

    def store_raw(
        self, key: object, from_client: bool, content: bytes, is_text: bool, error: str
    ) -> None:
        """Keep a message that could not be handled (a bug elsewhere) as raw bytes."""
        conn = self._conns.get(key)
        if conn is None:
            return
        self._write(
            FrameRecord(
                conn.conn_id,
                self._now(),
                Direction.CLIENT if from_client else Direction.SERVER,
                FrameType.TEXT if is_text else FrameType.BINARY,
                content,
                None,
                None,
                None,
                len(content),
                FrameFlag.UNDECODED,
                error,
            )
        )

    def close(
        self, key: object, code: int | None, reason: str, closed_by_client: bool | None
    ) -> None:
        conn = self._conns.pop(key, None)
        if conn is None:
            return
        abrupt = code is None or code == ABNORMAL_CLOSURE  # 1006 is never on the wire
        closer = (
            None
            if closed_by_client is None
            else (Closer.CLIENT if closed_by_client else Closer.SERVER)
        )
        self._write(
            CloseRecord(
                conn.conn_id,
                self._now(),
                None if abrupt else code,
                reason or "",
                closer,
                not abrupt,
            )
        )
        self.stats[conn.conn_id].closed = (
            "dropped" if abrupt else f"{code} by {closer.name.lower() if closer else '?'}"
        )

    def _frame(
        self,
        conn: _Connection,
        direction: Direction,
        message: DecodedMessage,
        is_text: bool,
        flags: FrameFlag = FrameFlag.NONE,
    ) -> None:
        payload = message.payload
        if payload is None:
            flags |= FrameFlag.UNDECODED
        self._write(
            FrameRecord(
                conn.conn_id,
                self._now(),
                direction,
                FrameType.TEXT if is_text else FrameType.BINARY,
                message.raw,
                None if payload is None else payload.op,
                None if payload is None else payload.s,
                None if payload is None else payload.t,
                message.wire_size,
                flags,
                message.error,
            )
        )

    # --- voice connections ---------------------------------------------------------------

    def _recognise_voice(
        self, conn: _Connection, content: bytes, test: Callable[[Any], bool]
    ) -> None:
        """A connection's first text message: when ``test`` says it is the voice handshake,
        the connection is voice from now on (said in a connection_info record first, so that
        this message is read as voice too)."""
        try:
            obj = json.loads(content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return
        if test(obj):
            conn.kind = ConnectionKind.VOICE
            self._write(ConnectionInfoRecord(conn.conn_id, self._now(), kind=ConnectionKind.VOICE))

    def _voice_frame(
        self, conn: _Connection, direction: Direction, content: bytes, is_text: bool
    ) -> None:
        """One voice message: its op and seq, or kept raw (UNDECODED) with the reason."""
        op: int | None = None
        seq: int | None = None
        flags, error = FrameFlag.NONE, None
        try:
            head = read_voice_message(
                content, binary=not is_text, from_server=direction is Direction.SERVER
            )
            op, seq = head.op, head.seq
        except VoiceMessageError as exc:
            flags, error = FrameFlag.UNDECODED, str(exc)
        frame_type = FrameType.TEXT if is_text else FrameType.BINARY
        self._write(
            FrameRecord(
                conn.conn_id, self._now(), direction, frame_type, content, op, seq, None,
                len(content), flags, error,
            )
        )  # fmt: skip
        if direction is Direction.CLIENT and is_text and op in (VoiceOp.IDENTIFY, VoiceOp.RESUME):
            self._learn_voice_session(conn, content, op)

    def _learn_voice_session(self, conn: _Connection, content: bytes, op: int) -> None:
        """IDENTIFY: this connection holds the voice session; RESUME: which one it resumes."""
        try:
            d = json.loads(content).get("d")
        except (ValueError, UnicodeDecodeError, RecursionError, AttributeError):
            return
        session_id = d.get("session_id") if isinstance(d, dict) else None
        if not isinstance(session_id, str):
            return
        if op == VoiceOp.IDENTIFY:
            self._voice_sessions[session_id] = conn.conn_id
            return
        resumed = self._voice_sessions.get(session_id)
        if resumed is not None and resumed != conn.conn_id:
            self._write(ConnectionInfoRecord(conn.conn_id, self._now(), resumes=resumed))
        self._voice_sessions[session_id] = conn.conn_id

    def _voice_server_update(
        self, conn: _Connection, message: DecodedMessage
    ) -> tuple[bytes, FrameFlag]:
        """Learn the voice server; with rewriting on, point the endpoint at the proxy's route."""
        payload = message.payload
        d = payload.d if payload is not None else None
        endpoint = parse_endpoint(d.get("endpoint")) if isinstance(d, dict) else None
        if endpoint is None:  # null: no voice server until the next update
            return message.raw, FrameFlag.NONE
        self._voice_addresses.add((endpoint.host, endpoint.port))
        self._voice_hosts.add(endpoint.host)
        if self.rewrite_base is None:
            return message.raw, FrameFlag.NONE
        key = next((k for k, e in self._voice_routes.items() if e == endpoint), None)
        if key is None:
            key = f"v{len(self._voice_routes) + 1}"
            self._voice_routes[key] = endpoint
        proxy = self.rewrite_base.rstrip("/").partition("://")[2]
        obj: Any = decode_payload(message.raw, conn.encoding)
        obj["d"]["endpoint"] = f"{proxy}{VOICE_PATH}{key}"
        return encode_payload(obj, conn.encoding), FrameFlag.REWRITTEN

    def _learn_from_client(self, conn: _Connection, message: DecodedMessage) -> None:
        payload = message.payload
        if payload is None or not isinstance(payload.d, dict):
            return
        if payload.op == Opcode.IDENTIFY:
            shard = payload.d.get("shard")
            if (
                isinstance(shard, list)
                and len(shard) == 2
                and all(type(x) is int for x in shard)
                and 0 <= shard[0] < shard[1]
            ):
                self._write(
                    ConnectionInfoRecord(conn.conn_id, self._now(), shard=(shard[0], shard[1]))
                )
        elif payload.op == Opcode.RESUME:
            session_id = payload.d.get("session_id")
            if isinstance(session_id, str):
                resumed = self._sessions.get(session_id)
                if resumed is not None and resumed != conn.conn_id:
                    self._write(
                        ConnectionInfoRecord(
                            conn.conn_id, self._now(), resumes=resumed, session_id=session_id
                        )
                    )

    def _rewrite(self, conn: _Connection, message: DecodedMessage) -> tuple[bytes, FrameFlag]:
        """READY: remember the session; with rewriting on, point resume_gateway_url here.
        VOICE_SERVER_UPDATE: the same for the voice endpoint."""
        payload = message.payload
        if payload is not None and payload.t == "VOICE_SERVER_UPDATE":
            return self._voice_server_update(conn, message)
        if payload is None or payload.t != "READY" or not isinstance(payload.d, dict):
            return message.raw, FrameFlag.NONE
        d = payload.d
        session_id = d.get("session_id")
        if isinstance(session_id, str):
            self._sessions[session_id] = conn.conn_id
            self._write(ConnectionInfoRecord(conn.conn_id, self._now(), session_id=session_id))
        real = d.get("resume_gateway_url")
        if self.rewrite_base is None or not isinstance(real, str):
            return message.raw, FrameFlag.NONE
        key = f"s{len(self._resume_urls) + 1}"
        self._resume_urls[key] = real
        obj: Any = decode_payload(message.raw, conn.encoding)
        obj["d"]["resume_gateway_url"] = f"{self.rewrite_base.rstrip('/')}{RESUME_PATH}{key}/"
        return encode_payload(obj, conn.encoding), FrameFlag.REWRITTEN

    # --- REST --------------------------------------------------------------------------

    def http(
        self,
        method: str,
        host: str,
        path: str,
        status: int,
        request_headers: Headers,
        response_headers: Headers,
        request_body: bytes,
        response_body: bytes,
    ) -> bytes | None:
        """Record a REST exchange. Returns a rewritten body for the client, or None."""
        if self.record_rest:
            self._write(
                HttpRecord(
                    self._now(),
                    method,
                    host,
                    path,
                    status,
                    request_headers,
                    response_headers,
                    request_body,
                    response_body,
                )
            )
        if not (_GATEWAY_ROUTE.match(path) and status == 200):
            return None
        try:
            body = json.loads(response_body)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            return None
        if self.gateway_upstream is None:
            self.gateway_upstream = body["url"]
        if self.rewrite_base is None:
            return None
        body["url"] = self.rewrite_base.rstrip("/")
        return json.dumps(body, separators=(",", ":")).encode()
