"""What the replay reads of a voice RTP packet (Voice Connections > Transport Encryption and
Sending Voice): the fixed 12-byte RTP header, version 2, the sender's ssrc at bytes 8-11."""

from __future__ import annotations

RTP_HEADER_BYTES = 12
RTP_VERSION = 2


def rtp_ssrc(data: bytes) -> int | None:
    """The ssrc of an RTP packet (RFC 3550 section 5.1), None for anything else (RTCP's
    payload types 200-204 included: they are not audio)."""
    if len(data) < RTP_HEADER_BYTES or data[0] >> 6 != RTP_VERSION:
        return None
    if 72 <= data[1] & 0x7F <= 76:  # 200-204 with the marker bit: RTCP
        return None
    return int.from_bytes(data[8:12], "big")
