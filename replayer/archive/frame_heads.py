"""What a frame record's ``op``, ``s`` and ``t`` must be, by the kind of its connection.

A main-gateway payload is ``{op, d, s, t}`` in the connection's encoding (Events > Gateway
Events > Payload Structure). A voice payload (Topics > Voice Connections) is JSON ``{op, d,
seq?}`` or a binary frame ``[seq][op][payload]``: its record holds ``op``, ``s = seq`` and
``t = nil`` (docs/archive-format.md §3.3). Pure; errors are ``GatewayError``.
"""

from __future__ import annotations

from replayer.archive.records import ConnectionKind
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.payload import parse_payload
from replayer.voice.messages import read_voice_message

Head = tuple[int, int | None, str | None]


def frame_head(
    kind: ConnectionKind, raw: bytes, *, binary: bool, from_server: bool, encoding: Encoding
) -> Head:
    """``(op, s, t)`` of one decoded message of a connection of ``kind``."""
    if kind is ConnectionKind.VOICE:
        head = read_voice_message(raw, binary=binary, from_server=from_server)
        return head.op, head.seq, None
    payload = parse_payload(decode_payload(raw, encoding))
    return payload.op, payload.s, payload.t
