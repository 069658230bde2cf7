"""`replayer record` as a user runs it: a subprocess, both modes, Ctrl-C closes the archive."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import CloseRecord, FrameRecord
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.intents import VALID_INTENTS
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


async def start_record(
    tmp_path: Path, *args: str, **popen: Any
) -> tuple[subprocess.Popen[str], str]:
    """Start `replayer record` and return it with the URL line it printed."""
    popen.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen(
        [sys.executable, "-m", "replayer", "record", "--confdir", str(tmp_path / "mitm"), *args],
        stdout=subprocess.PIPE,
        text=True,
        **popen,
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
    await ws.send(json.dumps({"op": 2, "d": {"token": TOKEN, "properties": {}, "intents": 4097}}))
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


def test_a_busy_port_fails_at_once_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "replayer", "record", "-o", str(tmp_path / "x.rpl"),
             "--port", str(port), "--confdir", str(tmp_path / "mitm")],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert not (tmp_path / "x.rpl").exists()


async def test_ctrl_c_with_a_bot_connected(tmp_path: Path, upstream: ReplayServer) -> None:
    """No traceback, exit 0, and the archive is whole, the cut connection included; the
    live table on stderr shows the connection's URL without its token."""
    out = tmp_path / "rec.rpl"
    proc, gateway_url = await start_record(
        tmp_path, "-o", str(out), "--upstream", f"http://127.0.0.1:{upstream.port}",
        "--gateway-upstream", upstream.gateway_url, stderr=subprocess.PIPE,
    )  # fmt: skip
    url_secret = "url-secret-token-value"
    async with websockets.connect(f"{gateway_url}?v=10&encoding=json&token={url_secret}") as ws:
        assert (await identify_and_read(ws))[0] == "READY"
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.to_thread(proc.communicate, timeout=TIMEOUT)
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)  # the proxy ended the connection
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "Error" not in stderr, stderr
    assert f"closed {out}" in stderr
    assert "&token=[REDACTED]" in stderr  # the live table's URL, as CI logs keep it
    assert url_secret not in stderr
    frames = check_archive(out)
    assert len(frames) == 8  # IDENTIFY and the 7 the client read


def _limit_file_size(limit_bytes: int) -> Callable[[], None]:
    def limit() -> None:  # in the child, before exec
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails: EFBIG
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))

    return limit


async def test_a_full_disk_is_said_once_and_the_bot_gets_everything(tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk: the kernel cuts a write short at the
    limit, then fails the next with EFBIG, as a full file system does with ENOSPC
    (unlike /dev/full, the file is real and can be read back; no root needed). The
    limit is per process: only `replayer record` has it."""
    from mitmproxy.certs import CertStore

    from replayer.synth import SynthOptions, write_synth

    limit = 20_000
    CertStore.from_store(tmp_path / "mitm", "mitmproxy", 2048)  # the CA, made before
    path = tmp_path / "up.rpl"
    write_synth(
        path, SynthOptions(guilds=3, members_per_guild=200, member_chunk_requests=0, seed=1)
    )
    script = load_script(path)
    expected = len(script.shards[0])
    out = tmp_path / "rec.rpl"
    async with ReplayServer(script, ReplayOptions(speed=0)) as up:
        proc, gateway_url = await start_record(
            tmp_path, "-o", str(out), "--upstream", f"http://127.0.0.1:{up.port}",
            "--gateway-upstream", up.gateway_url, stderr=subprocess.PIPE,
            preexec_fn=_limit_file_size(limit),
        )  # fmt: skip
        async with websockets.connect(gateway_url + "?v=10&encoding=json") as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
            await ws.send(
                json.dumps(
                    {"op": 2, "d": {"token": TOKEN, "properties": {}, "intents": VALID_INTENTS}}
                )  # every event the synth session holds
            )
            events = [
                json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) for _ in range(expected)
            ]
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.to_thread(proc.communicate, timeout=TIMEOUT)
    assert [e["s"] for e in events] == list(range(1, expected + 1))  # every frame, in order
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    reason = os.strerror(errno.EFBIG)
    said = [line for line in stderr.splitlines() if reason in line]
    assert len(said) == 2, stderr  # once when it happened, once in the closing line
    assert said[0].startswith("error: ")
    assert "recording stopped" in said[0]
    assert said[1].startswith(f"closed {out}: recording stopped when a write failed ({reason})")
    assert 0 < out.stat().st_size <= limit
    with ArchiveReader(out) as reader:
        records = list(reader)  # no truncated tail
    assert 0 < sum(isinstance(r, FrameRecord) for r in records) < expected
