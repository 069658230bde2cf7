"""ArchiveStats and ConnectionKinds: voice connections counted and named by the voice tables."""

from __future__ import annotations

from pathlib import Path

from replayer.archive.inspection import ArchiveStats, ConnectionKinds
from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameRecord,
    FrameType,
)
from replayer.gateway.opcodes import Direction

V2 = Path(__file__).parents[2] / "golden" / "archive-v2.rpl"


def test_voice_frames_and_closes_are_no_incidents() -> None:
    stats = ArchiveStats()
    for record in read_records(V2)[1]:
        stats.add(record)
    assert stats.incidents == 0  # the voice server's 4015 and RESUMED (op 9) are voice
    assert stats.by_op["server voice RESUMED"] == 1
    assert stats.by_op["server HELLO"] == 1
    assert stats.by_op["server voice HELLO"] == 2
    assert [c.kind for c in stats.connections.values()] == [
        ConnectionKind.GATEWAY, ConnectionKind.VOICE, ConnectionKind.VOICE,
    ]  # fmt: skip


def test_a_connection_info_switches_the_names() -> None:
    kinds = ConnectionKinds()
    hello = FrameRecord(1, 0, Direction.SERVER, FrameType.TEXT, b"{}", 8, None, None, 2)
    kinds.see(ConnectionRecord(1, 0, "wss://x/?v=8"))
    assert kinds.op_name(hello) == "REQUEST_GUILD_MEMBERS"
    assert kinds.close_name(1, 4015) != "Voice server crashed"
    kinds.see(ConnectionInfoRecord(1, 0, kind=ConnectionKind.VOICE))
    assert kinds.op_name(hello) == "HELLO"
    assert kinds.close_name(1, 4015) == "Voice server crashed"
    assert kinds.close_name(1, 1000) == "NORMAL"
    kinds.see(ConnectionInfoRecord(1, 0))  # nothing learned: still voice
    assert kinds.kind(1) is ConnectionKind.VOICE
