"""The voice gateway's binary frame layout (Voice Connections > Voice Gateway > Binary Messages).

Server to client: ``[seq: u16 big-endian][op: u8][payload]``; client to server:
``[op: u8][payload]``.
Text frames are JSON ``{"op", "d"}`` (``"seq"`` on server messages since gateway v8).
"""

from __future__ import annotations

from dataclasses import dataclass

from replayer.errors import ReplayerError


class VoiceFrameError(ReplayerError, ValueError):
    """A binary voice frame too short for its header."""


@dataclass(frozen=True, slots=True)
class BinaryVoiceMessage:
    op: int
    payload: bytes
    seq: int | None  # present on server messages only


def parse_binary(data: bytes, *, from_server: bool) -> BinaryVoiceMessage:
    """Split a binary voice frame into its sequence number, opcode and payload."""
    header = 3 if from_server else 1
    if len(data) < header:
        side = "server" if from_server else "client"
        raise VoiceFrameError(f"binary {side} voice frame of {len(data)} bytes (header {header})")
    if from_server:
        return BinaryVoiceMessage(data[2], bytes(data[3:]), int.from_bytes(data[0:2], "big"))
    return BinaryVoiceMessage(data[0], bytes(data[1:]), None)


def build_binary(op: int, payload: bytes, seq: int | None = None) -> bytes:
    """A binary voice frame: with ``seq`` for server to client, without for client to server."""
    if not 0 <= op <= 0xFF:
        raise VoiceFrameError(f"voice opcode {op} does not fit one byte")
    if seq is None:
        return bytes((op,)) + payload
    return (seq & 0xFFFF).to_bytes(2, "big") + bytes((op,)) + payload
