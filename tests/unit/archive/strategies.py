"""Hypothesis strategies for archive records."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

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
    Query,
    Record,
)
from replayer.gateway.opcodes import Direction
from replayer.voice.frames import build_binary

uint = st.integers(min_value=0, max_value=2**63 - 1)
small_uint = st.integers(min_value=0, max_value=10_000)
text = st.text(max_size=30)
headers = st.lists(st.tuples(text, text), max_size=4).map(tuple)
shard = st.none() | st.integers(min_value=1, max_value=64).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n - 1), st.just(n))
)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_value = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def payload_bytes(op: int, d: Any, s: int | None, t: str | None) -> bytes:
    return json.dumps(
        {"op": op, "d": d, "s": s, "t": t}, separators=(",", ":"), ensure_ascii=False
    ).encode()


connection_records = st.builds(
    ConnectionRecord,
    conn_id=small_uint,
    t_ns=uint,
    url=text,
    query=st.builds(
        Query,
        v=st.none() | st.integers(0, 20),
        encoding=st.sampled_from(["json", "etf"]),
        compress=st.none() | st.sampled_from(["zlib-stream", "zstd-stream"]),
    ),
    headers=headers,
    shard=shard,
    resumes=st.none() | small_uint,
    kind=st.sampled_from(ConnectionKind),
)
frame_records = st.builds(
    FrameRecord,
    conn_id=small_uint,
    t_ns=uint,
    direction=st.sampled_from(Direction),
    frame_type=st.sampled_from(FrameType),
    payload=st.binary(max_size=200),
    op=st.none() | st.integers(-(2**31), 2**31),
    s=st.none() | uint,
    t=st.none() | text,
    wire_size=uint,
    flags=st.integers(0, 15).map(FrameFlag),
    error=st.none() | text,
)
close_records = st.builds(
    CloseRecord,
    conn_id=small_uint,
    t_ns=uint,
    code=st.none() | st.integers(0, 5000),
    reason=text,
    closed_by=st.none() | st.sampled_from(Closer),
    clean=st.booleans(),
)
http_records = st.builds(
    HttpRecord,
    t_ns=uint,
    method=st.sampled_from(["GET", "POST", "PATCH"]),
    host=text,
    path=text,
    status=st.integers(100, 599),
    request_headers=headers,
    response_headers=headers,
    request_body=st.binary(max_size=64),
    response_body=st.binary(max_size=64),
)
info_records = st.builds(
    ConnectionInfoRecord,
    conn_id=small_uint,
    t_ns=uint,
    shard=shard,
    resumes=st.none() | small_uint,
    session_id=st.none() | text,
    kind=st.none() | st.sampled_from(ConnectionKind),
)
any_record: st.SearchStrategy[Record] = st.one_of(
    connection_records, frame_records, close_records, http_records, info_records
)


@st.composite
def sessions(draw: st.DrawFn) -> list[Record]:
    """A consistent archive body: connections with decodable JSON frames, in time order."""
    records: list[Record] = []
    t_ns = 0
    n_conns = draw(st.integers(1, 3))
    for conn_id in range(1, n_conns + 1):
        t_ns += draw(small_uint)
        records.append(
            ConnectionRecord(
                conn_id=conn_id,
                t_ns=t_ns,
                url="wss://gateway.discord.gg/?v=10&encoding=json",
                query=Query(
                    v=10, encoding="json", compress=draw(st.none() | st.just("zlib-stream"))
                ),
                headers=draw(headers),
                resumes=conn_id - 1 if conn_id > 1 and draw(st.booleans()) else None,
            )
        )
        seq = 0
        for _ in range(draw(st.integers(0, 6))):
            t_ns += draw(small_uint)
            direction = draw(st.sampled_from(Direction))
            if direction == Direction.SERVER and draw(st.booleans()):
                seq += 1
                op, s, t = (
                    0,
                    seq,
                    draw(st.sampled_from(["READY", "GUILD_CREATE", "MESSAGE_CREATE"])),
                )
            else:
                op, s, t = draw(st.sampled_from([1, 2, 10, 11, 77])), None, None
            raw = payload_bytes(op, draw(json_value), s, t)
            if draw(st.booleans()):
                raw = raw.replace(b",", b", ")  # not canonical: export must keep the exact bytes
            records.append(
                FrameRecord(
                    conn_id, t_ns, direction, FrameType.TEXT, raw, op, s, t, len(raw) // 2 + 1
                )
            )
        if draw(st.booleans()):
            t_ns += draw(small_uint)
            raw = draw(st.binary(min_size=1, max_size=20)).replace(b"{", b"(")
            records.append(
                FrameRecord(
                    conn_id,
                    t_ns,
                    Direction.SERVER,
                    FrameType.BINARY,
                    raw,
                    None,
                    None,
                    None,
                    len(raw),
                    FrameFlag.UNDECODED,
                    "zlib-stream: invalid stored block lengths",
                )
            )
        if draw(st.booleans()):
            t_ns += draw(small_uint)
            records.append(
                CloseRecord(
                    conn_id,
                    t_ns,
                    draw(st.sampled_from([4000, 1000, 1006, None])),
                    draw(text),
                    draw(st.none() | st.sampled_from(Closer)),
                    draw(st.booleans()),
                )
            )
    if draw(st.booleans()):
        records.append(
            HttpRecord(
                t_ns,
                "GET",
                "discord.com",
                "/api/v10/gateway/bot",
                200,
                (("Content-Type", "application/json"),),
                (),
                b"",
                draw(st.binary(max_size=30) | st.just(b'{"url":"wss://gateway.discord.gg"}')),
            )
        )
    return records


@st.composite
def voice_sessions(draw: st.DrawFn) -> list[Record]:
    """A consistent archive body with voice connections (known at open, or from a
    connection_info): JSON {op, d, seq?} text frames and binary [seq][op] frames, the server's
    seq going forward."""
    records: list[Record] = []
    t_ns = 0
    for conn_id in range(1, draw(st.integers(1, 3)) + 1):
        t_ns += draw(small_uint)
        at_open = draw(st.booleans())
        records.append(
            ConnectionRecord(
                conn_id, t_ns, "wss://x.discord.media/?v=8", Query(v=8),
                kind=ConnectionKind.VOICE if at_open else ConnectionKind.GATEWAY,
            )
        )  # fmt: skip
        if not at_open:
            records.append(ConnectionInfoRecord(conn_id, t_ns, kind=ConnectionKind.VOICE))
        seq = draw(st.integers(0, 0xFFFF))
        for _ in range(draw(st.integers(0, 8))):
            t_ns += draw(small_uint)
            direction = draw(st.sampled_from(Direction))
            server = direction == Direction.SERVER
            op = draw(st.integers(0, 31))
            s = None
            if server and draw(st.booleans()):
                seq = (seq + draw(st.integers(1, 3))) & 0xFFFF
                s = seq
            if draw(st.booleans()):  # a binary frame: the server's always carries a seq
                if server:
                    seq = (seq + 1) & 0xFFFF
                    s = seq
                raw = build_binary(op, draw(st.binary(max_size=20)), s)
                frame_type = FrameType.BINARY
            else:
                obj: dict[str, Any] = {"op": op, "d": draw(json_value)}
                if s is not None:
                    obj["seq"] = s
                raw = json.dumps(obj, separators=(",", ":")).encode()
                frame_type = FrameType.TEXT
            records.append(
                FrameRecord(conn_id, t_ns, direction, frame_type, raw, op, s, None, len(raw))
            )
    return records
