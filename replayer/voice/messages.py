"""One voice gateway message read for what the archive stores of it: its opcode and ``seq``.

Voice Connections > Voice Gateway: text frames are JSON ``{"op": int, "d": any}`` and, on
server messages since gateway v8, ``"seq": int``; binary frames (the DAVE MLS opcodes 25-30) are
``[seq: u16][op: u8][payload]`` from the server and ``[op: u8][payload]`` from the client
(``frames.py``). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from replayer.errors import CodecError, GatewayError
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.voice.frames import VoiceFrameError, parse_binary


class VoiceMessageError(GatewayError):
    """A voice message that is not ``{op, d, seq?}`` JSON nor a binary frame with a header."""


@dataclass(frozen=True, slots=True)
class VoiceHead:
    """What a voice message says about itself: its opcode and sequence number."""

    op: int
    seq: int | None  # server messages (JSON "seq" or the binary header); None otherwise


def read_voice_message(raw: bytes, *, binary: bool, from_server: bool) -> VoiceHead:
    """The opcode and ``seq`` of one voice message; :class:`VoiceMessageError` if it has none.

    ``binary``: the WebSocket frame was binary (the layout of ``frames.py``); else JSON text.
    """
    if binary:
        try:
            message = parse_binary(raw, from_server=from_server)
        except VoiceFrameError as exc:
            raise VoiceMessageError(str(exc)) from None
        return VoiceHead(message.op, message.seq)
    try:
        obj = decode_payload(raw, Encoding.JSON)
    except CodecError as exc:
        raise VoiceMessageError(str(exc)) from None
    if not isinstance(obj, dict):
        raise VoiceMessageError(f"voice payload is a {type(obj).__name__}, not a map")
    op, seq = obj.get("op"), obj.get("seq")
    if type(op) is not int:
        raise VoiceMessageError(f"voice payload 'op' is {op!r}, not an integer")
    if seq is not None and type(seq) is not int:
        raise VoiceMessageError(f"voice payload 'seq' is {seq!r}, not an integer or null")
    return VoiceHead(op, seq)
