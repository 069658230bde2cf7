"""WebSocket frames <-> gateway payloads, for one connection and one direction.

A :class:`FrameDecoder` undoes transport compression (or per-payload zlib) and the
encoding; a :class:`FrameEncoder` does the reverse, choosing text or binary frames as
Discord does. Discord docs: Events > Gateway > Encoding and Compression.

Clients never compress what they send, so the client -> server direction always uses
``Compression.NONE`` (and ``inflate_payloads=False``), whatever the URL asks for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from replayer.errors import CodecError, GatewayError
from replayer.gateway.compression import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Compression,
    deflate_payload,
    inflate_payload,
    looks_like_zlib,
    make_compressor,
    make_decompressor,
)
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.payload import Payload, parse_payload


@dataclass(slots=True)
class DecodedMessage:
    """One gateway message read off the wire, decoded when possible (treat as immutable)."""

    raw: bytes  # the payload as the peer encoded it, after decompression
    payload: Payload | None  # None when it could not be decoded
    error: str | None  # why not, when payload is None
    wire_size: int  # bytes on the wire: the sum of the frames that carried it
    # True when only op, s and t were read (a large JSON payload; see FrameDecoder):
    # payload.d is then None, whatever the message holds.
    head_only: bool = False


# The head of a JSON payload: "op", "s" and "t" in any order, then "d" (one regex match).
_WS = rb"[ \t\n\r]*"
_MEMBER = (
    _WS + rb'"(op|s|t)"' + _WS + rb":" + _WS + rb'(null|-?\d{1,18}|"[A-Za-z0-9_]*")' + _WS + rb","
)
_HEAD = re.compile(_WS + rb"\{" + _MEMBER * 3 + _WS + rb'"d"' + _WS + rb":")


def read_json_head(raw: bytes) -> tuple[int, int | None, str | None] | None:
    """``(op, s, t)`` from a JSON payload that names all three before ``"d"`` and ends
    with ``}``, as Discord sends them (``{"t":...,"s":...,"op":0,"d":{...}}``); None for
    any other shape. Only the head is read: the rest is not validated."""
    match = _HEAD.match(raw)
    if match is None or (raw[-1:] != b"}" and not raw.rstrip(b" \t\n\r").endswith(b"}")):
        return None
    k1, v1, k2, v2, k3, v3 = match.groups()
    found = {k1: v1, k2: v2, k3: v3}
    if len(found) != 3:
        return None
    op, s, t = found[b"op"], found[b"s"], found[b"t"]
    if op == b"null" or op[0] == 0x22 or s[0] == 0x22 or (t != b"null" and t[0] != 0x22):
        return None  # 0x22: a string where a number belongs, or the reverse
    return (
        int(op),
        None if s == b"null" else int(s),
        None if t == b"null" else t[1:-1].decode("ascii"),
    )


class FrameDecoder:
    """Frames of one direction of one connection -> messages. Never raises.

    Recording must never lose a frame, so failures come back as messages with
    ``payload=None`` and ``error`` set:

    * a payload that is not valid JSON/ETF or not a gateway payload keeps its ``raw``
      (decompressed) bytes;
    * a corrupt compression stream yields one message whose ``raw`` is the compressed
      bytes not yet accounted for (the frames of the unfinished message and this one).
      The shared context is then lost: every later binary frame comes back as one message
      with its compressed bytes as ``raw`` and the original error, so nothing is dropped.

    Text frames are never compressed: they are decoded as they are, even on a connection
    with transport compression. With ``Compression.NONE`` a binary frame that
    :func:`looks_like_zlib` is a per-payload-compressed message and is inflated, unless
    ``inflate_payloads`` is false.

    ``head_only_bytes`` (for a recorder, which needs op, s and t but not ``d``): a JSON
    payload of at least that many bytes is read with :func:`read_json_head`, unless its
    event is in ``full_events``; parsing a 1 MB GUILD_CREATE in full costs milliseconds.
    A payload whose head does not have that shape is parsed in full.
    """

    def __init__(
        self,
        encoding: Encoding,
        compression: Compression,
        *,
        inflate_payloads: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        head_only_bytes: int | None = None,
        full_events: frozenset[str] = frozenset(),
    ) -> None:
        self.encoding = encoding
        self.compression = compression
        self._inflate_payloads = inflate_payloads
        self._max = max_message_size
        self._decompressor = make_decompressor(compression, max_message_size)
        self._pending: list[bytes] = []  # compressed frames of the unfinished message
        self._broken: str | None = None
        self._head_only_bytes = head_only_bytes if encoding is Encoding.JSON else None
        self._full_events = full_events

    @property
    def broken(self) -> str | None:
        """The error that broke the compression stream, or ``None``."""
        return self._broken

    def feed(self, frame: bytes | str) -> list[DecodedMessage]:
        """The messages this frame completes (zero or more)."""
        if isinstance(frame, str):
            return self.feed_text(frame.encode("utf-8", "surrogatepass"))
        data = bytes(frame)
        if self.compression is Compression.NONE:
            return [self._uncompressed(data)]
        if self._broken is not None:
            error = f"stream broken by an earlier frame: {self._broken}"
            return [DecodedMessage(data, None, error, len(data))]
        self._pending.append(data)
        try:
            messages = self._decompressor.feed(data)
        except CodecError as exc:
            raw = b"".join(self._pending)
            self._pending = []
            self._broken = str(exc)
            return [DecodedMessage(raw, None, self._broken, len(raw))]
        if not messages:
            return []
        wire = sum(map(len, self._pending))
        self._pending = []
        # Our decompressors complete at most one message per frame; should one ever
        # complete several, the frames count towards the first.
        return [
            self._decode(message, wire if index == 0 else 0)
            for index, message in enumerate(messages)
        ]

    def feed_text(self, data: bytes) -> list[DecodedMessage]:
        """The message a text frame carries, given as its (UTF-8) bytes."""
        return [self._decode(data, len(data))]

    def _uncompressed(self, data: bytes) -> DecodedMessage:
        # Discord docs: Events > Gateway > Encoding and Compression > Payload Compression:
        # with IDENTIFY compress=true only *some* messages are zlib streams; detect them.
        if self._inflate_payloads and looks_like_zlib(data):
            try:
                raw = inflate_payload(data, self._max)
            except CodecError as exc:
                return DecodedMessage(data, None, str(exc), len(data))
            return self._decode(raw, len(data))
        return self._decode(data, len(data))

    def _decode(self, raw: bytes, wire_size: int) -> DecodedMessage:
        head_only = self._head_only_bytes
        if head_only is not None and len(raw) >= head_only:
            head = read_json_head(raw)
            if head is not None and head[2] not in self._full_events:
                op, s, t = head
                return DecodedMessage(raw, Payload(op, None, s, t), None, wire_size, True)
        try:
            payload = parse_payload(decode_payload(raw, self.encoding))
        except GatewayError as exc:
            return DecodedMessage(raw, None, str(exc), wire_size)
        return DecodedMessage(raw, payload, None, wire_size)


class FrameEncoder:
    """Messages -> frames of one direction of one connection.

    Frames are binary when compressed or ETF and text for uncompressed JSON, as Discord
    sends them. With ``deflate_payloads`` (and no transport compression) each message is
    a complete zlib stream of its own, as after IDENTIFY ``compress: true``.
    """

    def __init__(
        self,
        encoding: Encoding,
        compression: Compression,
        *,
        deflate_payloads: bool = False,
    ) -> None:
        self.encoding = encoding
        self.compression = compression
        self._deflate_payloads = deflate_payloads
        self._compressor = make_compressor(compression)

    @property
    def deflate_payloads(self) -> bool:
        return self._deflate_payloads

    def encode_raw(self, raw: bytes) -> tuple[bytes | str, bool]:
        """``(frame, is_binary)`` for an already encoded payload."""
        if self.compression is not Compression.NONE:
            return self._compressor.compress(raw), True
        if self._deflate_payloads:
            return deflate_payload(raw), True
        if self.encoding is Encoding.ETF:
            return bytes(raw), True
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            # A text frame must be UTF-8 (RFC 6455 5.6): send bytes that are not as binary.
            return bytes(raw), True

    def encode_wire(self, raw: bytes) -> tuple[bytes, bool]:
        """:meth:`encode_raw` with the frame's bytes either way (text as UTF-8), for a
        shell that writes WebSocket frames itself."""
        if self.compression is Compression.NONE and not self._deflate_payloads:
            if self.encoding is Encoding.ETF:
                return bytes(raw), True
            if raw.isascii():  # the common case, checked far faster than a decode
                return bytes(raw), False
        frame, binary = self.encode_raw(raw)
        return (frame.encode("utf-8") if isinstance(frame, str) else frame), binary

    def encode(self, payload: Payload | Mapping[str, Any]) -> tuple[bytes | str, bool]:
        """``(frame, is_binary)`` for a payload."""
        obj = payload.to_obj() if isinstance(payload, Payload) else dict(payload)
        return self.encode_raw(encode_payload(obj, self.encoding))
