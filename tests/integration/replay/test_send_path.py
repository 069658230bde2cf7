"""The replay server's send path over real sockets: frames the server writes itself, a
batch at a time, as real ``websockets`` and aiohttp clients read them (with and without
permessage-deflate offered, with zlib-stream); connections sharing one archive reader;
nothing of a connection left once it has gone."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord
from replayer.gateway.compression import Compression, make_decompressor
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import GatewayConnection, ReplayOptions
from replayer.replay.script import ArchivePayloads, load_script
from replayer.replay.server import ReplayServer
from tests.archives import INTENTS, session_lines, write_archive

TIMEOUT = 10 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))
SHARDS = 2
# Payload lengths on both sides of the WebSocket header's length forms (7-bit, 16-bit,
# 64-bit: RFC 6455 section 5.2), and enough bytes for several batches.
SIZES = [1, 60, 125, 300, 65_000, 70_000, *([900] * 200)]


def _lines() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for k in range(SHARDS):
        extra = [
            {"kind": "frame", "conn": k + 1, "dir": "server", "t_ms": 1000 + 2 * i + k,
             "payload": {"op": 0, "s": 7 + i, "t": "MESSAGE_CREATE",
                         "d": {"content": f"{k}:" + "é" * (i % 2) + "x" * n}}}
            for i, n in enumerate(SIZES)
        ]  # fmt: skip
        lines += session_lines(shard=(k, SHARDS), conn=k + 1, t0_ms=k, extra=extra)
    lines.sort(key=lambda o: o["t_ms"])  # the shards interleave in the file
    return lines


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("send") / "a.rpl", _lines())


def recorded(archive: Path) -> list[list[dict[str, Any]]]:
    """Each shard's dispatches as recorded (decoded)."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(SHARDS)]
    with ArchiveReader(archive) as reader:
        for r in reader:
            if isinstance(r, FrameRecord) and (r.direction, r.op) == (Direction.SERVER, 0):
                out[r.conn_id - 1].append(json.loads(r.payload))
    return out


@pytest.fixture
async def server(archive: Path) -> AsyncIterator[ReplayServer]:
    options = ReplayOptions(speed=0, identify_concurrency=False, heartbeat_timeout=False)
    async with ReplayServer(load_script(archive), options) as s:
        yield s


def identify(shard: int) -> str:
    d = {"token": "t", "properties": {}, "intents": INTENTS, "shard": [shard, SHARDS]}
    return json.dumps({"op": 2, "d": d})


def check_stream(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [p["s"] for p in got] == list(range(1, len(want) + 1))
    assert got[0]["t"] == "READY"  # pointed at this server: not the recorded one
    assert got[1:] == want[1:]  # every other dispatch exactly as recorded


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_websockets_client_reads_every_frame(
    server: ReplayServer, archive: Path, compression: str | None
) -> None:
    """Offered permessage-deflate or not: the server takes no extension (its frames carry
    none) and every frame, of every header length form, arrives whole."""
    want = recorded(archive)
    async with websockets.connect(
        server.gateway_url + "?v=10&encoding=json", compression=compression, max_size=None
    ) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
        await ws.send(identify(1))
        got = []
        for _ in want[1]:
            frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert isinstance(frame, str)  # uncompressed JSON: text frames
            got.append(json.loads(frame))
    check_stream(got, want[1])


@pytest.mark.parametrize("compress", [0, 15])
async def test_aiohttp_client_reads_every_frame(
    server: ReplayServer, archive: Path, compress: int
) -> None:
    want = recorded(archive)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            server.gateway_url + "?v=10&encoding=json", compress=compress, max_msg_size=0
        ) as ws,
    ):
        assert ws.compress == 0  # permessage-deflate declined
        assert (await ws.receive_json(timeout=TIMEOUT))["op"] == 10
        await ws.send_str(identify(0))
        got = [await ws.receive_json(timeout=TIMEOUT) for _ in want[0]]
    check_stream(got, want[0])


async def test_zlib_stream_frames_inflate_in_one_context(
    server: ReplayServer, archive: Path
) -> None:
    want = recorded(archive)
    inflater = make_decompressor(Compression.ZLIB_STREAM)
    url = server.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
    async with websockets.connect(url, compression="deflate", max_size=None) as ws:
        messages: list[dict[str, Any]] = []
        while len(messages) < 1 + len(want[0]):
            frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert isinstance(frame, bytes)
            messages += [json.loads(m) for m in inflater.feed(frame)]
            if len(messages) == 1:
                assert messages[0]["op"] == 10
                await ws.send(identify(0))
    check_stream(messages[1:], want[0])


async def test_connections_share_one_reader_and_leave_nothing(
    server: ReplayServer, archive: Path
) -> None:
    """Interleaved connections of both shards, read a message from each in turn, get
    their own frames from the server's one ArchivePayloads; once they have gone, no
    GatewayConnection of theirs is left (nor any other reader)."""
    want = recorded(archive)
    clients = [
        await websockets.connect(server.gateway_url + "?v=10&encoding=json", max_size=None)
        for _ in range(2 * SHARDS)
    ]
    try:
        for i, ws in enumerate(clients):
            await asyncio.wait_for(ws.recv(), TIMEOUT)  # HELLO
            await ws.send(identify(i % SHARDS))
        got: list[list[dict[str, Any]]] = [[] for _ in clients]
        while any(len(g) < len(want[i % SHARDS]) for i, g in enumerate(got)):
            for i, ws in enumerate(clients):
                if len(got[i]) < len(want[i % SHARDS]):
                    got[i].append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        conns = list(server._pokes)
        assert len(conns) == len(clients)
        assert {id(c.payloads) for c in conns} == {id(server._payloads)}
        refs = [weakref.ref(c) for c in conns]
        del conns
    finally:
        for ws in clients:
            await ws.close()
    for i, g in enumerate(got):
        check_stream(g, want[i % SHARDS])
    while server.connections_open:
        server.changed.clear()
        await asyncio.wait_for(server.changed.wait(), TIMEOUT)
    await asyncio.sleep(0)
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs)
    # Of this server (other tests' objects may be alive in this process).
    objects = gc.get_objects()
    conns = [o for o in objects if isinstance(o, GatewayConnection) and o.replay is server.replay]
    readers = [o for o in objects if isinstance(o, ArchivePayloads) and o.file is server._archive]
    assert conns == []
    assert readers == [server._payloads]
    assert not server._head_timers  # cancelled by each connection's request
