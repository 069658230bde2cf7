"""Opcodes (with the DSharpPlus aliases) and close codes."""

from __future__ import annotations

import pytest

from replayer.gateway.close_codes import (
    CloseCode,
    client_close_ends_session,
    close_code_name,
    may_reconnect,
)
from replayer.gateway.opcodes import Direction, Opcode, as_opcode, opcode_name, parse_opcode


@pytest.mark.parametrize(
    ("alias", "discord_name"),
    [
        (Opcode.INVALIDATE_SESSION, Opcode.INVALID_SESSION),
        (Opcode.PRESENCE, Opcode.PRESENCE_UPDATE),
        (Opcode.VOICE_STATE, Opcode.VOICE_STATE_UPDATE),
        (Opcode.VOICE_PING, Opcode.VOICE_SERVER_PING),
        (Opcode.REQUEST_MEMBERS, Opcode.REQUEST_GUILD_MEMBERS),
    ],
)
def test_aliases_are_the_same_member(alias: Opcode, discord_name: Opcode) -> None:
    assert alias is discord_name
    assert alias.name == discord_name.name  # shown under Discord's name


def test_values_follow_discord_docs() -> None:
    assert [int(op) for op in Opcode] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 31, 43]


def test_unknown_opcodes_stay_int() -> None:
    assert as_opcode(10) is Opcode.HELLO
    unknown = as_opcode(99)
    assert unknown == 99
    assert type(unknown) is int
    assert opcode_name(99) == "99"
    assert opcode_name(9) == "INVALID_SESSION"
    assert opcode_name(None) == "-"


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("10", 10),
        ("99", 99),
        (" 7 ", 7),
        ("hello", 10),
        ("HEARTBEAT_ACK", 11),
        ("heartbeat-ack", 11),
        ("invalidate_session", 9),
        ("request-members", 8),
        ("REQUEST_SOUNDBOARD_SOUNDS", 31),
    ],
)
def test_parse_opcode(text: str, op: int) -> None:
    assert parse_opcode(text) == op


def test_parse_opcode_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown opcode 'bogus'"):
        parse_opcode("bogus")


def test_sent_by() -> None:
    assert Opcode.HEARTBEAT.sent_by == {Direction.CLIENT, Direction.SERVER}
    assert Opcode.IDENTIFY.sent_by == {Direction.CLIENT}
    assert Opcode.INVALIDATE_SESSION.sent_by == {Direction.SERVER}
    assert Direction.CLIENT.label == "client"


@pytest.mark.parametrize(
    ("code", "reconnect", "new_session"),
    [
        (CloseCode.UNKNOWN_ERROR, True, False),
        (CloseCode.DECODE_ERROR, True, False),
        (CloseCode.AUTHENTICATION_FAILED, False, False),
        (CloseCode.INVALID_SEQ, True, True),
        (CloseCode.RATE_LIMITED, True, False),
        (CloseCode.SESSION_TIMED_OUT, True, True),
        (CloseCode.INVALID_SHARD, False, False),
        (CloseCode.SHARDING_REQUIRED, False, False),
        (CloseCode.INVALID_API_VERSION, False, False),
        (CloseCode.INVALID_INTENTS, False, False),
        (CloseCode.DISALLOWED_INTENTS, False, False),
    ],
)
def test_close_codes(code: CloseCode, reconnect: bool, new_session: bool) -> None:
    assert code.can_reconnect is reconnect
    assert code.needs_new_session is new_session
    assert may_reconnect(int(code)) is reconnect


@pytest.mark.parametrize("code", [None, 1000, 1001, 1006, 3000, 4006, 4200, 4999])
def test_unknown_close_codes_may_reconnect(code: int | None) -> None:
    assert may_reconnect(code)


def test_client_close_and_names() -> None:
    assert client_close_ends_session(1000)
    assert client_close_ends_session(1001)
    assert not client_close_ends_session(4000)
    assert not client_close_ends_session(None)
    assert close_code_name(4004) == "AUTHENTICATION_FAILED"
    assert close_code_name(1006) == "ABNORMAL"
    assert close_code_name(4321) == "4321"
    assert close_code_name(None) == "-"
