"""Runs of plain frame rows, read as columns: the fast way through a big archive.

Nearly every record of a big archive is a frame, and tools that look at every record
(``verify``, ``inspect --stats``, the replay's index) spent most of their time building
one Python object per field of each. :meth:`ArchiveReader.runs` instead hands them
:class:`FrameRun` s: up to a chunk's worth of consecutive frame rows whose fields were read
straight from the file's bytes by the C accelerator (``_fastrows.scan``), as columns.
A run holds only rows the reader would have made the same ``FrameRecord`` of
(:meth:`FrameRun.record` makes it); anything else -- other kinds, odd encodings, doubtful
fields, the end of the data -- is read by the reader's msgpack path, as it always was.
Without the accelerator (or with ``REPLAYER_PURE_PYTHON=1``) there are no runs, only
records.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from replayer.archive.records import FrameFlag, FrameRecord, FrameType
from replayer.gateway.opcodes import Direction

# A nil ``s`` in the s column.
NIL_S = -(1 << 63)
_DIRECTIONS = (Direction.CLIENT, Direction.SERVER)
_FRAME_TYPES = {1: FrameType.TEXT, 2: FrameType.BINARY}
_FLAGS = [FrameFlag(v) for v in range(16)]

Scan = Callable[[bytes, int, int, bool], tuple[int, int, bool, tuple[Any, ...]]]


def _load_scan() -> Scan | None:
    if os.environ.get("REPLAYER_PURE_PYTHON"):
        return None
    try:
        from replayer.archive import _fastrows
    except ImportError:  # built without a C compiler
        return None
    scan: Scan | None = getattr(_fastrows, "scan", None)  # an older build has none
    return scan


# (buf, start, base, check_json) -> (rows, stop, incomplete, columns); None: no C.
scan = _load_scan()


@dataclass(frozen=True, slots=True, eq=False)
class FrameRun:
    """``len(run)`` consecutive frame records, as columns (``memoryview`` s of ints, ``t``
    a list). ``first_index`` is the record index of the first (the header is record 0).
    ``s`` holds :data:`NIL_S` for a nil ``s``; ``json_ok[i]`` is 1 when the run was read
    with ``check_json`` and row i's payload is known to be a JSON map whose op, s and t are
    the row's (0: not known, decode it)."""

    first_index: int
    offsets: memoryview  # file offset where each record starts
    conn_id: memoryview
    t_ns: memoryview
    op: memoryview
    s: memoryview
    payload_offset: memoryview
    payload_len: memoryview
    wire_size: memoryview
    direction: bytes  # 0 client, 1 server
    frame_type: bytes
    flags: bytes
    json_ok: bytes
    dispatch: bytes  # 1: a server dispatch (op 0, a t), neither UNDECODED nor INJECTED
    t: list[str | None]
    _chunk: bytes  # the file's bytes from _chunk_base on: the payloads
    _chunk_base: int

    @classmethod
    def from_scan(
        cls, first_index: int, columns: tuple[Any, ...], chunk: bytes, chunk_base: int
    ) -> FrameRun:
        offsets, conn_id, t_ns, op, s, payload_offset, payload_len, wire_size = (
            memoryview(c).cast("q") for c in columns[:8]
        )
        direction, frame_type, flags, json_ok, dispatch, t = columns[8:14]
        return cls(
            first_index, offsets, conn_id, t_ns, op, s, payload_offset, payload_len,
            wire_size, direction, frame_type, flags, json_ok, dispatch, t, chunk, chunk_base,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.offsets)

    def payload(self, i: int) -> bytes:
        start = self.payload_offset[i] - self._chunk_base
        return self._chunk[start : start + self.payload_len[i]]

    def record(self, i: int) -> FrameRecord:
        """Row i as the ``FrameRecord`` the reader would have made of it."""
        s = self.s[i]
        return FrameRecord(
            conn_id=self.conn_id[i],
            t_ns=self.t_ns[i],
            direction=_DIRECTIONS[self.direction[i]],
            frame_type=_FRAME_TYPES[self.frame_type[i]],
            payload=self.payload(i),
            op=self.op[i],
            s=None if s == NIL_S else s,
            t=self.t[i],
            wire_size=self.wire_size[i],
            flags=_FLAGS[self.flags[i]],
            error=None,
        )
