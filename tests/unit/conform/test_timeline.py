"""The case timeline read from a replay's transcript: one lane per connection with its
frames and close, the faults on the same clock, the client's reactions, nothing after
the case ended."""

from __future__ import annotations

from pathlib import Path

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionRecord,
    FrameRecord,
    FrameType,
)
from replayer.archive.writer import ArchiveWriter
from replayer.conform.runner import timeline
from replayer.gateway.opcodes import Direction
from replayer.replay.verdicts import Result, Verdict

MS = 1_000_000


def frame(conn: int, t_ms: int, direction: Direction, op: int, t: str | None = None) -> FrameRecord:
    return FrameRecord(conn, t_ms * MS, direction, FrameType.TEXT, b"{}", op, None, t, 2)


def test_lanes_faults_and_reactions(tmp_path: Path) -> None:
    path = tmp_path / "transcript.rpl"
    s, c = Direction.SERVER, Direction.CLIENT
    with ArchiveWriter(path) as writer:
        for record in (
            ConnectionRecord(1, 100 * MS, "ws://127.0.0.1:1/"),
            frame(1, 101, s, 10),
            frame(1, 102, c, 2),
            frame(1, 103, s, 0, "READY"),
            frame(1, 104, s, 7),
            CloseRecord(1, 110 * MS, 4000, "", Closer.CLIENT),
            ConnectionRecord(2, 120 * MS, "ws://127.0.0.1:1/resume/1"),
            frame(2, 121, s, 10),
            frame(2, 122, c, 6),
            frame(2, 123, s, 0, "RESUMED"),
            # After the verdicts were taken (at 130 ms): the teardown, left out.
            CloseRecord(2, 140 * MS, 1001, "", Closer.SERVER),
        ):
            writer.write(record)
    fault = Verdict("reconnect after READY #1", "", "", Result.PASS, t_fault_ms=3.5, connection=1)
    standing = Verdict("heartbeats on schedule", "", "", Result.PASS)
    # The judge's origin: its first connection, 0.5 ms after the transcript's record of it.
    got = timeline(path, int(100.5 * MS), 130 * MS, [fault, standing])
    assert got["duration_ms"] == 30.0
    first, second = got["connections"]
    assert first == {
        "id": 1, "kind": "gateway", "opened_ms": 0.0, "closed_ms": 10.0,
        "close": {"code": 4000, "by": "client", "reason": ""},
        "frames": [
            {"t_ms": 1.0, "dir": "server", "op": 10, "t": None},
            {"t_ms": 2.0, "dir": "client", "op": 2, "t": None},
            {"t_ms": 3.0, "dir": "server", "op": 0, "t": "READY"},
            {"t_ms": 4.0, "dir": "server", "op": 7, "t": None},
        ],
    }  # fmt: skip
    assert (second["opened_ms"], second["closed_ms"], second["close"]) == (20.0, None, None)
    assert [f["op"] for f in second["frames"]] == [10, 6, 0]
    assert got["faults"] == [{"t_ms": 4.0, "conn": 1, "fault": "reconnect after READY #1"}]
    assert got["reactions"] == [
        {"t_ms": 2.0, "conn": 1, "what": "IDENTIFY"},
        {"t_ms": 10.0, "conn": 1, "what": "close 4000"},
        {"t_ms": 22.0, "conn": 2, "what": "RESUME"},
    ]


def test_no_transcript_no_connection(tmp_path: Path) -> None:
    refused = Verdict("refuse on connection attempt #1", "", "", None, t_fault_ms=0.0, connection=0)
    got = timeline(tmp_path / "missing.rpl", 5 * MS, 5 * MS, [refused])
    assert got == {
        "duration_ms": 0.0,
        "connections": [],
        "faults": [{"t_ms": 0.0, "conn": 0, "fault": "refuse on connection attempt #1"}],
        "reactions": [],
    }
