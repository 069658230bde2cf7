"""Voice gateway opcodes (Opcodes and Status Codes > Voice > Voice Opcodes).

The voice gateway has its own table: op 2 is READY here, op 8 HELLO, op 9 RESUMED. Opcodes 21-31
belong to DAVE, Discord's end-to-end encryption (Voice Connections > End-to-End Encryption (DAVE
Protocol)); 25-30 travel as binary frames (``frames.py``).
"""

from __future__ import annotations

import enum


class VoiceOp(enum.IntEnum):
    """A voice gateway opcode, under its Discord name."""

    IDENTIFY = 0  # client: begin a voice websocket connection
    SELECT_PROTOCOL = 1  # client: select the voice protocol (udp, address, port, mode)
    READY = 2  # server: ssrc, UDP ip/port, encryption modes
    HEARTBEAT = 3  # client: keep the connection alive ({t, seq_ack} since v8)
    SESSION_DESCRIPTION = 4  # server: the mode and secret key
    SPEAKING = 5  # both: the client's speaking mode
    HEARTBEAT_ACK = 6  # server: echoes the heartbeat's t
    RESUME = 7  # client: resume a connection
    HELLO = 8  # server: the heartbeat interval
    RESUMED = 9  # server: the resume succeeded
    CLIENTS_CONNECT = 11  # server: user ids that connected
    CLIENT_DISCONNECT = 13  # server: a user disconnected
    DAVE_PREPARE_TRANSITION = 21  # server: a downgrade to transport-only encryption is coming
    DAVE_EXECUTE_TRANSITION = 22  # server: execute a previously announced transition
    DAVE_TRANSITION_READY = 23  # client: ready for the announced transition (its id)
    DAVE_PREPARE_EPOCH = 24  # server: a protocol version or group change is coming
    DAVE_MLS_EXTERNAL_SENDER = 25  # server, binary: the MLS external sender
    DAVE_MLS_KEY_PACKAGE = 26  # client, binary: the client's MLS key package
    DAVE_MLS_PROPOSALS = 27  # server, binary: MLS proposals to append or revoke
    DAVE_MLS_COMMIT_WELCOME = 28  # client, binary: an MLS commit with an optional welcome
    DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION = 29  # server, binary: the MLS commit to process
    DAVE_MLS_WELCOME = 30  # server, binary: the MLS welcome to the group
    DAVE_MLS_INVALID_COMMIT_WELCOME = 31  # client: flag an invalid commit or welcome


#: The opcodes that travel as binary frames (Voice Connections > Voice Gateway > Binary Messages).
BINARY_OPS: frozenset[int] = frozenset(range(25, 31))

#: Who sends each opcode: "client", "server" or "both".
SENDER: dict[int, str] = {
    VoiceOp.IDENTIFY: "client",
    VoiceOp.SELECT_PROTOCOL: "client",
    VoiceOp.READY: "server",
    VoiceOp.HEARTBEAT: "client",
    VoiceOp.SESSION_DESCRIPTION: "server",
    VoiceOp.SPEAKING: "both",
    VoiceOp.HEARTBEAT_ACK: "server",
    VoiceOp.RESUME: "client",
    VoiceOp.HELLO: "server",
    VoiceOp.RESUMED: "server",
    VoiceOp.CLIENTS_CONNECT: "server",
    VoiceOp.CLIENT_DISCONNECT: "server",
    VoiceOp.DAVE_PREPARE_TRANSITION: "server",
    VoiceOp.DAVE_EXECUTE_TRANSITION: "server",
    VoiceOp.DAVE_TRANSITION_READY: "client",
    VoiceOp.DAVE_PREPARE_EPOCH: "server",
    VoiceOp.DAVE_MLS_EXTERNAL_SENDER: "server",
    VoiceOp.DAVE_MLS_KEY_PACKAGE: "client",
    VoiceOp.DAVE_MLS_PROPOSALS: "server",
    VoiceOp.DAVE_MLS_COMMIT_WELCOME: "client",
    VoiceOp.DAVE_MLS_ANNOUNCE_COMMIT_TRANSITION: "server",
    VoiceOp.DAVE_MLS_WELCOME: "server",
    VoiceOp.DAVE_MLS_INVALID_COMMIT_WELCOME: "client",
}


def voice_op_name(op: int | None) -> str:
    """The Discord name of a voice opcode, or ``"op N"`` for one the docs do not list."""
    if op is None:
        return "-"
    try:
        return VoiceOp(op).name
    except ValueError:
        return f"op {op}"
