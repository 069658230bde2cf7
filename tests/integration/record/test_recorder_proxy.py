"""The recorder in a real mitmproxy, in front of a real (local) gateway: what goes
through is what the upstream and the client sent, and the archive holds exactly that."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from replayer.archive.reader import ArchiveReader, read_records
from replayer.archive.records import ConnectionInfoRecord, FrameFlag, FrameRecord, HttpRecord
from replayer.gateway.compression import Compression, make_decompressor
from replayer.gateway.opcodes import Direction
from replayer.record.proxy import RecordingProxy, RecordSettings
from replayer.record.worker import wait_until_written
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import addon_path
from tests.archives import session_lines, write_archive

TIMEOUT = 20 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))
ADDON = addon_path()
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gx1234.proxy-test-secret-token-abcdefgh"


@pytest.fixture
async def upstream(tmp_path: Path) -> AsyncIterator[ReplayServer]:
    path = write_archive(tmp_path / "up.rpl", session_lines())
    options = ReplayOptions(speed=0, close_at_end=4000)
    async with ReplayServer(
        load_script(path), options, transcript=tmp_path / "upstream.rpl"
    ) as server:
        yield server


@pytest.fixture
async def proxy(tmp_path: Path, upstream: ReplayServer) -> AsyncIterator[RecordingProxy]:
    settings = RecordSettings(
        tmp_path / "rec.rpl",
        upstream=f"http://127.0.0.1:{upstream.port}",
        confdir=tmp_path / "mitm",
    )
    async with RecordingProxy(settings) as p:
        yield p


def frames(path: Path, direction: Direction) -> list[bytes]:
    return [
        r.payload
        for r in read_records(path)[1]
        if isinstance(r, FrameRecord) and r.direction == direction
    ]


async def session_through(
    gateway_url: str, compress: Compression
) -> tuple[list[dict[str, Any]], str]:
    """HELLO, IDENTIFY, everything until the upstream closes with 4000; then RESUME."""
    query = "?v=10&encoding=json" + (
        "" if compress is Compression.NONE else f"&compress={compress}"
    )
    inflate = make_decompressor(compress)
    got: list[dict[str, Any]] = []

    async def read(ws: websockets.ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in ws:
                data = frame.encode() if isinstance(frame, str) else frame
                for message in inflate.feed(data) if compress is not Compression.NONE else [data]:
                    got.append(json.loads(message))

    async with websockets.connect(gateway_url + query, compression=None) as ws:
        await ws.send(
            json.dumps({"op": 2, "d": {"token": TOKEN, "properties": {}, "intents": 4097}})
        )
        await asyncio.wait_for(read(ws), TIMEOUT)
        assert ws.close_code == 4000
    resume_url = next(p["d"]["resume_gateway_url"] for p in got if p.get("t") == "READY")
    return got, resume_url


@pytest.mark.parametrize(
    "compress", [Compression.NONE, Compression.ZLIB_STREAM, Compression.ZSTD_STREAM]
)
async def test_archive_holds_exactly_what_went_through(
    tmp_path: Path, upstream: ReplayServer, proxy: RecordingProxy, compress: Compression
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{proxy.rest_base}/gateway/bot", headers={"Authorization": f"Bot {TOKEN}"}) as r,
    ):
        assert (await r.json())["url"] == proxy.gateway_url.rstrip("/")  # kept on the proxy
    got, resume_url = await session_through(proxy.gateway_url, compress)
    assert resume_url.startswith(proxy.gateway_url.rstrip("/") + "/_replayer/resume/")
    assert [p.get("t") for p in got] == [
        None,
        "READY",
        "GUILD_CREATE",
        "GUILD_CREATE",
        "MESSAGE_CREATE",
        "MESSAGE_CREATE",
        "MESSAGE_CREATE",
    ]
    # A RESUME through the rewritten URL reaches the upstream and is recorded, linked.
    inflate = make_decompressor(compress)
    query = "?v=10&encoding=json" + (
        "" if compress is Compression.NONE else f"&compress={compress}"
    )

    def decode(frame: str | bytes) -> dict[str, Any]:
        data = frame.encode() if isinstance(frame, str) else frame
        [message] = inflate.feed(data) if compress is not Compression.NONE else [data]
        return json.loads(message)  # type: ignore[no-any-return]

    async with websockets.connect(resume_url + query, compression=None) as ws:
        assert decode(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
        await ws.send(json.dumps({"op": 6, "d": {"token": TOKEN, "session_id": "sess1", "seq": 6}}))
        assert decode(await asyncio.wait_for(ws.recv(), TIMEOUT))["t"] == "RESUMED"
    await proxy.stop()
    await upstream.stop()
    archive, transcript = tmp_path / "rec.rpl", tmp_path / "upstream.rpl"
    assert frames(archive, Direction.SERVER) == frames(transcript, Direction.SERVER)
    assert frames(archive, Direction.CLIENT) == frames(transcript, Direction.CLIENT)
    data = archive.read_bytes()
    assert TOKEN.encode() not in data
    assert b"proxy-test-secret" not in data
    _, records = read_records(archive)
    [ready] = [r for r in records if isinstance(r, FrameRecord) and r.t == "READY"]
    assert ready.flags & FrameFlag.REWRITTEN
    links = [r for r in records if isinstance(r, ConnectionInfoRecord) and r.resumes is not None]
    assert [(r.conn_id, r.resumes) for r in links] == [(2, 1)]
    assert any(isinstance(r, HttpRecord) and r.path == "/api/v10/gateway/bot" for r in records)


async def test_client_keeps_its_traffic_when_the_addon_fails(
    tmp_path: Path, proxy: RecordingProxy
) -> None:
    recorder = proxy.recorder
    assert recorder is not None

    def explode(*args: object) -> None:
        raise RuntimeError("recorder bug")

    recorder.client_message = explode  # type: ignore[method-assign]
    got, _ = await session_through(proxy.gateway_url, Compression.NONE)
    assert [p.get("t") for p in got][:2] == [None, "READY"]
    assert proxy.addon.errors >= 1
    await proxy.stop()
    client_frames = [
        r
        for r in read_records(tmp_path / "rec.rpl")[1]
        if isinstance(r, FrameRecord) and r.direction == Direction.CLIENT
    ]
    assert client_frames[0].flags & FrameFlag.UNDECODED  # stored raw, with the error
    assert "recorder bug" in (client_frames[0].error or "")


async def start_mitmdump(
    tmp_path: Path,
    upstream: ReplayServer,
    *args: str,
    log: list[str] | None = None,
    mode: list[str] | None = None,
) -> tuple[subprocess.Popen[str], int]:
    """mitmdump in reverse mode before ``upstream`` (or in ``mode``); its port."""
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mitmdump")),
            *(mode or ["--mode", f"reverse:http://127.0.0.1:{upstream.port}@127.0.0.1:0"]),
            "--set", f"confdir={tmp_path / 'mitm'}",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(TIMEOUT):
        while True:
            line = await loop.run_in_executor(None, proc.stdout.readline)
            assert line, "mitmdump exited"
            if log is not None:
                log.append(line)
            if m := re.search(r"listening at .*:(\d+)", line):
                return proc, int(m.group(1))


async def test_mitmdump_script_and_kill_9(tmp_path: Path, upstream: ReplayServer) -> None:
    """The addon works as a plain `mitmdump -s` script, and after kill -9 of the proxy
    every frame written before is readable."""
    out = tmp_path / "dump.rpl"
    proc, port = await start_mitmdump(
        tmp_path, upstream, "-s", str(ADDON), "--set", f"gateway_record={out}",
        "--set", f"gateway_upstream=ws://127.0.0.1:{upstream.port}",
    )  # fmt: skip
    try:
        got, _ = await session_through(f"ws://127.0.0.1:{port}/", Compression.ZLIB_STREAM)
        assert len(got) == 7
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()
    # The recorder worker outlives the proxy: it writes what the pipe still holds.
    await asyncio.wait_for(asyncio.to_thread(wait_until_written, out), TIMEOUT)
    with ArchiveReader(out) as reader:
        records = list(reader)  # no truncation error: each record went out whole
    server_frames = [
        r for r in records if isinstance(r, FrameRecord) and r.direction == Direction.SERVER
    ]
    assert [f.t for f in server_frames][1:3] == ["READY", "GUILD_CREATE"]
    assert len(server_frames) == 7


async def test_the_proxy_outlives_its_recorder_worker(
    tmp_path: Path, upstream: ReplayServer
) -> None:
    """kill -9 of the recorder worker: the client's session goes on through the proxy,
    mitmdump says recording stopped, and the archive stays readable."""
    out = tmp_path / "dump.rpl"
    log: list[str] = []
    proc, port = await start_mitmdump(
        tmp_path, upstream, "-s", str(ADDON), "--set", f"gateway_record={out}",
        "--set", f"gateway_upstream=ws://127.0.0.1:{upstream.port}", log=log,
    )  # fmt: skip
    try:
        [worker_pid] = [
            int(m.group(1)) for line in log if (m := re.search(r"worker pid (\d+)", line))
        ]
        os.kill(worker_pid, signal.SIGKILL)
        await asyncio.wait_for(asyncio.to_thread(wait_until_written, out), TIMEOUT)
        got, _ = await session_through(f"ws://127.0.0.1:{port}/", Compression.ZLIB_STREAM)
        assert len(got) == 7  # the whole session, untouched by the dead recorder
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=TIMEOUT)
    assert "the recorder worker's pipe broke (worker exit status -9)" in output
    assert proc.returncode == 0
    with ArchiveReader(out) as reader:  # the header the proxy wrote, and no record
        assert reader.header.metadata["recorder"] == "gateway_recorder.py (mitmdump -s)"
        assert list(reader) == []


async def test_import_mitm_flow_file(tmp_path: Path, upstream: ReplayServer) -> None:
    flows = tmp_path / "flows.mitm"
    proc, port = await start_mitmdump(tmp_path, upstream, "-w", str(flows))
    try:
        got, _ = await session_through(f"ws://127.0.0.1:{port}/", Compression.ZSTD_STREAM)
        assert len(got) == 7
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()
    await upstream.stop()
    out = tmp_path / "imported.rpl"
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "import-mitm", str(flows), "-o", str(out)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 gateway connections" in result.stderr
    transcript = tmp_path / "upstream.rpl"
    assert frames(out, Direction.SERVER) == frames(transcript, Direction.SERVER)
    assert frames(out, Direction.CLIENT) == frames(transcript, Direction.CLIENT)
    assert TOKEN.encode() not in out.read_bytes()
    bad = subprocess.run(
        [sys.executable, "-m", "replayer", "import-mitm", str(upstream.script.path), "-o", str(tmp_path / "x.rpl")],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "not a mitmproxy flow file" in bad.stderr
    assert "Traceback" not in bad.stderr


async def test_import_mitm_of_a_capture_the_addon_trimmed(
    tmp_path: Path, upstream: ReplayServer
) -> None:
    """`mitmdump -s addon -w flows`: the addon keeps only the last message of each flow
    (memory), so the flow file holds no session; import-mitm says so and points at the
    archive the addon wrote, instead of converting 0 messages."""
    flows, out = tmp_path / "flows.mitm", tmp_path / "dump.rpl"
    proc, port = await start_mitmdump(
        tmp_path, upstream, "-s", str(ADDON), "--set", f"gateway_record={out}",
        "--set", f"gateway_upstream=ws://127.0.0.1:{upstream.port}", "-w", str(flows),
    )  # fmt: skip
    try:
        got, _ = await session_through(f"ws://127.0.0.1:{port}/", Compression.NONE)
        assert len(got) == 7
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()
    await asyncio.wait_for(asyncio.to_thread(wait_until_written, out), TIMEOUT)
    assert len(frames(out, Direction.SERVER)) >= 7  # the addon's archive is the recording
    imported = tmp_path / "imported.rpl"
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "import-mitm", str(flows), "-o", str(imported)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert str(flows) in line
    assert "recorder addon" in line
    assert "gateway_record" in line  # what to do: the archive the addon wrote
    assert not imported.exists()
    assert not imported.with_name(imported.name + ".partial").exists()
