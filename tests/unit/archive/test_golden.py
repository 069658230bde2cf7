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
