"""load_script skips recorded voice connections on purpose: their frames follow the voice
opcode table and are no gateway dispatches to replay (the voice face makes its own voice
session). The gateway session of an archive with voice still replays, whole."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameRecord,
    FrameType,
    Record,
)
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction
from replayer.replay.script import ArchivePayloads, load_script
from replayer.resources import sample_archive

VOICE_BOT = sample_archive("voice-bot.rpl")


def connection_kinds(records: list[Record]) -> dict[int, ConnectionKind]:
    kinds = {r.conn_id: r.kind for r in records if isinstance(r, ConnectionRecord)}
    for r in records:
        if isinstance(r, ConnectionInfoRecord) and r.kind is not None:
            kinds[r.conn_id] = r.kind
    return kinds


def stream_conns(path: Path) -> list[tuple[int, str | None]]:
    """Which connection each dispatch of shard 0's stream comes from, and its name."""
    script = load_script(path)
    (shard,) = script.shards.values()
    payloads = ArchivePayloads(path)
    frames = [payloads.frame(o, s) for o, s in zip(shard.offsets, shard.sizes, strict=True)]
    return [(f.conn_id, f.t) for f in frames]


def test_the_gateway_session_of_an_archive_with_voice_replays_without_voice_frames() -> None:
    _, records = read_records(VOICE_BOT)
    kinds = connection_kinds(records)
    voice = {c for c, k in kinds.items() if k is ConnectionKind.VOICE}
    assert voice, "voice-bot.rpl has voice connections"
    gateway_dispatches = [
        (r.conn_id, r.t)
        for r in records
        if isinstance(r, FrameRecord) and r.conn_id not in voice and r.op == 0
    ]
    assert stream_conns(VOICE_BOT) == gateway_dispatches
    script = load_script(VOICE_BOT)
    (shard,) = script.shards.values()
    assert shard.incidents == {}  # voice op 9 RESUMED is no INVALID_SESSION


def _frame(conn_id: int, t_ns: int, direction: Direction, obj: dict[str, object]) -> FrameRecord:
    payload = json.dumps(obj).encode()
    op = obj["op"]
    assert isinstance(op, int)
    s, t = obj.get("s"), obj.get("t")
    return FrameRecord(
        conn_id, t_ns, direction, FrameType.TEXT, payload, op,
        s if isinstance(s, int) else None, t if isinstance(t, str) else None, len(payload),
    )  # fmt: skip


def test_a_voice_connection_is_skipped_by_its_kind_whatever_its_frames_look_like(
    tmp_path: Path,
) -> None:
    """Gateway-shaped frames on a voice connection (a RESUME of the main session, then a
    dispatch after it) stay out of the stream: the skip is by kind, not by opcode luck.
    The same frames on a gateway connection do go in (the test can tell)."""
    header, records = read_records(VOICE_BOT)
    session_id = next(
        r.session_id for r in records if isinstance(r, ConnectionInfoRecord) and r.session_id
    )
    voice_conn = max(r.conn_id for r in records if isinstance(r, ConnectionRecord))
    at = max(i for i, r in enumerate(records) if isinstance(r, ConnectionRecord))
    t_ns = records[at].t_ns
    resume = {"op": 6, "d": {"token": "x", "session_id": session_id, "seq": 4}}
    dispatch = {"op": 0, "s": 99, "t": "MESSAGE_CREATE", "d": {"id": "1"}}
    extra = [
        _frame(voice_conn, t_ns + 1, Direction.CLIENT, resume),
        _frame(voice_conn, t_ns + 2, Direction.SERVER, dispatch),
    ]

    def write(path: Path, rows: list[Record]) -> Path:
        with ArchiveWriter(path, header=header, redact=False) as writer:
            for record in rows:
                writer.write(record)
        return path

    as_voice = write(tmp_path / "voice.rpl", [*records[: at + 1], *extra, *records[at + 1 :]])
    assert "MESSAGE_CREATE" not in {t for _, t in stream_conns(as_voice)}
    opened = records[at]
    assert isinstance(opened, ConnectionRecord)
    as_gateway = [*records[:at], replace(opened, kind=ConnectionKind.GATEWAY), *extra]
    assert (voice_conn, "MESSAGE_CREATE") in stream_conns(
        write(tmp_path / "gateway.rpl", as_gateway + records[at + 1 :])
    )


def test_a_connection_learned_to_be_voice_later_is_skipped_too(tmp_path: Path) -> None:
    """The recorder may learn the kind from the voice handshake (ConnectionInfoRecord)."""
    header, records = read_records(VOICE_BOT)
    session_id = next(
        r.session_id for r in records if isinstance(r, ConnectionInfoRecord) and r.session_id
    )
    at = max(i for i, r in enumerate(records) if isinstance(r, ConnectionRecord))
    opened = records[at]
    assert isinstance(opened, ConnectionRecord)
    t_ns = opened.t_ns
    rows: list[Record] = [
        *records[:at],
        replace(opened, kind=ConnectionKind.GATEWAY),
        _frame(opened.conn_id, t_ns + 1, Direction.CLIENT,
               {"op": 6, "d": {"token": "x", "session_id": session_id, "seq": 4}}),
        ConnectionInfoRecord(opened.conn_id, t_ns + 2, kind=ConnectionKind.VOICE),
        _frame(opened.conn_id, t_ns + 3, Direction.SERVER,
               {"op": 0, "s": 99, "t": "MESSAGE_CREATE", "d": {"id": "1"}}),
        *records[at + 1 :],
    ]  # fmt: skip
    path = tmp_path / "late.rpl"
    with ArchiveWriter(path, header=header, redact=False) as writer:
        for record in rows:
            writer.write(record)
    assert "MESSAGE_CREATE" not in {t for _, t in stream_conns(path)}
