"""``fitted`` with IntEnum fields: constant time, as for plain ints."""

from __future__ import annotations

from replayer.archive.records import FrameRecord, FrameType, fitted
from replayer.gateway.opcodes import Direction, Opcode


def test_an_intenum_op_fits_at_once() -> None:
    record = FrameRecord(1, 0, Direction.SERVER, FrameType.TEXT, b"{}", Opcode.DISPATCH, 1, "X", 2)
    assert fitted(record) is None  # used to walk a range of 2**64 ints
    too_big = FrameRecord(1, 0, Direction.SERVER, FrameType.TEXT, b"{}", 1 << 64, 1, "X", 2)
    fit = fitted(too_big)
    assert isinstance(fit, FrameRecord)
    assert fit.op is None
