"""Voice close event codes and what a client must do after each.

Opcodes and Status Codes > Voice > Voice Close Event Codes; Voice Connections > Resuming Voice
Connection. 4014, 4021 and 4022 say "should not reconnect": a client may connect again only after a
new VOICE_SERVER_UPDATE (Voice Connections > Retrieving Voice Server Information).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class VoiceReconnect(enum.StrEnum):
    """What the docs tell a client to do after a voice close code."""

    RESUME = "resume"  # op 7 RESUME with the last seq_ack (4015)
    NEW_SESSION = "new-session"  # a fresh IDENTIFY on a new connection (4006, 4009)
    WAIT_FOR_SERVER_UPDATE = "wait-for-server-update"  # only after a new VOICE_SERVER_UPDATE
    STOP = "stop"  # a client bug or a setting the client must change first


@dataclass(frozen=True, slots=True)
class VoiceCloseCode:
    code: int
    name: str
    meaning: str
    reconnect: VoiceReconnect


_ROWS: tuple[VoiceCloseCode, ...] = (
    VoiceCloseCode(4001, "Unknown opcode", "an invalid opcode was sent", VoiceReconnect.STOP),
    VoiceCloseCode(4002, "Failed to decode payload", "an invalid payload", VoiceReconnect.STOP),
    VoiceCloseCode(4003, "Not authenticated", "a payload before IDENTIFY", VoiceReconnect.STOP),
    VoiceCloseCode(
        4004, "Authentication failed", "the IDENTIFY token is wrong", VoiceReconnect.STOP
    ),
    VoiceCloseCode(4005, "Already authenticated", "more than one IDENTIFY", VoiceReconnect.STOP),
    VoiceCloseCode(
        4006, "Session no longer valid", "the session is gone", VoiceReconnect.NEW_SESSION
    ),
    VoiceCloseCode(4009, "Session timeout", "the session timed out", VoiceReconnect.NEW_SESSION),
    VoiceCloseCode(4011, "Server not found", "no such voice server", VoiceReconnect.STOP),
    VoiceCloseCode(
        4012, "Unknown protocol", "the protocol was not recognised", VoiceReconnect.STOP
    ),
    VoiceCloseCode(
        4014,
        "Disconnected",
        "channel deleted, kicked, voice server changed or main session dropped",
        VoiceReconnect.WAIT_FOR_SERVER_UPDATE,
    ),
    VoiceCloseCode(4015, "Voice server crashed", "try resuming", VoiceReconnect.RESUME),
    VoiceCloseCode(
        4016, "Unknown encryption mode", "the mode was not recognised", VoiceReconnect.STOP
    ),
    VoiceCloseCode(
        4017, "E2EE/DAVE protocol required", "the call requires DAVE", VoiceReconnect.STOP
    ),
    VoiceCloseCode(4020, "Bad request", "a malformed request", VoiceReconnect.STOP),
    VoiceCloseCode(
        4021,
        "Disconnected: Rate Limited",
        "rate limit exceeded",
        VoiceReconnect.WAIT_FOR_SERVER_UPDATE,
    ),
    VoiceCloseCode(
        4022,
        "Disconnected: Call Terminated",
        "channel deleted, voice server changed, etc.",
        VoiceReconnect.WAIT_FOR_SERVER_UPDATE,
    ),
)

VOICE_CLOSE_CODES: dict[int, VoiceCloseCode] = {row.code: row for row in _ROWS}


def voice_close_rule(code: int) -> VoiceReconnect:
    """What a client must do after ``code``; 1000-range and unknown codes: a new session."""
    row = VOICE_CLOSE_CODES.get(code)
    return row.reconnect if row is not None else VoiceReconnect.NEW_SESSION
