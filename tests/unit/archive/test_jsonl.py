from __future__ import annotations

import json

import pytest
from hypothesis import given

from replayer.archive.header import Header
from replayer.archive.jsonl import Exporter, Importer, LineError, export_lines, header_from_json
from replayer.archive.records import FrameFlag, FrameRecord, FrameType, Record
from replayer.gateway.opcodes import Direction

from .strategies import sessions, voice_sessions


def round_trip(header: Header, records: list[Record]) -> tuple[list[str], list[Record]]:
    lines = list(export_lines(header, records))
    importer = Importer()
    objs = [json.loads(line) for line in lines]
    assert objs[0]["kind"] == "header"
    back = [importer.record(obj) for obj in objs[1:]]
    return lines, back


@given(sessions() | voice_sessions())
def test_export_import_export_is_lossless(records: list[Record]) -> None:
    header = Header(metadata={"bot": "test"})
    lines, back = round_trip(header, records)
    assert back == records
    lines2 = list(export_lines(header_from_json(json.loads(lines[0])), back))
    assert lines2 == lines


def test_canonical_payload_has_no_raw_and_odd_bytes_keep_raw() -> None:
    exporter = Exporter()
    exporter.record(Importer().record({"kind": "connection", "conn": 1}))
    canonical = b'{"op":11,"d":null,"s":null,"t":null}'
    spaced = b'{"op": 11, "d": null}'
    for raw, has_raw in ((canonical, False), (spaced, True)):
        frame = FrameRecord(1, 0, Direction.SERVER, FrameType.TEXT, raw, 11, None, None, 5)
        obj = exporter.record(frame)
        assert obj["payload"]["op"] == 11
        assert ("raw" in obj) is has_raw


def test_hand_written_fixture() -> None:
    importer = Importer()
    lines = [
        {"kind": "connection", "url": "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream"},
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 1.5, "payload": {"op": 10, "d": {"heartbeat_interval": 41250}}},
        {"kind": "frame", "conn": 1, "dir": "client", "payload": {"op": 2, "d": {"token": "x"}}},
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 3, "payload": {"op": 0, "s": 1, "t": "READY", "d": {}}},
        {"kind": "close", "conn": 1, "code": 4000, "closed_by": "client"},
        {"kind": "http", "path": "/api/v10/gateway", "response_body": {"url": "wss://gateway.discord.gg"}},
    ]  # fmt: skip
    records = [importer.record(obj) for obj in lines]
    conn = records[0]
    assert conn.conn_id == 1  # type: ignore[union-attr]
    assert conn.query.compress == "zlib-stream"  # type: ignore[union-attr]
    hello, identify, ready = records[1:4]
    assert isinstance(hello, FrameRecord)
    assert isinstance(ready, FrameRecord)
    assert hello.t_ns == 1_500_000
    assert hello.op == 10
    assert hello.frame_type == FrameType.TEXT
    assert identify.t_ns == 1_500_000  # no time given: right after the previous record
    assert (ready.op, ready.s, ready.t) == (0, 1, "READY")
    assert records[5].response_body == b'{"url":"wss://gateway.discord.gg"}'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"kind": "nope"}, "field 'kind'"),
        (
            {"kind": "frame", "conn": 9, "dir": "server", "payload": {"op": 1}},
            "connection 9 has no connection line",
        ),
        ({"kind": "frame", "conn": 1, "dir": "up", "payload": {"op": 1}}, "field 'dir'"),
        ({"kind": "frame", "conn": 1, "dir": "server"}, "needs 'payload'"),
        ({"kind": "frame", "conn": 1, "dir": "server", "payload": {"d": 1}}, "'op' is None"),
        (
            {"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 1}, "op": 2},
            "field 'op'",
        ),
        ({"kind": "frame", "conn": 1, "dir": "server", "raw_b64": "!!"}, "not valid base64"),
        (
            {"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 1}, "flags": ["x"]},
            "unknown flag",
        ),
        (
            {"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 1}, "t_ns": -5},
            "negative",
        ),
        ({"kind": "frame", "conn": "1", "dir": "server", "payload": {"op": 1}}, "field 'conn'"),
        ({"kind": "close", "conn": 1, "closed_by": "me"}, "field 'closed_by'"),
        ({"kind": "connection", "conn": 2, "shard": [2, 2]}, "field 'shard'"),
        ({"kind": "connection", "conn": 2, "query": {"encoding": "xml"}}, "unknown encoding"),
        ({"kind": "http"}, "missing field 'path'"),
    ],
)
def test_bad_lines_say_what_and_where(obj: object, message: str) -> None:
    importer = Importer()
    importer.record({"kind": "connection", "conn": 1})
    with pytest.raises(LineError, match=message):
        importer.record(obj)


def test_undecoded_frames_keep_raw_bytes() -> None:
    importer = Importer()
    importer.record({"kind": "connection", "conn": 1})
    frame = importer.record(
        {"kind": "frame", "conn": 1, "dir": "server", "raw_b64": "AAEC", "flags": ["undecoded"]}
    )
    assert isinstance(frame, FrameRecord)
    assert frame.payload == b"\x00\x01\x02"
    assert frame.flags == FrameFlag.UNDECODED
    assert frame.op is None


def test_etf_tuples_and_int_keys_keep_exact_bytes() -> None:
    from replayer.gateway.etf import etf_encode

    importer = Importer()
    records: list[Record] = [
        importer.record({"kind": "connection", "conn": 1, "query": {"encoding": "etf"}})
    ]
    for d in ((1, 2), {5: "int key"}, b"\xff\xfe not utf-8"):
        raw = etf_encode({"op": 0, "d": d, "s": 1, "t": "X"})
        records.append(
            FrameRecord(1, 0, Direction.SERVER, FrameType.BINARY, raw, 0, 1, "X", len(raw))
        )
    _, back = round_trip(Header(), records)
    assert back == records


def test_null_http_body_is_empty() -> None:
    http = Importer().record({"kind": "http", "path": "/x", "response_body": None})
    assert http.response_body == b""  # type: ignore[union-attr]


def test_voice_connections_carry_their_kind_and_voice_frames() -> None:
    lines = [
        {"kind": "connection", "url": "wss://v.discord.media/?v=8", "connection_kind": "voice"},
        {"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 8, "d": {"heartbeat_interval": 13750}}},
        {"kind": "frame", "conn": 1, "dir": "server", "payload": {"op": 2, "d": {"ssrc": 1}, "seq": 1}},
        {"kind": "frame", "conn": 1, "dir": "server", "frame_type": "binary", "raw_b64": "AAIZe30="},
        {"kind": "frame", "conn": 1, "dir": "client", "frame_type": "binary", "raw": "\u001akeys"},
        {"kind": "connection", "url": "wss://v.discord.media/?v=8"},
        {"kind": "connection_info", "conn": 2, "connection_kind": "voice"},
        {"kind": "frame", "conn": 2, "dir": "server", "payload": {"op": 9, "d": None, "seq": 2}},
    ]  # fmt: skip
    importer = Importer()
    records = [importer.record(obj) for obj in lines]
    heads = [(r.op, r.s, r.t) for r in records if isinstance(r, FrameRecord)]
    assert heads == [(8, None, None), (2, 1, None), (25, 2, None), (26, None, None), (9, 2, None)]
    _, back = round_trip(Header(), records)
    assert back == records
    exported = [Exporter().record(r) for r in records[:1]]
    assert exported[0]["connection_kind"] == "voice"
    exporter = Exporter()
    objs = [exporter.record(r) for r in records]
    assert "payload" not in objs[3]  # a binary voice frame is not JSON: raw bytes only
    assert objs[3]["raw_b64"] == "AAIZe30="
    assert objs[6]["connection_kind"] == "voice"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"kind": "connection", "connection_kind": "rtc"},
            "field 'connection_kind': expected gateway or voice",
        ),
        (
            {"kind": "connection", "connection_kind": 1},
            "field 'connection_kind': expected a string",
        ),
    ],
)
def test_bad_connection_kinds_say_what(obj: object, message: str) -> None:
    with pytest.raises(LineError, match=message):
        Importer().record(obj)


def test_a_voice_binary_frame_without_its_header_must_be_flagged_undecoded() -> None:
    importer = Importer()
    importer.record({"kind": "connection", "connection_kind": "voice"})
    with pytest.raises(LineError, match="binary server voice frame of 2 bytes"):
        importer.record(
            {"kind": "frame", "conn": 1, "dir": "server", "frame_type": "binary", "raw_b64": "AAE="}
        )
