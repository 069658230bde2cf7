"""Write tests/golden/archive-v2.rpl, the golden file of archive format version 2.

Run once, by the replayer that introduced version 2, and never again for this file (the next
format version gets its own script and file):

    PYTHONPATH=. python tests/golden/make_archive_v2.py tests/golden/archive-v2.rpl
    sha256sum tests/golden/archive-v2.rpl > tests/golden/archive-v2.rpl.sha256

What version 2 adds is the connection kind: a main-gateway session that joins a voice channel
(VOICE_STATE_UPDATE, VOICE_SERVER_UPDATE with its token), a voice connection recognised from
the endpoint (``kind`` in its ``connection`` record), with text and binary (DAVE) voice frames,
closed with 4015, and a second voice connection first opened as ``gateway`` and recognised by
its handshake (``kind`` in a ``connection_info`` record) that resumes it. The writer redacts
the bot and voice tokens, as any recording.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from replayer.archive.frame_heads import frame_head
from replayer.archive.header import Header
from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    Query,
)
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.encoding import Encoding
from replayer.gateway.opcodes import Direction
from replayer.voice.frames import build_binary

MS = 1_000_000
BOT_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0.GoLdEn.v2v2v2v2v2v2v2v2v2v2v2v2v2v2v2v2v2v2v2"
VOICE_TOKEN = "a1b2c3d4e5f60718"
ENDPOINT = "golden-voice-1.discord.media:443"


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _frame(
    conn: int,
    t_ms: int,
    direction: Direction,
    raw: bytes,
    kind: ConnectionKind,
    *,
    binary: bool = False,
    flags: FrameFlag = FrameFlag.NONE,
) -> FrameRecord:
    op, s, t = frame_head(
        kind, raw, binary=binary, from_server=direction is Direction.SERVER, encoding=Encoding.JSON
    )
    frame_type = FrameType.BINARY if binary else FrameType.TEXT
    return FrameRecord(conn, t_ms * MS, direction, frame_type, raw, op, s, t, len(raw), flags)


def records() -> list[Any]:
    g, v = ConnectionKind.GATEWAY, ConnectionKind.VOICE
    server, client = Direction.SERVER, Direction.CLIENT
    main_url = "wss://gateway.discord.gg/?v=10&encoding=json"
    voice_url = f"wss://{ENDPOINT}/?v=8"
    voice_query = Query(v=8, encoding="json", compress=None)
    hb = {"heartbeat_interval": 41250}
    return [
        ConnectionRecord(1, 1 * MS, main_url, Query.from_url(main_url), (("Host", "gateway.discord.gg"),)),
        _frame(1, 2, server, _json({"op": 10, "d": hb, "s": None, "t": None}), g),
        _frame(1, 3, client, _json({"op": 2, "d": {"token": BOT_TOKEN, "intents": 129}}), g),
        ConnectionInfoRecord(1, 3 * MS + 1, shard=(0, 1)),
        _frame(1, 4, server, _json({"op": 0, "d": {"session_id": "gold-main", "v": 10}, "s": 1, "t": "READY"}), g),
        ConnectionInfoRecord(1, 4 * MS + 1, session_id="gold-main"),
        _frame(1, 5, client, _json({"op": 4, "d": {"guild_id": "41771983423143936", "channel_id": "41771983423143937", "self_mute": False, "self_deaf": False}}), g),
        _frame(1, 6, server, _json({"op": 0, "d": {"guild_id": "41771983423143936", "channel_id": "41771983423143937", "user_id": "80351110224678912", "session_id": "gold-voice-session"}, "s": 2, "t": "VOICE_STATE_UPDATE"}), g),
        _frame(1, 7, server, _json({"op": 0, "d": {"token": VOICE_TOKEN, "guild_id": "41771983423143936", "endpoint": ENDPOINT}, "s": 3, "t": "VOICE_SERVER_UPDATE"}), g),
        # The voice connection, known as voice when it opened (its host was the endpoint).
        ConnectionRecord(2, 8 * MS, voice_url, voice_query, (("Host", ENDPOINT.split(":")[0]),), kind=v),
        _frame(2, 9, server, _json({"op": 8, "d": {"v": 8, "heartbeat_interval": 13750.0}}), v),
        _frame(2, 10, client, _json({"op": 0, "d": {"server_id": "41771983423143936", "user_id": "80351110224678912", "session_id": "gold-voice-session", "token": VOICE_TOKEN, "max_dave_protocol_version": 1}}), v),
        _frame(2, 11, server, _json({"op": 2, "d": {"ssrc": 1, "ip": "127.0.0.1", "port": 50000, "modes": ["aead_xchacha20_poly1305_rtpsize"]}, "seq": 1}), v),
        _frame(2, 12, client, _json({"op": 1, "d": {"protocol": "udp", "data": {"address": "127.0.0.1", "port": 40000, "mode": "aead_xchacha20_poly1305_rtpsize"}}}), v),
        _frame(2, 13, server, _json({"op": 4, "d": {"mode": "aead_xchacha20_poly1305_rtpsize", "secret_key": [0] * 32, "dave_protocol_version": 1}, "seq": 2}), v),
        _frame(2, 14, server, build_binary(25, b"\x00\x01external-sender", seq=3), v, binary=True),
        _frame(2, 15, client, build_binary(26, b"key-package"), v, binary=True),
        _frame(2, 16, client, _json({"op": 3, "d": {"t": 1795000000016, "seq_ack": 3}}), v),
        _frame(2, 17, server, _json({"op": 6, "d": {"t": 1795000000016}, "seq": 4}), v),
        _frame(2, 18, client, _json({"op": 5, "d": {"speaking": 1, "delay": 0, "ssrc": 1}}), v),
        CloseRecord(2, 19 * MS, 4015, "Voice server crashed", Closer.SERVER, True),
        # Opened without the endpoint known (a "gateway" at first), recognised by the voice
        # handshake: HELLO op 8 with no "t", then RESUME with server_id/session_id/token.
        ConnectionRecord(3, 20 * MS, voice_url, voice_query, (("Host", ENDPOINT.split(":")[0]),)),
        ConnectionInfoRecord(3, 21 * MS, kind=v),  # as the recorder writes it: before HELLO
        _frame(3, 21, server, _json({"op": 8, "d": {"v": 8, "heartbeat_interval": 13750.0}}), v),
        _frame(3, 22, client, _json({"op": 7, "d": {"server_id": "41771983423143936", "session_id": "gold-voice-session", "token": VOICE_TOKEN, "seq_ack": 4}}), v),
        ConnectionInfoRecord(3, 22 * MS + 1, resumes=2),
        _frame(3, 23, server, _json({"op": 9, "d": None, "seq": 5}), v),
        CloseRecord(3, 24 * MS, 1000, "", Closer.CLIENT, True),
        CloseRecord(1, 25 * MS, None, "", None, False),
    ]  # fmt: skip


def main(path: str) -> None:
    header = Header(
        created_unix_ns=1_796_000_000_000_000_000,
        tool="replayer 0.1.0",
        metadata={"purpose": "golden file of archive format v2", "bot": "golden#0"},
    )
    with ArchiveWriter(Path(path), header=header) as writer:
        for record in records():
            writer.write(record)


if __name__ == "__main__":
    main(sys.argv[1])
