"""Canary secrets of every class (tests/secrets.py) through every path that writes an
archive: `replayer record`, the mitmdump addon with its worker, `import-mitm` of a flow
file, and the replay's `--transcript`. None may reach the disk, nor any part of one.
The recorders also carry a voice session to a scripted voice server (tests/voice_upstream.py):
`replayer record` by rewriting VOICE_SERVER_UPDATE's endpoint to itself, mitmdump as a
regular proxy the client goes through."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from replayer.record.worker import wait_until_written
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from tests.integration.record.test_record_cli import start_record, stop
from tests.integration.record.test_recorder_proxy import ADDON, TIMEOUT, start_mitmdump
from tests.secrets import check_archive, send_secrets, write_upstream
from tests.voice_upstream import VoiceUpstream, voice_upstream


@pytest.fixture
async def voice() -> AsyncIterator[VoiceUpstream]:
    """A stand-in for a Discord voice server."""
    async with voice_upstream() as server:
        yield server


@pytest.fixture
async def upstream(tmp_path: Path, voice: VoiceUpstream) -> AsyncIterator[ReplayServer]:
    """A stand-in for Discord that sends and answers with canaries; its VOICE_SERVER_UPDATE
    names the voice server."""
    script = load_script(write_upstream(tmp_path / "discord.rpl", voice.endpoint))
    async with ReplayServer(script, ReplayOptions(speed=0, rewrite_voice_servers=False)) as server:
        yield server


def _stop_mitmdump(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=TIMEOUT)


async def test_replayer_record(
    tmp_path: Path, upstream: ReplayServer, voice: VoiceUpstream
) -> None:
    out = tmp_path / "rec.rpl"
    proc, gateway_url = await start_record(
        tmp_path, "-o", str(out), "--upstream", f"http://127.0.0.1:{upstream.port}",
        "--gateway-upstream", upstream.gateway_url,
    )  # fmt: skip
    base = gateway_url.rstrip("/")
    try:
        events = await send_secrets(f"{base}/api/v10", base + "/", voice=True)
        assert events[-2:] == ["INTERACTION_CREATE", "VOICE_SERVER_UPDATE"]
    finally:
        stop(proc)
    # The client went to the proxy's voice route; the proxy, to the voice server.
    assert voice.connections == 2
    check_archive(out, voice=True)


async def test_mitmdump_regular_mode_with_voice(
    tmp_path: Path, upstream: ReplayServer, voice: VoiceUpstream
) -> None:
    out = tmp_path / "regular.rpl"
    proc, port = await start_mitmdump(
        tmp_path, upstream, "-s", str(ADDON), "--set", f"gateway_record={out}",
        mode=["--mode", "regular@127.0.0.1:0"],
    )  # fmt: skip
    try:
        await send_secrets(
            f"http://127.0.0.1:{upstream.port}/api/v10", upstream.gateway_url,
            proxy=f"http://127.0.0.1:{port}", voice=True,
        )  # fmt: skip
    finally:
        _stop_mitmdump(proc)
    await asyncio.wait_for(asyncio.to_thread(wait_until_written, out), TIMEOUT)
    assert voice.connections == 2
    check_archive(out, voice=True)


async def test_mitmdump_addon_and_worker(tmp_path: Path, upstream: ReplayServer) -> None:
    out = tmp_path / "dump.rpl"
    proc, port = await start_mitmdump(
        tmp_path, upstream, "-s", str(ADDON), "--set", f"gateway_record={out}",
        "--set", f"gateway_upstream=ws://127.0.0.1:{upstream.port}",
    )  # fmt: skip
    try:
        await send_secrets(f"http://127.0.0.1:{port}/api/v10", f"ws://127.0.0.1:{port}/")
    finally:
        _stop_mitmdump(proc)
    await asyncio.wait_for(asyncio.to_thread(wait_until_written, out), TIMEOUT)
    check_archive(out)


async def test_import_mitm(tmp_path: Path, upstream: ReplayServer) -> None:
    flows = tmp_path / "flows.mitm"
    proc, port = await start_mitmdump(tmp_path, upstream, "-w", str(flows))
    try:
        await send_secrets(f"http://127.0.0.1:{port}/api/v10", f"ws://127.0.0.1:{port}/")
    finally:
        _stop_mitmdump(proc)
    out = tmp_path / "imported.rpl"
    done = subprocess.run(
        [sys.executable, "-m", "replayer", "import-mitm", str(flows), "-o", str(out)],
        check=False, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    check_archive(out)


async def test_replay_transcript(tmp_path: Path) -> None:
    script = load_script(write_upstream(tmp_path / "unredacted.rpl"))
    transcript = tmp_path / "transcript.rpl"
    async with ReplayServer(script, ReplayOptions(speed=0), transcript=transcript) as server:
        await send_secrets(server.rest_base, server.gateway_url)
    check_archive(transcript)
