"""`replayer replay` as a process: Ctrl-C closes clients with 1001 and exits (a second
one at once); --exit-when-idle gives up on a client that never comes; beyond the
descriptor limit new connections get 503 and one log line, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import sys
from pathlib import Path

import pytest
import websockets

from replayer.resources import sample_archive
from tests.clients.conftest import TIMEOUT

SAMPLE = sample_archive("small-bot.rpl")


async def start(*args: str, nofile: int | None = None) -> tuple[asyncio.subprocess.Process, str]:
    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replayer", "replay", str(SAMPLE), "--speed", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=limit,
    )  # fmt: skip
    assert process.stdout is not None
    async with asyncio.timeout(TIMEOUT):
        while line := (await process.stdout.readline()).decode():
            if line.startswith("gateway URL:"):
                return process, line.split(":", 1)[1].strip()
    raise AssertionError("replayer replay exited before serving")


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    return await process.wait(), err.decode()


async def test_ctrl_c_closes_clients_with_1001_and_exits(tmp_path: Path) -> None:
    process, url = await start()
    async with websockets.connect(url + "?v=10&encoding=json", max_queue=None) as ws:
        assert json.loads(await ws.recv())["op"] == 10
        await ws.send(json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": 4097}}))
        assert json.loads(await ws.recv())["t"] == "READY"
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert ws.close_code == 1001
    status, err = await finish(process)
    assert status == 0, err
    assert "Traceback" not in err


async def test_a_second_ctrl_c_exits_at_once() -> None:
    process, url = await start()
    host, port = url.removeprefix("ws://").rstrip("/").rsplit(":", 1)
    # A client that never answers the close frame: the first Ctrl-C waits for it.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /?v=10 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    process.send_signal(signal.SIGINT)
    assert process.stderr is not None
    async with asyncio.timeout(TIMEOUT):
        while b"closing the clients" not in await process.stderr.readline():
            pass
    process.send_signal(signal.SIGINT)
    status, err = await finish(process)
    assert status == 130
    assert "exiting now" in err
    assert "Traceback" not in err
    writer.close()


async def test_exit_when_idle_gives_up_on_a_client_that_never_comes() -> None:
    process, _ = await start("--exit-when-idle", "--first-client-grace", "300ms")
    status, err = await finish(process)
    assert status == 1
    assert err.strip().splitlines()[-1] == (
        "error: no client connected within 300ms (--first-client-grace)"
    )


@pytest.mark.parametrize("clients", [120])
async def test_beyond_the_descriptor_limit_connections_get_503(clients: int) -> None:
    process, url = await start("--exit-when-idle", "--idle-grace", "200ms", nofile=64)
    opened: list[websockets.ClientConnection] = []
    statuses: list[int] = []
    try:
        for _ in range(clients):  # one after another: each is in or refused before the next
            try:
                ws = await websockets.connect(url + "?v=10&encoding=json", max_queue=None)
            except websockets.InvalidStatus as exc:
                statuses.append(exc.response.status_code)
                continue
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
            opened.append(ws)
    finally:
        for ws in opened:
            await ws.close()
    assert opened
    assert statuses
    assert set(statuses) == {503}
    assert len(opened) + len(statuses) == clients
    status, err = await finish(process)
    assert status == 0, err
    assert "Traceback" not in err
    assert err.count("refusing new connections with 503") == 1
