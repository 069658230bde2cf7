"""Golden archives: one file per format version, written once and never regenerated.

If one of these tests fails, the change broke reading of archives users already have:
add a migration instead (replayer/archive/migrations.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from replayer.archive.reader import read_records
from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    HttpRecord,
)
from replayer.archive.verify import ArchiveChecker
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.opcodes import Direction

GOLDEN = Path(__file__).parents[2] / "golden"
V1 = GOLDEN / "archive-v1.rpl"


def test_v1_file_is_unchanged() -> None:
    digest = hashlib.sha256(V1.read_bytes()).hexdigest()
    assert digest == (GOLDEN / "archive-v1.rpl.sha256").read_text().split()[0]


def test_v1_reads_with_every_field() -> None:
    header, records = read_records(V1)
    assert header.format_version == 1
    assert header.created_unix_ns == 1_795_000_000_000_000_000
    assert header.metadata == {"purpose": "golden file of archive format v1", "bot": "golden#0"}
    kinds = [type(r).__name__ for r in records]
    assert kinds == [
        "HttpRecord", "ConnectionRecord", "FrameRecord", "FrameRecord", "FrameRecord",
        "ConnectionInfoRecord", "FrameRecord", "FrameRecord", "ConnectionInfoRecord",
        "FrameRecord", "FrameRecord", "FrameRecord", "CloseRecord", "ConnectionRecord",
        "FrameRecord", "FrameRecord", "CloseRecord",
    ]  # fmt: skip
    http = records[0]
    assert isinstance(http, HttpRecord)
    assert (http.method, http.host, http.path, http.status) == (
        "GET", "discord.com", "/api/v10/gateway/bot", 200,
    )  # fmt: skip
    assert http.request_headers[0] == ("Authorization", "[REDACTED]")
    assert b'"max_concurrency":1' in http.response_body

    c1 = records[1]
    assert isinstance(c1, ConnectionRecord)
    assert (c1.conn_id, c1.t_ns, c1.query.v, c1.query.encoding, c1.query.compress) == (
        1, 1_000_000, 10, "json", "zlib-stream",
    )  # fmt: skip
    assert c1.headers[0] == ("Host", "gateway.discord.gg")

    hello = records[2]
    assert isinstance(hello, FrameRecord)
    assert (hello.direction, hello.frame_type, hello.op, hello.wire_size) == (
        Direction.SERVER, FrameType.BINARY, 10, 101,
    )  # fmt: skip
    identify = records[4]
    assert isinstance(identify, FrameRecord)
    assert identify.flags == FrameFlag.REDACTED
    assert decode_payload(identify.payload, Encoding.JSON)["d"]["token"] == "[REDACTED]"
    assert records[5] == ConnectionInfoRecord(1, 3_000_001, (0, 1), None, None)
    ready = records[7]
    assert isinstance(ready, FrameRecord)
    assert (ready.op, ready.s, ready.t) == (0, 1, "READY")
    assert "snowman ☃".encode() in ready.payload
    broken = records[9]
    assert isinstance(broken, FrameRecord)
    assert broken.flags == FrameFlag.UNDECODED
    assert broken.error == "zlib-stream: invalid block type"
    assert (records[10].op, records[11].flags) == (99, FrameFlag.INJECTED)  # type: ignore[union-attr]
    assert records[12] == CloseRecord(
        1, 8_000_000, 4000, "reconnect requested", Closer.CLIENT, True
    )
    c2 = records[13]
    assert isinstance(c2, ConnectionRecord)
    assert (c2.resumes, c2.query.encoding) == (1, "etf")
    etf = records[15]
    assert isinstance(etf, FrameRecord)
    assert decode_payload(etf.payload, Encoding.ETF) == {
        "op": 0, "d": {"id": 81384788765712384, "name": "guild"}, "s": 2, "t": "GUILD_CREATE",
    }  # fmt: skip
    assert records[16] == CloseRecord(2, 10_000_000, None, "", None, False)


def test_v1_verifies() -> None:
    checker = ArchiveChecker()
    for record in read_records(V1)[1]:
        checker.check(record)
    assert checker.frames == 10


V2 = GOLDEN / "archive-v2.rpl"


def test_v2_file_is_unchanged() -> None:
    digest = hashlib.sha256(V2.read_bytes()).hexdigest()
    assert digest == (GOLDEN / "archive-v2.rpl.sha256").read_text().split()[0]


def test_v1_connections_migrate_to_gateway_connections() -> None:
    _, records = read_records(V1)
    connections = [r for r in records if isinstance(r, ConnectionRecord)]
    assert [c.kind for c in connections] == [ConnectionKind.GATEWAY, ConnectionKind.GATEWAY]
    infos = [r for r in records if isinstance(r, ConnectionInfoRecord)]
    assert len(infos) == 2
    assert all(i.kind is None for i in infos)


def test_v2_reads_with_every_field() -> None:
    header, records = read_records(V2)
    assert header.format_version == 2
    assert header.metadata == {"purpose": "golden file of archive format v2", "bot": "golden#0"}
    kinds = {r.conn_id: r.kind for r in records if isinstance(r, ConnectionRecord)}
    assert kinds == {1: ConnectionKind.GATEWAY, 2: ConnectionKind.VOICE, 3: ConnectionKind.GATEWAY}
    learned = [r for r in records if isinstance(r, ConnectionInfoRecord) and r.kind is not None]
    assert [(i.conn_id, i.kind) for i in learned] == [(3, ConnectionKind.VOICE)]

    server_update = next(
        r for r in records if isinstance(r, FrameRecord) and r.t == "VOICE_SERVER_UPDATE"
    )
    assert server_update.flags == FrameFlag.REDACTED
    assert decode_payload(server_update.payload, Encoding.JSON)["d"]["token"] == "[REDACTED]"

    voice = [r for r in records if isinstance(r, FrameRecord) and r.conn_id == 2]
    assert [(f.direction, f.frame_type, f.op, f.s, f.t) for f in voice] == [
        (Direction.SERVER, FrameType.TEXT, 8, None, None),  # HELLO
        (Direction.CLIENT, FrameType.TEXT, 0, None, None),  # IDENTIFY
        (Direction.SERVER, FrameType.TEXT, 2, 1, None),  # READY
        (Direction.CLIENT, FrameType.TEXT, 1, None, None),  # SELECT_PROTOCOL
        (Direction.SERVER, FrameType.TEXT, 4, 2, None),  # SESSION_DESCRIPTION
        (Direction.SERVER, FrameType.BINARY, 25, 3, None),  # DAVE_MLS_EXTERNAL_SENDER
        (Direction.CLIENT, FrameType.BINARY, 26, None, None),  # DAVE_MLS_KEY_PACKAGE
        (Direction.CLIENT, FrameType.TEXT, 3, None, None),  # HEARTBEAT
        (Direction.SERVER, FrameType.TEXT, 6, 4, None),  # HEARTBEAT_ACK
        (Direction.CLIENT, FrameType.TEXT, 5, None, None),  # SPEAKING
    ]
    identify = voice[1]
    assert identify.flags == FrameFlag.REDACTED
    assert decode_payload(identify.payload, Encoding.JSON)["d"]["token"] == "[REDACTED]"
    assert voice[5].payload == b"\x00\x03\x19\x00\x01external-sender"
    resume = next(r for r in records if isinstance(r, FrameRecord) and r.conn_id == 3 and r.op == 7)
    assert decode_payload(resume.payload, Encoding.JSON)["d"]["token"] == "[REDACTED]"
    assert b"a1b2c3d4e5f60718" not in V2.read_bytes()


def test_v2_verifies() -> None:
    checker = ArchiveChecker()
    for record in read_records(V2)[1]:
        checker.check(record)
    assert (checker.connections, checker.frames) == (3, 19)
