"""GatewayRecorder and voice connections: recognised from VOICE_SERVER_UPDATE or the handshake,
read by the voice rules, the endpoint rewritten and routed in reverse mode, the voice token
never written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
)
from replayer.archive.verify import ArchiveChecker
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction
from replayer.record.recorder import VOICE_PATH, GatewayRecorder
from replayer.resources import sample_archive
from replayer.voice.frames import build_binary

URL = "wss://gateway.discord.gg/?v=10&encoding=json"
VOICE_TOKEN = "f00dfacecafe4242"
ENDPOINT = "c-ams08-abcd.discord.media:443"


def j(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def server_update(endpoint: str | None = ENDPOINT) -> bytes:
    d = {"token": VOICE_TOKEN, "guild_id": "41771983423143936", "endpoint": endpoint}
    return j({"op": 0, "s": 3, "t": "VOICE_SERVER_UPDATE", "d": d})


HELLO = j({"op": 8, "d": {"v": 8, "heartbeat_interval": 13750}})
IDENTIFY = j(
    {
        "op": 0,
        "d": {"server_id": "4177", "user_id": "8035", "session_id": "vs1", "token": VOICE_TOKEN},
    }
)
RESUME = j(
    {"op": 7, "d": {"server_id": "4177", "session_id": "vs1", "token": VOICE_TOKEN, "seq_ack": 2}}
)
READY = j({"op": 2, "d": {"ssrc": 1, "ip": "127.0.0.1", "port": 5, "modes": []}, "seq": 1})


def make(tmp_path: Path, **kw: Any) -> GatewayRecorder:
    return GatewayRecorder(ArchiveWriter(tmp_path / "r.rpl"), **kw)


def finish(rec: GatewayRecorder, tmp_path: Path) -> list[Any]:
    rec.writer.close()
    data = (tmp_path / "r.rpl").read_bytes()
    assert VOICE_TOKEN.encode() not in data
    _, records = read_records(tmp_path / "r.rpl")
    checker = ArchiveChecker()
    for record in records:
        checker.check(record)
    return records


def voice_session(rec: GatewayRecorder, key: str) -> None:
    assert rec.server_message(key, HELLO, True) is None
    rec.client_message(key, IDENTIFY, True)
    assert rec.server_message(key, READY, True) is None
    assert rec.server_message(key, build_binary(25, b"sender", seq=2), False) is None
    rec.client_message(key, build_binary(26, b"package"), False)
    rec.client_message(key, j({"op": 3, "d": {"t": 1, "seq_ack": 2}}), True)
    rec.server_message(key, b"\x00", False)  # too short for the binary header: kept raw


def test_the_endpoint_of_voice_server_update_makes_a_voice_connection(tmp_path: Path) -> None:
    rec = make(tmp_path)
    rec.open("main", URL, ())
    assert rec.server_message("main", server_update(), True) is None  # no rewrite
    assert rec.is_gateway("c-ams08-abcd.discord.media", "/")  # no v= needed
    rec.open("voice", "wss://c-ams08-abcd.discord.media/?v=8", ())
    voice_session(rec, "voice")
    records = finish(rec, tmp_path)
    connections = [r for r in records if isinstance(r, ConnectionRecord)]
    assert [c.kind for c in connections] == [ConnectionKind.GATEWAY, ConnectionKind.VOICE]
    frames = [r for r in records if isinstance(r, FrameRecord) and r.conn_id == 2]
    assert [(f.direction, f.frame_type, f.op, f.s, f.t) for f in frames] == [
        (Direction.SERVER, FrameType.TEXT, 8, None, None),
        (Direction.CLIENT, FrameType.TEXT, 0, None, None),
        (Direction.SERVER, FrameType.TEXT, 2, 1, None),
        (Direction.SERVER, FrameType.BINARY, 25, 2, None),
        (Direction.CLIENT, FrameType.BINARY, 26, None, None),
        (Direction.CLIENT, FrameType.TEXT, 3, None, None),
        (Direction.SERVER, FrameType.BINARY, None, None, None),
    ]
    assert frames[1].flags == FrameFlag.REDACTED
    assert frames[-1].flags == FrameFlag.UNDECODED
    assert frames[-1].error == "binary server voice frame of 1 bytes (header 3)"


@pytest.mark.parametrize("first", ["server", "client"])
def test_an_unknown_voice_server_is_recognised_by_its_handshake(tmp_path: Path, first: str) -> None:
    rec = make(tmp_path)
    rec.open("voice", "wss://somewhere.example/?v=8", ())
    if first == "server":
        voice_session(rec, "voice")
    else:
        rec.client_message("voice", IDENTIFY, True)
        rec.server_message("voice", READY, True)
    records = finish(rec, tmp_path)
    assert isinstance(records[0], ConnectionRecord)
    assert records[0].kind is ConnectionKind.GATEWAY  # not from the v= query
    assert records[1] == ConnectionInfoRecord(1, records[1].t_ns, kind=ConnectionKind.VOICE)
    ready = next(r for r in records if isinstance(r, FrameRecord) and r.op == 2)
    assert (ready.s, ready.t) == (1, None)


def test_a_main_gateway_stays_a_main_gateway(tmp_path: Path) -> None:
    rec = make(tmp_path)
    rec.open("main", "ws://127.0.0.1:9/?v=10&encoding=json", ())
    rec.server_message(
        "main", j({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}), True
    )
    rec.client_message("main", j({"op": 2, "d": {"token": "x" * 20, "intents": 1}}), True)
    records = finish(rec, tmp_path)
    assert not [r for r in records if isinstance(r, ConnectionInfoRecord) and r.kind]


def test_reverse_mode_rewrites_the_endpoint_and_routes_the_voice_socket(tmp_path: Path) -> None:
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:8080")
    rec.open("main", URL, ())
    out = rec.server_message("main", server_update(), True)
    assert out is not None
    sent = json.loads(out)
    assert sent["d"]["endpoint"] == f"127.0.0.1:8080{VOICE_PATH}v1"
    assert sent["d"]["token"] == VOICE_TOKEN  # the client still gets its token
    # The same endpoint again keeps its route; a new one gets another.
    again = json.loads(rec.server_message("main", server_update(), True) or b"")
    assert again["d"]["endpoint"] == sent["d"]["endpoint"]
    other = json.loads(
        rec.server_message("main", server_update("ws://127.0.0.1:7001"), True) or b""
    )
    assert other["d"]["endpoint"] == f"127.0.0.1:8080{VOICE_PATH}v2"
    assert rec.server_message("main", server_update(None), True) is None  # null: unchanged
    assert rec.upstream_for(f"{VOICE_PATH}v1/?v=8") == (
        "wss://c-ams08-abcd.discord.media:443",
        "/?v=8",
    )
    assert rec.upstream_for(f"{VOICE_PATH}v2?v=8") == ("ws://127.0.0.1:7001", "/?v=8")
    assert rec.upstream_for(f"{VOICE_PATH}v9/?v=8") is None
    # After routing, the proxy opens the real address: a voice connection.
    rec.open("voice", "ws://127.0.0.1:7001/?v=8", ())
    voice_session(rec, "voice")
    rec.close("voice", 4015, "crashed", False)
    rec.open("again", "ws://127.0.0.1:7001/?v=8", ())
    rec.server_message("again", HELLO, True)
    rec.client_message("again", RESUME, True)
    records = finish(rec, tmp_path)
    updates = [r for r in records if isinstance(r, FrameRecord) and r.t == "VOICE_SERVER_UPDATE"]
    assert [u.flags for u in updates[:3]] == [FrameFlag.REDACTED | FrameFlag.REWRITTEN] * 3
    assert all(b'"endpoint":"127.0.0.1:8080' not in u.payload for u in updates)  # the original
    kinds = {r.conn_id: r.kind for r in records if isinstance(r, ConnectionRecord)}
    assert kinds == {1: ConnectionKind.GATEWAY, 2: ConnectionKind.VOICE, 3: ConnectionKind.VOICE}
    resumes = [r for r in records if isinstance(r, ConnectionInfoRecord) and r.resumes]
    assert [(r.conn_id, r.resumes) for r in resumes] == [(3, 2)]


def test_the_bundled_voice_recording() -> None:
    """The bundled voice-bot.rpl, made by recordings/make_recordings.py through the recorder."""
    path = sample_archive("voice-bot.rpl")
    _, records = read_records(path)
    checker = ArchiveChecker()
    for record in records:
        checker.check(record)
    kinds = [r.kind for r in records if isinstance(r, ConnectionRecord)]
    assert kinds == [ConnectionKind.GATEWAY, ConnectionKind.VOICE, ConnectionKind.VOICE]
    update = next(r for r in records if isinstance(r, FrameRecord) and r.t == "VOICE_SERVER_UPDATE")
    assert update.flags == FrameFlag.REDACTED | FrameFlag.REWRITTEN
    assert json.loads(update.payload)["d"]["token"] == "[REDACTED]"
    voice = [r for r in records if isinstance(r, FrameRecord) and r.conn_id != 1]
    assert [f.op for f in voice if f.direction is Direction.SERVER] == [8, 2, 4, 25, 6, 8, 9]
    assert all(
        f.flags & FrameFlag.REDACTED
        for f in voice
        if f.op in (0, 7) and f.direction is Direction.CLIENT
    )
