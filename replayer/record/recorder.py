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
payloads, in a stream of the proxy's making.
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

DEFAULT_GATEWAY_HOSTS = frozenset({"gateway.discord.gg"})
# Server payloads from this size on are read for op, s and t only (FrameDecoder's
# head_only_bytes), READY excepted: its d is needed. Decoding a 1 MB GUILD_CREATE in
# full would cost the live connection milliseconds per message, for nothing stored.
HEAD_ONLY_BYTES = 4096
_FULL_EVENTS = frozenset({"READY"})
RESUME_PATH = "/_replayer/resume/"
_GATEWAY_ROUTE = re.compile(r"^/api(?:/v\d+)?/gateway(?:/bot)?/?(?:\?.*)?$")
_API = re.compile(r"^/api(?:/v\d+)?/")
_GATEWAY_QUERY = re.compile(r"(^|&)(v|encoding)=")


def is_gateway(gateway_hosts: frozenset[str], host: str, path: str) -> bool:
    """A gateway WebSocket: one of the gateway hosts, a resume route of ours, or any host
    with the gateway's ``v=``/``encoding=`` query."""
    if host in gateway_hosts or path.startswith(RESUME_PATH):
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
        return is_gateway(self.gateway_hosts, host, path)

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
        if self.gateway_upstream is not None:
            return self.gateway_upstream.rstrip("/"), path
        return None

    # --- gateway connections -----------------------------------------------------------

    def open(self, key: object, url: str, headers: Headers) -> int:
        query = GatewayQuery.from_url(url)
        try:
            encoding = Encoding.parse(query.encoding)
        except CodecError:
            encoding = Encoding.JSON
        try:
            compression = Compression.parse(query.compress)
        except CodecError:
            compression = Compression.NONE
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
        )
        self._next_conn_id += 1
        self._conns[key] = conn
        resumes = None
        self._write(
            ConnectionRecord(
                conn.conn_id, self._now(), url, query.archived(), headers, None, resumes
            )
        )
        self.stats[conn.conn_id] = ConnectionStats(conn.conn_id, url, 0, 0)
        return conn.conn_id

    def client_message(self, key: object, content: bytes, is_text: bool) -> None:
        """A message the client sent (forwarded unchanged)."""
        conn = self._conns.get(key)
        if conn is None:
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
        """READY: remember the session; with rewriting on, point resume_gateway_url here."""
        payload = message.payload
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
