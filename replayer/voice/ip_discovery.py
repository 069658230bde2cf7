"""UDP IP discovery (Voice Connections > IP Discovery): one 74-byte packet each way.

``[type: u16][length: u16 = 70][ssrc: u32][address: 64 bytes, NUL-padded ASCII][port: u16]``,
big-endian; type 0x1 is the client's request, 0x2 the server's response.
"""

from __future__ import annotations

from dataclasses import dataclass

PACKET_BYTES = 74
LENGTH = 70  # the packet minus its type and length fields
REQUEST = 0x1
RESPONSE = 0x2
ADDRESS_BYTES = 64


@dataclass(frozen=True, slots=True)
class Discovery:
    type: int
    ssrc: int
    address: str
    port: int


def parse_discovery(data: bytes) -> Discovery | None:
    """The discovery packet ``data`` is, or None if it is not one (wrong size, length or type)."""
    if len(data) != PACKET_BYTES:
        return None
    kind = int.from_bytes(data[0:2], "big")
    if kind not in (REQUEST, RESPONSE) or int.from_bytes(data[2:4], "big") != LENGTH:
        return None
    raw_address = data[8 : 8 + ADDRESS_BYTES].split(b"\0", 1)[0]
    try:
        address = raw_address.decode("ascii")
    except UnicodeDecodeError:
        return None
    return Discovery(
        kind, int.from_bytes(data[4:8], "big"), address, int.from_bytes(data[72:74], "big")
    )


def build_discovery(kind: int, ssrc: int, address: str = "", port: int = 0) -> bytes:
    """A 74-byte discovery packet (a request leaves address and port zero)."""
    encoded = address.encode("ascii")
    if len(encoded) >= ADDRESS_BYTES:
        raise ValueError(f"address {address!r} does not fit {ADDRESS_BYTES - 1} bytes")
    return (
        kind.to_bytes(2, "big")
        + LENGTH.to_bytes(2, "big")
        + (ssrc & 0xFFFFFFFF).to_bytes(4, "big")
        + encoded.ljust(ADDRESS_BYTES, b"\0")
        + (port & 0xFFFF).to_bytes(2, "big")
    )
