"""Gateway opcodes under their Discord names, with the DSharpPlus names as aliases.

Discord docs: Topics > Opcodes and Status Codes > Gateway Opcodes. Opcodes this module
does not know stay plain ``int`` everywhere (recording, inspection, replay): use
:func:`opcode_name` to show one and :func:`as_opcode` to look one up without failing.
"""

from __future__ import annotations

import enum


class Direction(enum.IntEnum):
    """Who sent a frame. The values are the archive's encoding."""

    CLIENT = 0  # client -> gateway ("send" in Discord's docs)
    SERVER = 1  # gateway -> client ("receive")

    @property
    def label(self) -> str:
        return "client" if self is Direction.CLIENT else "server"


class Opcode(enum.IntEnum):
    """Gateway opcodes. Aliases (same value) carry the DSharpPlus names."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    VOICE_SERVER_PING = 5  # legacy: removed from the docs, still sent by old clients
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11
    GUILD_SYNC = 12  # undocumented; discord.py still knows it
    REQUEST_SOUNDBOARD_SOUNDS = 31
    REQUEST_CHANNEL_INFO = 43

    # DSharpPlus names (aliases: Opcode.PRESENCE is Opcode.PRESENCE_UPDATE).
    PRESENCE = 3
    VOICE_STATE = 4
    VOICE_PING = 5
    REQUEST_MEMBERS = 8
    INVALIDATE_SESSION = 9

    @property
    def sent_by(self) -> frozenset[Direction]:
        """Who may send this opcode (Gateway Opcodes table, "Client Action")."""
        return _SENT_BY[self]


_BOTH = frozenset({Direction.CLIENT, Direction.SERVER})
_CLIENT = frozenset({Direction.CLIENT})
_SERVER = frozenset({Direction.SERVER})
_SENT_BY: dict[Opcode, frozenset[Direction]] = {
    Opcode.DISPATCH: _SERVER,
    Opcode.HEARTBEAT: _BOTH,  # the gateway may ask for a heartbeat at any time
    Opcode.IDENTIFY: _CLIENT,
    Opcode.PRESENCE_UPDATE: _CLIENT,
    Opcode.VOICE_STATE_UPDATE: _CLIENT,
    Opcode.VOICE_SERVER_PING: _CLIENT,
    Opcode.RESUME: _CLIENT,
    Opcode.RECONNECT: _SERVER,
    Opcode.REQUEST_GUILD_MEMBERS: _CLIENT,
    Opcode.INVALID_SESSION: _SERVER,
    Opcode.HELLO: _SERVER,
    Opcode.HEARTBEAT_ACK: _SERVER,
    Opcode.GUILD_SYNC: _CLIENT,
    Opcode.REQUEST_SOUNDBOARD_SOUNDS: _CLIENT,
    Opcode.REQUEST_CHANNEL_INFO: _CLIENT,
}

_BY_NAME: dict[str, Opcode] = {name: member for name, member in Opcode.__members__.items()}


def as_opcode(op: int) -> Opcode | int:
    """The :class:`Opcode` for ``op``, or ``op`` itself when it is unknown."""
    try:
        return Opcode(op)
    except ValueError:
        return op


def opcode_name(op: int | None) -> str:
    """Discord's name for ``op``; an unknown opcode shows as its number."""
    if op is None:
        return "-"
    known = as_opcode(op)
    return known.name if isinstance(known, Opcode) else str(op)


def parse_opcode(text: str) -> int:
    """Read an opcode given by a user: a number, a Discord name or a DSharpPlus alias.

    Names are case-insensitive and may use ``-`` for ``_``. Raises ``ValueError``.
    """
    cleaned = text.strip()
    if cleaned.lstrip("-").isdigit():
        return int(cleaned)
    member = _BY_NAME.get(cleaned.upper().replace("-", "_"))
    if member is None:
        known = ", ".join(m.name for m in Opcode)
        raise ValueError(f"unknown opcode {text!r} (a number or one of: {known})")
    return int(member)
