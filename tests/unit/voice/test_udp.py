"""IP discovery packets and the RTP header the replay reads (Voice Connections > IP Discovery;
Voice Packet Structure)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from replayer.voice.ip_discovery import (
    PACKET_BYTES,
    REQUEST,
    RESPONSE,
    build_discovery,
    parse_discovery,
)
from replayer.voice.rtp import rtp_ssrc
from replayer.voice.session import heartbeat_fields

ADDRESSES = st.text(alphabet="0123456789abcdef.:", max_size=63)


def test_a_request_as_discord_py_builds_it() -> None:
    packet = bytearray(74)  # discord.py's DiscordVoiceWebSocket.discover_ip
    struct.pack_into(">H", packet, 0, 1)
    struct.pack_into(">H", packet, 2, 70)
    struct.pack_into(">I", packet, 4, 1234)
    assert build_discovery(REQUEST, 1234) == bytes(packet)
    parsed = parse_discovery(bytes(packet))
    assert parsed is not None
    assert (parsed.type, parsed.ssrc, parsed.address, parsed.port) == (REQUEST, 1234, "", 0)


@given(st.integers(0, 2**32 - 1), ADDRESSES, st.integers(0, 65535))
def test_a_response_round_trips(ssrc: int, address: str, port: int) -> None:
    packet = build_discovery(RESPONSE, ssrc, address, port)
    assert len(packet) == PACKET_BYTES
    parsed = parse_discovery(packet)
    assert parsed is not None
    assert (parsed.type, parsed.ssrc, parsed.address, parsed.port) == (
        RESPONSE,
        ssrc,
        address,
        port,
    )
    # discord.py reads the address up to the first NUL from byte 8, the port from the end
    assert packet[8 : packet.index(0, 8)].decode() == address
    assert struct.unpack_from(">H", packet, len(packet) - 2)[0] == port


@given(st.binary(max_size=100))
def test_anything_else_is_not_a_discovery_packet(data: bytes) -> None:
    parsed = parse_discovery(data)
    if parsed is not None:
        assert len(data) == 74
        assert data[2:4] == b"\x00\x46"
        assert parsed.type in (REQUEST, RESPONSE)


def test_wrong_length_field_or_type_is_refused() -> None:
    good = build_discovery(REQUEST, 7)
    assert parse_discovery(good[:2] + b"\x00\x45" + good[4:]) is None
    assert parse_discovery(b"\x00\x03" + good[2:]) is None
    assert parse_discovery(good + b"\x00") is None


def test_rtp_ssrc() -> None:
    header = bytes([0x80, 0x78]) + (5).to_bytes(2, "big") + bytes(4) + (1001).to_bytes(4, "big")
    assert rtp_ssrc(header + b"opus") == 1001
    assert rtp_ssrc(header[:11]) is None  # too short
    assert rtp_ssrc(bytes([0x40]) + header[1:]) is None  # RTP version 1
    assert rtp_ssrc(bytes([0x80, 0xC8]) + header[2:]) is None  # RTCP sender report (200)
    assert rtp_ssrc(build_discovery(REQUEST, 1001)) is None  # version bits 0


@given(st.binary(max_size=40))
def test_rtp_ssrc_never_raises(data: bytes) -> None:
    ssrc = rtp_ssrc(data)
    assert ssrc is None or 0 <= ssrc < 2**32


def test_heartbeat_fields() -> None:
    assert heartbeat_fields({"t": 5, "seq_ack": 3}) == (5, 3)
    assert heartbeat_fields({"t": 5}) == (5, None)
    assert heartbeat_fields(17) == (17, None)  # below v8: a bare nonce
    assert heartbeat_fields({"t": "x", "seq_ack": True}) == (None, None)
    assert heartbeat_fields(None) == (None, None)
