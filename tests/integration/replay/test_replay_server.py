"""The replay server over real sockets: REST face, gateway face, misbehaving clients."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from replayer.archive.reader import read_records
from replayer.archive.records import CloseRecord, FrameRecord
from replayer.gateway.compression import Compression, make_decompressor
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import sample_archive
from tests.unit.replay.conftest import session_lines, write_archive

TIMEOUT = 10 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))
SAMPLE = sample_archive("sample-small.rpl")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ReplayServer]:
    extra = [
        {"kind": "http", "t_ms": 500, "method": "POST", "path": "/api/v9/channels/5/messages", "status": 200, "response_body": {"id": "77", "content": "posted"}},
    ]  # fmt: skip
    lines = session_lines(shard=(0, 2)) + session_lines(shard=(1, 2), conn=2, t0_ms=1) + extra
    lines.sort(key=lambda o: o["t_ms"])
    path = write_archive(tmp_path / "a.rpl", lines)
    async with ReplayServer(
        load_script(path), ReplayOptions(speed=0), transcript=tmp_path / "t.rpl"
    ) as s:
        yield s


async def recv_json(
    ws: ClientConnection, compression: Compression = Compression.NONE, inflater: Any = None
) -> Any:
    frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if compression is Compression.NONE:
        assert isinstance(frame, str)  # uncompressed JSON goes in text frames, as Discord does
        return json.loads(frame)
    assert isinstance(frame, bytes)
    [message] = inflater.feed(frame)
    return json.loads(message)


async def test_rest_routes(server: ReplayServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.rest_base}/gateway/bot") as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/json"  # exactly: discord.py needs it
            body = await r.json()
            assert body["url"] == server.gateway_url.rstrip("/")
            assert body["shards"] == 2
            assert body["session_start_limit"]["remaining"] >= 2
        async with http.get(f"{server.rest_base}/gateway") as r:
            assert (await r.json()) == {"url": server.gateway_url.rstrip("/")}
        async with http.get(f"{server.rest_base}/users/@me") as r:
            assert (await r.json())["id"] == "9"
        async with http.get(f"{server.rest_base}/oauth2/applications/@me") as r:
            app = await r.json()
            assert {
                "description",
                "icon",
                "bot_public",
                "bot_require_code_grant",
                "owner",
                "verify_key",
            } <= set(app)
        async with http.post(f"{server.rest_base}/channels/5/messages", json={"content": "x"}) as r:
            assert (await r.json()) == {"id": "77", "content": "posted"}  # recorded under v9
        async with http.get(f"{server.rest_base}/channels/5/messages") as r:
            assert r.status == 404
            assert r.headers["Content-Type"] == "application/json"
            assert (await r.json())["message"] == "404: Not Found"


@pytest.mark.parametrize(
    "compress", [Compression.NONE, Compression.ZLIB_STREAM, Compression.ZSTD_STREAM]
)
async def test_client_chooses_the_wire_format(server: ReplayServer, compress: Compression) -> None:
    query = "?v=10&encoding=json" + (
        "" if compress is Compression.NONE else f"&compress={compress}"
    )
    inflater = make_decompressor(compress)
    async with websockets.connect(server.gateway_url + query, compression=None) as ws:
        hello = await recv_json(ws, compress, inflater)
        assert hello["op"] == 10
        await ws.send(json.dumps({"op": 2, "d": {"token": "t", "shard": [1, 2], "intents": 4097}}))
        events = [(await recv_json(ws, compress, inflater))["t"] for _ in range(6)]
        assert events == [
            "READY",
            "GUILD_CREATE",
            "GUILD_CREATE",
            "MESSAGE_CREATE",
            "MESSAGE_CREATE",
            "MESSAGE_CREATE",
        ]
        await ws.send(json.dumps({"op": 1, "d": 6}))
        assert (await recv_json(ws, compress, inflater))["op"] == 11


async def test_misbehaving_clients_do_not_hurt_others(server: ReplayServer) -> None:
    async with websockets.connect(server.gateway_url + "?v=10&encoding=json") as good:
        await recv_json(good)
        # A client that drops its TCP connection mid-handshake of the session.
        rude = await websockets.connect(server.gateway_url + "?v=10&encoding=json")
        await recv_json(rude)
        rude.transport.abort()
        # A client that sends garbage is closed with 4002, another with a bad query too.
        async with websockets.connect(server.gateway_url + "?v=10&encoding=json") as noisy:
            await recv_json(noisy)
            await noisy.send(b"\x00\xff garbage")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(noisy.recv(), TIMEOUT)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4002
        async with websockets.connect(server.gateway_url + "?v=10&encoding=xml") as bad_query:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(bad_query.recv(), TIMEOUT)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4002
        # The first client is unaffected.
        await good.send(
            json.dumps({"op": 2, "d": {"token": "t", "shard": [0, 2], "intents": 4097}})
        )
        assert (await recv_json(good))["t"] == "READY"


async def test_transcript_records_both_directions(server: ReplayServer, tmp_path: Path) -> None:
    async with websockets.connect(server.gateway_url + "?v=10&encoding=json") as ws:
        await recv_json(ws)
        await ws.send(
            json.dumps(
                {"op": 2, "d": {"token": "secret-token-value", "shard": [0, 2], "intents": 4097}}
            )
        )
        for _ in range(6):
            await recv_json(ws)
        await ws.close(4000)
    async with asyncio.timeout(TIMEOUT):
        while server.connections_open:
            server.changed.clear()
            await server.changed.wait()
    await server.stop()
    _, records = read_records(tmp_path / "t.rpl")
    frames = [r for r in records if isinstance(r, FrameRecord)]
    assert [(f.direction, f.op, f.t) for f in frames][:3] == [
        (Direction.SERVER, 10, None), (Direction.CLIENT, 2, None), (Direction.SERVER, 0, "READY"),
    ]  # fmt: skip
    assert b"secret-token-value" not in (tmp_path / "t.rpl").read_bytes()
    closes = [r for r in records if isinstance(r, CloseRecord)]
    assert [(c.code, c.clean) for c in closes] == [(4000, True)]


async def test_sample_archive_serves(tmp_path: Path) -> None:
    from replayer.gateway.etf import etf_decode, etf_encode

    async with ReplayServer(load_script(SAMPLE), ReplayOptions(speed=0)) as server:  # noqa: SIM117 - the client needs the server URL
        async with websockets.connect(server.gateway_url + "?v=10&encoding=etf") as ws:
            hello = etf_decode(await asyncio.wait_for(ws.recv(), TIMEOUT))  # type: ignore[arg-type]
            assert hello["d"]["heartbeat_interval"] == 41250
            await ws.send(etf_encode({"op": 2, "d": {"token": "x", "intents": 4097}}))
            ready = etf_decode(await asyncio.wait_for(ws.recv(), TIMEOUT))  # type: ignore[arg-type]
            assert ready["t"] == "READY"
            assert ready["d"]["resume_gateway_url"] == server.gateway_url + "resume/1"
