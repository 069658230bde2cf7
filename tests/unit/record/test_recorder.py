"""GatewayRecorder without mitmproxy: bytes in, records and client bytes out."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    FrameFlag,
    FrameRecord,
    HttpRecord,
)
from replayer.archive.verify import ArchiveChecker
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.compression import Compression, make_compressor, make_decompressor
from replayer.gateway.opcodes import Direction
from replayer.record.recorder import HEAD_ONLY_BYTES, RESUME_PATH, GatewayRecorder

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gabcde.very-secret-token-value-1234567890"
URL = "wss://gateway.discord.gg/?v=10&encoding=json"


def j(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


READY = {
    "op": 0,
    "s": 1,
    "t": "READY",
    "d": {
        "session_id": "abc",
        "resume_gateway_url": "wss://resume.discord.gg",
        "user": {"id": "1"},
    },
}


def make(tmp_path: Path, **kw: Any) -> GatewayRecorder:
    return GatewayRecorder(ArchiveWriter(tmp_path / "r.rpl"), **kw)


def test_records_both_directions_and_links_resume(tmp_path: Path) -> None:
    rec = make(tmp_path)
    rec.open("f1", URL, (("Authorization", f"Bot {TOKEN}"),))
    assert rec.server_message("f1", j({"op": 10, "d": {"heartbeat_interval": 45000}}), True) is None
    rec.client_message("f1", j({"op": 2, "d": {"token": TOKEN, "shard": [1, 4]}}), True)
    assert rec.server_message("f1", j(READY), True) is None  # no rewrite without rewrite_base
    rec.close("f1", 4000, "", True)
    rec.open("f2", "wss://resume.discord.gg/?v=10&encoding=json", ())
    rec.client_message(
        "f2", j({"op": 6, "d": {"token": TOKEN, "session_id": "abc", "seq": 1}}), True
    )
    rec.close("f2", 1006, "", None)
    rec.writer.close()
    assert TOKEN.encode() not in (tmp_path / "r.rpl").read_bytes()
    _, records = read_records(tmp_path / "r.rpl")
    kinds = [type(r).__name__ for r in records]
    assert kinds == [
        "ConnectionRecord", "FrameRecord", "FrameRecord", "ConnectionInfoRecord", "ConnectionInfoRecord",
        "FrameRecord", "CloseRecord", "ConnectionRecord", "FrameRecord", "ConnectionInfoRecord", "CloseRecord",
    ]  # fmt: skip
    assert records[3] == ConnectionInfoRecord(1, records[3].t_ns, shard=(1, 4))
    assert isinstance(records[9], ConnectionInfoRecord)
    assert (records[9].conn_id, records[9].resumes, records[9].session_id) == (2, 1, "abc")
    closes = [r for r in records if isinstance(r, CloseRecord)]
    assert [(c.code, c.clean) for c in closes] == [(4000, True), (None, False)]  # 1006 = dropped


@pytest.mark.parametrize("compression", [Compression.ZLIB_STREAM, Compression.ZSTD_STREAM])
def test_rewrite_recompresses_the_stream(tmp_path: Path, compression: Compression) -> None:
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:9")
    rec.open("f", f"{URL}&compress={compression}", ())
    upstream = make_compressor(compression)
    client = make_decompressor(compression)
    hello = j({"op": 10, "d": {"heartbeat_interval": 45000}})
    got: list[bytes] = []
    for payload in (hello, j(READY), j({"op": 0, "s": 2, "t": "GUILD_CREATE", "d": {"id": "5"}})):
        out = rec.server_message("f", upstream.compress(payload), False)
        assert out  # re-compressed by the recorder
        got += client.feed(out)
    assert got[0] == hello
    ready = json.loads(got[1])
    assert ready["d"]["resume_gateway_url"] == f"ws://127.0.0.1:9{RESUME_PATH}s1/"
    assert json.loads(got[2])["d"] == {"id": "5"}
    assert rec.upstream_for(f"{RESUME_PATH}s1/?v=10&encoding=json") == (
        "wss://resume.discord.gg",
        "/?v=10&encoding=json",
    )
    rec.writer.close()
    frames = [r for r in read_records(tmp_path / "r.rpl")[1] if isinstance(r, FrameRecord)]
    assert frames[1].payload == j(READY)  # the archive keeps what the upstream sent
    assert frames[1].flags == FrameFlag.REWRITTEN


def test_zlib_message_over_two_frames(tmp_path: Path) -> None:
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:9")
    rec.open("f", f"{URL}&compress=zlib-stream", ())
    deflate = zlib.compressobj()
    data = deflate.compress(j(READY)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert rec.server_message("f", data[:10], False) == b""  # incomplete: send nothing yet
    out = rec.server_message("f", data[10:], False)
    assert out
    assert json.loads(make_decompressor(Compression.ZLIB_STREAM).feed(out)[0])["t"] == "READY"


def test_garbage_is_kept_raw_and_forwarded(tmp_path: Path) -> None:
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:9")
    rec.open("f", f"{URL}&compress=zlib-stream", ())
    assert rec.server_message("f", b"\x00\x00\xff\xff garbage\x00\x00\xff\xff", False) is None
    rec.client_message("f", b"not json", True)
    rec.writer.close()
    frames = [r for r in read_records(tmp_path / "r.rpl")[1] if isinstance(r, FrameRecord)]
    assert [(f.direction, f.flags) for f in frames] == [
        (Direction.SERVER, FrameFlag.UNDECODED), (Direction.CLIENT, FrameFlag.UNDECODED),
    ]  # fmt: skip
    assert frames[1].payload == b"not json"


def test_gateway_routes_are_rewritten_and_learned(tmp_path: Path) -> None:
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:9")
    body = j({"url": "wss://gateway.discord.gg", "shards": 1})
    out = rec.http(
        "GET",
        "discord.com",
        "/api/v10/gateway/bot",
        200,
        (("Authorization", f"Bot {TOKEN}"),),
        (),
        b"",
        body,
    )
    assert out is not None
    assert json.loads(out)["url"] == "ws://127.0.0.1:9"
    assert rec.gateway_upstream == "wss://gateway.discord.gg"
    assert rec.upstream_for("/?v=10") == ("wss://gateway.discord.gg", "/?v=10")
    assert rec.http("GET", "discord.com", "/api/v10/users/@me", 200, (), (), b"", b"{}") is None
    rec.writer.close()
    https = [r for r in read_records(tmp_path / "r.rpl")[1] if isinstance(r, HttpRecord)]
    assert https[0].response_body == body  # the upstream's answer, not the rewritten one
    assert https[0].request_headers == (("Authorization", "[REDACTED]"),)


def test_a_failing_disk_never_changes_what_the_client_gets(tmp_path: Path) -> None:
    errors: list[str] = []
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:9", on_error=errors.append)

    def broken(record: object) -> None:
        raise OSError(28, "No space left on device")

    rec.writer.write = broken  # type: ignore[method-assign]
    rec.open("f", f"{URL}&compress=zlib-stream", ())
    upstream = make_compressor(Compression.ZLIB_STREAM)
    out = rec.server_message("f", upstream.compress(j(READY)), False)
    assert out is not None
    assert json.loads(make_decompressor(Compression.ZLIB_STREAM).feed(out)[0])["t"] == "READY"
    assert rec.write_errors >= 2
    assert "No space left" in errors[0]


def test_which_traffic_is_gateway(tmp_path: Path) -> None:
    rec = make(tmp_path)
    assert rec.is_gateway("gateway.discord.gg", "/")
    assert rec.is_gateway("127.0.0.1", "/?encoding=json&v=10")
    assert rec.is_gateway("127.0.0.1", f"{RESUME_PATH}s1/")
    assert not rec.is_gateway("example.com", "/socket")
    assert rec.is_rest("/api/v10/users/@me")
    assert not rec.is_rest("/assets/x.js")


def test_large_payloads_are_recorded_from_their_head(tmp_path: Path) -> None:
    rec = make(tmp_path, rewrite_base="ws://127.0.0.1:9")
    rec.open("f", URL, ())
    pad = "x" * (HEAD_ONLY_BYTES + 100)
    big_ready = {"t": "READY", "s": 1, "op": 0, "d": {**READY["d"], "pad": pad}}  # type: ignore[dict-item]
    guild = j({"t": "GUILD_CREATE", "s": 2, "op": 0, "d": {"id": "5", "pad": pad}})
    cut = guild[:-3]  # the right head, cut short: parsed in full, kept raw
    out = rec.server_message("f", j(big_ready), True)
    assert out is not None  # READY is still read in full, and rewritten
    assert json.loads(out)["d"]["resume_gateway_url"].startswith("ws://127.0.0.1:9")
    assert rec.server_message("f", guild, True) is None
    assert rec.server_message("f", cut, True) is None
    rec.writer.close()
    frames = [r for r in read_records(tmp_path / "r.rpl")[1] if isinstance(r, FrameRecord)]
    assert [(f.op, f.s, f.t, f.flags) for f in frames] == [
        (0, 1, "READY", FrameFlag.REWRITTEN),
        (0, 2, "GUILD_CREATE", FrameFlag.NONE),
        (None, None, None, FrameFlag.UNDECODED),
    ]
    assert [f.payload for f in frames] == [j(big_ready), guild, cut]
    checker = ArchiveChecker()  # every stored op/s/t agrees with a full parse
    for record in read_records(tmp_path / "r.rpl")[1]:
        checker.check(record)
    assert checker.frames == 3
