"""Hostile and careless clients against a real ReplayServer: RFC 6455 hygiene (masked
frames, GET upgrades), a header timeout, malformed HTTP in one log line, a reset right
after IDENTIFY, a stop with clients connected; and a transcript that never changes what a
client sees or the server's bookkeeping, and always verifies."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from replayer.archive.reader import ArchiveReader
from replayer.archive.verify import ArchiveChecker
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from tests.archives import session_lines, write_archive
from tests.clients.conftest import TIMEOUT


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ReplayServer]:
    script = load_script(write_archive(tmp_path / "a.rpl", session_lines()))
    async with ReplayServer(script, ReplayOptions(speed=0)) as replay:
        yield replay


async def handshake(
    port: int, path: str = "/?v=10&encoding=json", method: str = "GET"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """A WebSocket opening handshake by hand; returns the streams and the status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    return reader, writer, head.split(b"\r\n", 1)[0]


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame: (opcode, payload)."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
    size = b1 & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(size)


def text_frame(payload: bytes, masked: bool) -> bytes:
    assert len(payload) < 126
    if not masked:
        return bytes([0x81, len(payload)]) + payload
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def test_an_unmasked_client_frame_is_closed_with_1002(server: ReplayServer) -> None:
    reader, writer, status = await handshake(server.port)
    assert status == b"HTTP/1.1 101 Switching Protocols"
    opcode, hello = await read_frame(reader)
    assert json.loads(hello)["op"] == 10
    heartbeat = json.dumps({"op": 1, "d": None}).encode()
    writer.write(text_frame(heartbeat, masked=True))  # masked: answered
    assert json.loads((await read_frame(reader))[1])["op"] == 11
    writer.write(text_frame(heartbeat, masked=False))
    opcode, payload = await read_frame(reader)
    assert opcode == 0x8
    assert int.from_bytes(payload[:2], "big") == 1002
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # and the socket is closed
    writer.close()


async def test_an_upgrade_must_be_a_get(server: ReplayServer) -> None:
    _, writer, status = await handshake(server.port, method="POST")
    assert status == b"HTTP/1.1 405 Method Not Allowed"
    writer.close()


async def test_a_trickled_request_head_is_dropped(server: ReplayServer) -> None:
    server.header_timeout_s = 0.3
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /api/v10/gateway HTTP/1.1\r\nHost: x\r\n")  # never finished
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()
    # A whole head in time is served as ever.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /api/v10/gateway HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), TIMEOUT)).startswith(b"HTTP/1.1 200")
    writer.close()


@pytest.mark.parametrize(
    "garbage",
    [b"BLAH\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"\x16\x03\x01"],
)
async def test_malformed_http_is_one_log_line(
    server: ReplayServer, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(garbage)
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.0 400 Bad Request", b"HTTP/1.1 400 Bad Request")
    writer.close()
    assert [r.name for r in caplog.records] == ["replayer.replay.http"]  # aiohttp's, ours
    for record in caplog.records:
        assert record.exc_info is None, record
        assert "\n" not in record.getMessage(), record.getMessage()


async def test_a_reset_right_after_identify(
    server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        reader, writer, _ = await handshake(server.port)
        await read_frame(reader)  # HELLO
        writer.write(text_frame(json.dumps({"op": 2, "d": {"token": "t"}}).encode(), True))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST
    async with asyncio.timeout(TIMEOUT):
        while server.connections_open:
            server.changed.clear()
            await server.changed.wait()
    assert server.connections_total == 5
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_stop_closes_clients_with_1001(server: ReplayServer) -> None:
    async with websockets.connect(server.gateway_url + "?v=10&encoding=json") as ws:
        assert json.loads(await ws.recv())["op"] == 10
        await asyncio.wait_for(server.stop(), TIMEOUT)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1001


async def test_stop_drops_a_client_that_never_answers_the_close(server: ReplayServer) -> None:
    reader, writer, _ = await handshake(server.port)
    await read_frame(reader)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(server.stop(), TIMEOUT)
    assert loop.time() - started < 5  # STOP_CLOSE_TIMEOUT_S, then dropped
    opcode, payload = await read_frame(reader)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (0x8, 1001)
    writer.close()


# --- the transcript watches, it does not take part ---------------------------------------------


async def what_the_client_sees(server: ReplayServer, query: str, message: str) -> list[object]:
    seen: list[object] = []
    async with websockets.connect(server.gateway_url + query, max_queue=None) as ws:
        try:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"])
            await ws.send(message)
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"])
        except websockets.ConnectionClosed as closed:
            seen.append(closed.rcvd.code if closed.rcvd else None)
    async with asyncio.timeout(TIMEOUT):
        while server.connections_open:
            server.changed.clear()
            await server.changed.wait()
    return seen


HOSTILE = [
    ("?v=99999999999999999999&encoding=json", '{"op": 1, "d": null}'),
    ("?v=10&encoding=json", '{"op": 1, "d": null, "s": 18446744073709551616}'),
    ("?v=10&encoding=json", '{"op": 18446744073709551617, "d": null}'),
    ("?v=10&encoding=foo", '{"op": 1, "d": null}'),
    ("?v=10&encoding=json", '{"op": 2, "d": {"token": "t", "shard": [0, 18446744073709551616]}}'),
]


@pytest.mark.parametrize(("query", "message"), HOSTILE)
async def test_a_transcript_never_changes_the_replay(
    tmp_path: Path, query: str, message: str
) -> None:
    script = load_script(write_archive(tmp_path / "a.rpl", session_lines()))
    async with ReplayServer(script, ReplayOptions(speed=0)) as plain:
        without = await what_the_client_sees(plain, query, message)
    transcript = tmp_path / "t.rpl"
    async with ReplayServer(script, ReplayOptions(speed=0), transcript=transcript) as watched:
        with_transcript = await what_the_client_sees(watched, query, message)
        assert watched.connections_open == 0  # the bookkeeping --exit-when-idle relies on
    assert with_transcript == without
    checker = ArchiveChecker()
    with ArchiveReader(transcript) as reader:
        records = list(reader)
    for record in records:
        checker.check(record)  # every transcript verifies
    assert checker.connections == 1
