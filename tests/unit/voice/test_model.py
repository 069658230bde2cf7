"""The voice model: opcode names, close-code rules, the binary frame layout."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.voice.close_codes import VoiceReconnect, voice_close_rule
from replayer.voice.frames import VoiceFrameError, build_binary, parse_binary
from replayer.voice.opcodes import BINARY_OPS, SENDER, VoiceOp, voice_op_name


def test_voice_opcodes_differ_from_the_main_gateway() -> None:
    assert voice_op_name(2) == "READY"
    assert voice_op_name(8) == "HELLO"
    assert voice_op_name(9) == "RESUMED"
    assert voice_op_name(10) == "op 10"
    assert set(SENDER) == set(VoiceOp)
    assert all(SENDER[op] in {"client", "server"} for op in BINARY_OPS)


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        (4015, VoiceReconnect.RESUME),
        (4006, VoiceReconnect.NEW_SESSION),
        (4014, VoiceReconnect.WAIT_FOR_SERVER_UPDATE),
        (4021, VoiceReconnect.WAIT_FOR_SERVER_UPDATE),
        (4022, VoiceReconnect.WAIT_FOR_SERVER_UPDATE),
        (4017, VoiceReconnect.STOP),
        (1006, VoiceReconnect.NEW_SESSION),
    ],
)
def test_close_code_rules(code: int, rule: VoiceReconnect) -> None:
    assert voice_close_rule(code) is rule


@given(st.integers(0, 255), st.binary(max_size=64), st.integers(0, 0xFFFF))
def test_binary_frames_round_trip(op: int, payload: bytes, seq: int) -> None:
    server = parse_binary(build_binary(op, payload, seq), from_server=True)
    assert (server.op, server.payload, server.seq) == (op, payload, seq)
    client = parse_binary(build_binary(op, payload), from_server=False)
    assert (client.op, client.payload, client.seq) == (op, payload, None)


def test_short_binary_frames_are_one_clear_error() -> None:
    with pytest.raises(VoiceFrameError, match="2 bytes"):
        parse_binary(b"\x00\x01", from_server=True)
    with pytest.raises(VoiceFrameError, match="0 bytes"):
        parse_binary(b"", from_server=False)
