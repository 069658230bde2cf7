"""What one archive object may cost in memory, checked on its bytes before it is built.

msgpack caps the length of each array and map (``MAX_CONTAINER_LEN``, given to the
``Unpacker``) but not how many of them an object holds: 200 MB of nested empty arrays
decode to ~14 GB of Python lists. The reader therefore walks the msgpack structure of any
object that grows past ``SCAN_FROM_BYTES`` (:func:`check_object_cost`), without building
it, and refuses one whose values would take more than ``MAX_VALUE_COST_BYTES`` beyond its
binaries (payloads, which cost what they weigh). Smaller objects cannot cost more than
about 72 bytes per byte of file. docs/archive-format.md section 1 states the limits.
"""

from __future__ import annotations

import struct

from replayer.errors import ArchiveError
from replayer.portable import pread

# Arrays and maps hold at most this many elements (entries). Records have 12 fields at
# most, header pairs are HTTP headers (servers accept ~100), metadata is small.
MAX_CONTAINER_LEN = 1024
# An object whose bytes reach this before it is complete is walked by check_object_cost.
SCAN_FROM_BYTES = 128 << 10
# What the Python values of one object may take, binaries' bytes excepted.
MAX_VALUE_COST_BYTES = 16 << 20

# Estimated CPython sizes (3.12, 64-bit), rounded up: the object plus its slot in a parent.
_ARRAY_COST, _ARRAY_SLOT = 64, 8
_MAP_COST, _MAP_ENTRY = 72, 64
_STR_COST, _STR_PER_BYTE = 56, 4  # worst case: one astral character makes a str UCS-4
_SCALAR_COST = 32  # an int or float
_BIN_COST = 40  # a bytes object, its payload excepted

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

# First byte -> (size of the length field, cost kind) for the variable-length types.
# kind: "b" bin, "s" str, "e" ext (one type byte after the length), "a" array, "m" map.
_LENGTHED: dict[int, tuple[int, str]] = {
    0xC4: (1, "b"), 0xC5: (2, "b"), 0xC6: (4, "b"),
    0xC7: (1, "e"), 0xC8: (2, "e"), 0xC9: (4, "e"),
    0xD9: (1, "s"), 0xDA: (2, "s"), 0xDB: (4, "s"),
    0xDC: (2, "a"), 0xDD: (4, "a"), 0xDE: (2, "m"), 0xDF: (4, "m"),
}  # fmt: skip
# First byte -> bytes that follow it, for fixed-size scalars.
_FIXED = {
    0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext: type byte + data
}  # fmt: skip


class _Bytes:
    """Reads a file forward from an offset with ``pread`` (the file position stays)."""

    WINDOW = 1 << 20

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._base = offset  # file offset of _buf[0]
        self._buf = b""
        self.pos = offset

    def take(self, n: int) -> bytes | None:
        """The next ``n`` bytes, or None when the file ends first."""
        start = self.pos - self._base
        if start + n > len(self._buf):
            self._buf = pread(self._fd, max(n, self.WINDOW), self.pos)
            self._base, start = self.pos, 0
            if len(self._buf) < n:
                return None
        self.pos += n
        return self._buf[start : start + n]


def check_object_cost(fd: int, offset: int) -> None:
    """Walk the msgpack object at ``offset`` of ``fd`` and raise ``ArchiveError`` if its
    values would cost more than ``MAX_VALUE_COST_BYTES`` or a container is longer than
    ``MAX_CONTAINER_LEN``. Bytes that are not msgpack, or the end of the file, stop the
    walk quietly: the unpacker reports those as it always does."""
    src = _Bytes(fd, offset)
    cost = 0
    pending = 1  # values still to read, over every open container
    while pending:
        pending -= 1
        head = src.take(1)
        if head is None:
            return
        tag = head[0]
        if tag <= 0x7F or tag >= 0xE0 or tag in (0xC0, 0xC2, 0xC3):
            continue  # fixint, nil, bool: cached objects, the slot is counted by the parent
        n: int
        if 0x80 <= tag <= 0x9F:
            n, kind = tag & 0x0F, ("m" if tag < 0x90 else "a")
        elif 0xA0 <= tag <= 0xBF:
            n, kind = tag & 0x1F, "s"
        elif tag in _FIXED:
            cost += _SCALAR_COST
            if src.take(_FIXED[tag]) is None:
                return
            continue
        elif tag in _LENGTHED:
            size, kind = _LENGTHED[tag]
            field = src.take(size)
            if field is None:
                return
            n = field[0] if size == 1 else (_U16 if size == 2 else _U32).unpack(field)[0]
        else:
            return  # 0xc1: never valid msgpack
        if kind in "am":
            if n > MAX_CONTAINER_LEN:
                what = "an array" if kind == "a" else "a map"
                raise ArchiveError(
                    f"{what} of {n} elements at byte {src.pos}; the format allows "
                    f"{MAX_CONTAINER_LEN} at most"
                )
            if kind == "a":
                cost += _ARRAY_COST + _ARRAY_SLOT * n
                pending += n
            else:
                cost += _MAP_COST + _MAP_ENTRY * n
                pending += 2 * n
        else:
            if kind == "s":
                cost += _STR_COST + _STR_PER_BYTE * n
            else:
                cost += _BIN_COST
            skip = n + (1 if kind == "e" else 0)
            src.pos += skip  # the content itself is not needed: take() refills lazily
        if cost > MAX_VALUE_COST_BYTES:
            raise ArchiveError(
                f"an object whose values would take over {MAX_VALUE_COST_BYTES >> 20} MiB of "
                f"memory besides its binaries (found by byte {src.pos}); the format allows "
                f"no such record"
            )
