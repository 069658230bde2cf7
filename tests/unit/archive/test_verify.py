from __future__ import annotations

import pytest

from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    Query,
    Record,
)
from replayer.archive.verify import ArchiveChecker
from replayer.errors import ArchiveError
from replayer.gateway.opcodes import Direction

HELLO = b'{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}'
READY = b'{"op":0,"d":{},"s":1,"t":"READY"}'


def conn(conn_id: int = 1, t_ns: int = 0, resumes: int | None = None) -> ConnectionRecord:
    return ConnectionRecord(conn_id, t_ns, "wss://g/?v=10", Query(10), resumes=resumes)


def frame(
    raw: bytes, op: int | None, s: int | None = None, t: str | None = None, **kw: object
) -> FrameRecord:
    fields: dict[str, object] = {
        "conn_id": 1, "t_ns": 5, "direction": Direction.SERVER, "frame_type": FrameType.TEXT,
        "payload": raw, "op": op, "s": s, "t": t, "wire_size": len(raw),
    }  # fmt: skip
    fields.update(kw)
    return FrameRecord(**fields)  # type: ignore[arg-type]


def check_all(records: list[Record]) -> ArchiveChecker:
    checker = ArchiveChecker()
    for record in records:
        checker.check(record)
    return checker


def test_good_session_passes() -> None:
    checker = check_all(
        [
            conn(),
            frame(HELLO, 10),
            frame(READY, 0, 1, "READY"),
            frame(b"\x78\x9c garbage", None, flags=FrameFlag.UNDECODED),
            CloseRecord(1, 9, 4000, "", None, clean=True),
            conn(2, 10, resumes=1),
            ConnectionInfoRecord(2, 11, shard=(0, 1), resumes=1, session_id="abc"),
        ]
    )
    assert (checker.connections, checker.frames, checker.closes) == (2, 3, 1)


@pytest.mark.parametrize(
    ("records", "field", "message"),
    [
        ([conn(t_ns=10), frame(HELLO, 10, t_ns=5)], "t_ns", "goes back"),
        ([conn(), conn()], "connection.conn_id", "used twice"),
        ([conn(resumes=3)], "connection.resumes", "does not come before"),
        ([frame(HELLO, 10)], "frame.conn_id", "unknown connection 1"),
        ([conn(), CloseRecord(1, 1, 1000), frame(HELLO, 10)], "frame.conn_id", "was closed"),
        ([conn(), frame(b"{nope", 10)], "frame.payload", "does not decode"),
        ([conn(), frame(HELLO, 11)], "frame.op", "stored op=11"),
        ([conn(), frame(READY, 0, 2, "READY")], "frame.s", "stored s=2"),
        ([conn(), frame(READY, 0, 1, "RESUMED")], "frame.t", "stored t='RESUMED'"),
        ([conn(), frame(b"x", 1, flags=FrameFlag.UNDECODED)], "frame.op", "undecoded"),
        ([ConnectionInfoRecord(4, 0)], "connection_info.conn_id", "unknown connection 4"),
    ],
)
def test_each_rule_can_fail(records: list[Record], field: str, message: str) -> None:
    with pytest.raises(ArchiveError, match=message) as info:
        check_all(records)
    assert info.value.field == field
