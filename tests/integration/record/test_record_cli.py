"""`replayer record` as a user runs it: a subprocess, both modes, Ctrl-C closes the archive."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import CloseRecord, FrameRecord
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from tests.archives import session_lines, write_archive

TIMEOUT = 20 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gcli00.record-cli-secret-token-value"


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[ReplayServer]:
    path = write_archive(tmp_path / "up.rpl", session_lines())
    async with ReplayServer(load_script(path), ReplayOptions(speed=0)) as server:
        yield server


async def start_record(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `replayer record` and return it with the URL line it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "replayer", "record", "--confdir", str(tmp_path / "mitm"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(TIMEOUT):
        while True:
            line = await loop.run_in_executor(None, proc.stdout.readline)
            assert line, "replayer record exited early"
            if m := re.search(r"(gateway URL|HTTP proxy): *(\S+)", line):
                return proc, m.group(2)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert proc.wait(TIMEOUT) == 0
    assert proc.stdout is not None
    proc.stdout.close()


async def identify_and_read(ws: websockets.ClientConnection) -> list[str | None]:
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
    await ws.send(json.dumps({"op": 2, "d": {"token": TOKEN, "properties": {}}}))
    return [json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["t"] for _ in range(6)]


def check_archive(path: Path) -> list[FrameRecord]:
    with ArchiveReader(path) as reader:
        records = list(reader)  # complete: no truncated tail after Ctrl-C
    assert any(isinstance(r, CloseRecord) for r in records)
    assert TOKEN.encode() not in path.read_bytes()
    return [r for r in records if isinstance(r, FrameRecord)]


async def test_reverse_mode(tmp_path: Path, upstream: ReplayServer) -> None:
    out = tmp_path / "rev.rpl"
    proc, gateway_url = await start_record(
        tmp_path, "-o", str(out), "--upstream", f"http://127.0.0.1:{upstream.port}",
        "--gateway-upstream", upstream.gateway_url,
    )  # fmt: skip
    try:
        assert gateway_url.startswith("ws://127.0.0.1:")
        async with websockets.connect(gateway_url + "?v=10&encoding=json") as ws:
            events = await identify_and_read(ws)
        assert events[0] == "READY"
    finally:
        stop(proc)
    frames = check_archive(out)
    assert [f.t for f in frames if f.direction == Direction.SERVER][1:3] == [
        "READY",
        "GUILD_CREATE",
    ]


async def test_regular_mode_sees_any_host(tmp_path: Path, upstream: ReplayServer) -> None:
    out = tmp_path / "reg.rpl"
    proc, proxy_url = await start_record(tmp_path, "--mode", "regular", "-o", str(out))
    try:
        assert proxy_url.startswith("http://127.0.0.1:")
        async with websockets.connect(
            upstream.gateway_url + "?v=10&encoding=json", proxy=proxy_url
        ) as ws:
            events = await identify_and_read(ws)
        assert events[0] == "READY"
    finally:
        stop(proc)
    frames = check_archive(out)
    assert sum(1 for f in frames if f.direction == Direction.SERVER) == 7
