"""``replayer diff`` on replay transcripts (issue 17 item 7): two runs of the same client against
the same archive are the same (ports, session timing and heartbeats aside); a client that sends
something else is a difference named by record, connection, frame, path and both values; a file
that is not an archive exits 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import websockets

from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from tests.archives import INTENTS, session_lines, write_archive
from tests.clients.conftest import TIMEOUT


async def transcript_of(tmp_path: Path, name: str, os_name: str) -> Path:
    """A client that IDENTIFYs (``properties.os`` = ``os_name``) and reads every dispatch."""
    archive = tmp_path / "a.rpl"
    script = load_script(archive if archive.exists() else write_archive(archive, session_lines()))
    transcript = tmp_path / name
    async with ReplayServer(script, ReplayOptions(speed=0), transcript=transcript) as server:
        url = f"{server.gateway_url}?v=10&encoding=json"
        async with websockets.connect(url, compression=None) as ws:
            assert json.loads(await ws.recv())["op"] == 10
            identify = {"token": "t", "properties": {"os": os_name}, "intents": INTENTS}
            await ws.send(json.dumps({"op": 2, "d": identify}))
            events = []
            while len(events) < 6:  # READY, 2 GUILD_CREATE, 3 MESSAGE_CREATE
                message = json.loads(await ws.recv())
                if message["op"] == 0:
                    events.append(message["t"])
    return transcript


def diff(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replayer", "diff", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


async def test_two_runs_are_the_same_and_another_client_differs(tmp_path: Path) -> None:
    first = await transcript_of(tmp_path, "first.rpl", "linux")
    second = await transcript_of(tmp_path, "second.rpl", "linux")
    other = await transcript_of(tmp_path, "other.rpl", "windows")
    same = diff(first, second)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "the same" in same.stdout
    differs = diff(first, other)
    assert differs.returncode == 1, differs.stdout + differs.stderr
    [line] = [x for x in differs.stdout.splitlines() if "properties.os" in x]
    assert "c1 client frame 1 (IDENTIFY) d.properties.os: 'linux' != 'windows'" in line
    assert line.startswith("record ")


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    noise = tmp_path / "noise.rpl"
    noise.write_bytes(b"not an archive at all")
    result = diff(noise, noise)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert str(noise) in result.stderr
    assert "Traceback" not in result.stderr
    assert diff(tmp_path / "missing.rpl", noise).returncode == 2
