"""read_voice_message: the op and seq of a voice message, text or binary."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.errors import GatewayError
from replayer.voice.frames import build_binary
from replayer.voice.messages import VoiceHead, VoiceMessageError, read_voice_message


@given(op=st.integers(0, 255), payload=st.binary(max_size=64), seq=st.integers(0, 0xFFFF))
def test_binary_frames_give_their_header(op: int, payload: bytes, seq: int) -> None:
    server = build_binary(op, payload, seq)
    assert read_voice_message(server, binary=True, from_server=True) == VoiceHead(op, seq)
    client = build_binary(op, payload)
    assert read_voice_message(client, binary=True, from_server=False) == VoiceHead(op, None)


@given(
    op=st.integers(-(2**40), 2**40),
    seq=st.none() | st.integers(0, 2**40),
    d=st.none() | st.integers(),
)
def test_text_frames_give_op_and_seq(op: int, seq: int | None, d: int | None) -> None:
    obj: dict[str, object] = {"op": op, "d": d}
    if seq is not None:
        obj["seq"] = seq
    raw = json.dumps(obj).encode()
    for from_server in (True, False):
        assert read_voice_message(raw, binary=False, from_server=from_server) == VoiceHead(op, seq)


@pytest.mark.parametrize(
    ("raw", "binary", "from_server", "message"),
    [
        (b"\x00\x01", True, True, "binary server voice frame of 2 bytes"),
        (b"", True, False, "binary client voice frame of 0 bytes"),
        (b"[1]", False, True, "not a map"),
        (b'{"op": "2"}', False, True, "'op' is '2'"),
        (b'{"op": true}', False, True, "'op' is True"),
        (b'{"op": 2, "seq": 1.5}', False, True, "'seq' is 1.5"),
        (b'{"op": 2', False, True, "JSON"),
        (b"\xff", False, False, "UTF-8"),
    ],
)
def test_bad_messages_say_why(raw: bytes, binary: bool, from_server: bool, message: str) -> None:
    with pytest.raises(VoiceMessageError, match=message) as info:
        read_voice_message(raw, binary=binary, from_server=from_server)
    assert isinstance(info.value, GatewayError)
