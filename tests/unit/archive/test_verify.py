from __future__ import annotations

import json

import pytest
from hypothesis import given

from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
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

from .strategies import voice_sessions

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


# --- voice connections (format v2) ----------------------------------------------------


def voice_conn(conn_id: int = 1, kind: ConnectionKind = ConnectionKind.VOICE) -> ConnectionRecord:
    return ConnectionRecord(conn_id, 0, "wss://v.discord.media/?v=8", Query(8), kind=kind)


VOICE_HELLO = b'{"op":8,"d":{"heartbeat_interval":13750}}'


def test_voice_frames_are_read_with_the_voice_rules() -> None:
    checker = check_all([
        voice_conn(),
        frame(VOICE_HELLO, 8),
        frame(b'{"op":2,"d":{"ssrc":1},"seq":1}', 2, 1),
        frame(b"\x00\x02\x19sender", 25, 2, frame_type=FrameType.BINARY),
        frame(b"\x1akeys", 26, direction=Direction.CLIENT, frame_type=FrameType.BINARY),
        frame(b'{"op":6,"d":{"t":1},"seq":3}', 6, 3),
    ])  # fmt: skip
    assert checker.frames == 5


def test_a_binary_voice_frame_on_a_gateway_connection_does_not_verify() -> None:
    with pytest.raises(ArchiveError) as info:
        check_all(
            [
                voice_conn(kind=ConnectionKind.GATEWAY),
                frame(b"\x00\x02\x19x", 25, 2, frame_type=FrameType.BINARY),
            ]
        )
    assert info.value.field == "frame.payload"


def test_connection_info_changes_the_kind_for_later_frames() -> None:
    records: list[Record] = [voice_conn(kind=ConnectionKind.GATEWAY), frame(VOICE_HELLO, 8)]
    check_all(records)  # a voice HELLO reads as a gateway payload too (op 8, no s, no t)
    with pytest.raises(ArchiveError, match="stored s=1 but the payload says None"):
        check_all([*records, frame(b'{"op":2,"d":{},"seq":1}', 2, 1)])
    check_all([
        *records,
        ConnectionInfoRecord(1, 5, kind=ConnectionKind.VOICE),
        frame(b'{"op":2,"d":{},"seq":1}', 2, 1),
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("seqs", "ok"),
    [([1, 2, 3], True), ([1, 3], True), ([0xFFFF, 0], True), ([2, 2], False), ([3, 1], False)],
)
def test_voice_server_seq_only_goes_forward(seqs: list[int], ok: bool) -> None:
    records: list[Record] = [voice_conn()]
    records += [frame(json.dumps({"op": 6, "d": None, "seq": n}).encode(), 6, n) for n in seqs]
    if ok:
        check_all(records)
        return
    with pytest.raises(ArchiveError, match="only goes forward") as info:
        check_all(records)
    assert info.value.field == "frame.s"


def test_an_injected_voice_message_may_break_the_seq_run() -> None:
    check_all([
        voice_conn(),
        frame(b'{"op":6,"d":null,"seq":5}', 6, 5),
        frame(b'{"op":6,"d":null,"seq":1}', 6, 1, flags=FrameFlag.INJECTED),
        frame(b'{"op":6,"d":null,"seq":6}', 6, 6),
    ])  # fmt: skip


@given(voice_sessions())
def test_voice_sessions_verify(records: list[Record]) -> None:
    check_all(records)
