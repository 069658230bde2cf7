"""Gateway close codes and what a client must do after each.

Discord docs: Topics > Opcodes and Status Codes > Gateway Close Event Codes. Codes this
module does not know stay plain ``int``; :func:`may_reconnect` answers for any code.
"""

from __future__ import annotations

import enum


class CloseCode(enum.IntEnum):
    """Close codes the gateway sends, under Discord's names."""

    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014

    @property
    def can_reconnect(self) -> bool:
        """The "Reconnect" column of the close code table."""
        return self not in _FATAL

    @property
    def needs_new_session(self) -> bool:
        """After these the session is gone: reconnect, then IDENTIFY (not RESUME)."""
        return self in _NEW_SESSION


_FATAL = frozenset(
    {
        CloseCode.AUTHENTICATION_FAILED,
        CloseCode.INVALID_SHARD,
        CloseCode.SHARDING_REQUIRED,
        CloseCode.INVALID_API_VERSION,
        CloseCode.INVALID_INTENTS,
        CloseCode.DISALLOWED_INTENTS,
    }
)
_NEW_SESSION = frozenset({CloseCode.INVALID_SEQ, CloseCode.SESSION_TIMED_OUT})

# WebSocket close codes (RFC 6455 section 7.4.1) that matter here.
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
ABNORMAL_CLOSURE = 1006  # never on the wire: "the connection dropped without a close frame"


def may_reconnect(code: int | None) -> bool:
    """May a client reconnect after the gateway closed with ``code``?

    Unknown and non-Discord codes (1000, 1006, ...) allow a reconnect; ``None`` means the
    connection dropped without a close frame, which also does (Gateway > Resuming).
    """
    if code is None:
        return True
    try:
        return CloseCode(code).can_reconnect
    except ValueError:
        return True


def client_close_ends_session(code: int | None) -> bool:
    """A client closing with 1000 or 1001 ends its session; any other code keeps it
    resumable (Gateway > Disconnections)."""
    return code in (NORMAL_CLOSURE, GOING_AWAY)


def close_code_name(code: int | None) -> str:
    """A readable name for a close code, or its number."""
    if code is None:
        return "-"
    try:
        return CloseCode(code).name
    except ValueError:
        return {
            NORMAL_CLOSURE: "NORMAL",
            GOING_AWAY: "GOING_AWAY",
            ABNORMAL_CLOSURE: "ABNORMAL",
        }.get(code, str(code))
