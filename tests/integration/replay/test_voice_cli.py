"""``replayer replay --fault voice-...`` as a user runs it: the voice face starts, its CA
is printed with the settings clients need, a bad voice fault is one line, and the voice
verdicts are in the table, the JSON report and ``--check``."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from pathlib import Path

from websockets.asyncio.client import connect

from replayer.resources import sample_archive
from tests.clients.conftest import TIMEOUT
from tests.integration.replay.test_voice_face import identify, join, recv

SAMPLE = sample_archive("sample-small.rpl")
FAST = ["--speed", "0", "--no-recorded-faults", "--exit-when-idle", "--idle-grace", "300ms",
        "--verdict-window", "1s"]  # fmt: skip


async def run(*args: str, ca_dir: Path, reconnect: bool) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replayer", "replay", str(SAMPLE), *args, "--ca-dir", str(ca_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    out: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while line := (await process.stdout.readline()).decode():
            out.append(line)
            if line.startswith("discord.py:"):  # the snippets: the voice lines came before
                break
        gateway = next(o for o in out if o.startswith("gateway URL:")).split(":", 1)[1].strip()
        grant = await join(gateway)
        trust = ssl.create_default_context(cafile=str(ca_dir / "replayer-ca-cert.pem"))
        url = f"wss://{grant['VOICE_SERVER_UPDATE']['endpoint']}/?v=8"
        async with connect(url, ssl=trust) as ws:
            await recv(ws)
            await identify(ws, grant)
            await ws.wait_closed()
            code = ws.close_code
        if reconnect:
            async with connect(url, ssl=trust) as ws:
                await recv(ws)
                await identify(ws, grant)
        rest, err = await process.communicate()
    assert code == 4017
    return await process.wait(), "".join(out) + rest.decode(), err.decode()


async def test_voice_faults_from_the_command_line(tmp_path: Path) -> None:
    for reconnect, status, result in ((False, 0, "PASS"), (True, 1, "FAIL")):
        report = tmp_path / f"report-{reconnect}.json"
        code, out, err = await run(
            *FAST, "--fault", "voice-close:4017@voice=READY", "--check", "--report", str(report),
            ca_dir=tmp_path / "ca", reconnect=reconnect,
        )  # fmt: skip
        assert code == status, err
        ca = tmp_path / "ca" / "replayer-ca-cert.pem"
        assert f"voice CA:    {ca}" in out
        assert f"SSL_CERT_FILE={ca}" in out
        assert f"NODE_EXTRA_CA_CERTS={ca}" in out
        assert "fault: voice-close 4017 after voice READY #1" in err
        document = json.loads(report.read_text())
        (verdict,) = [v for v in document["verdicts"] if v["name"].startswith("voice: ")]
        assert verdict["result"] == result, verdict
        assert verdict["docs"] == "Topics > Opcodes and Status Codes > Voice Close Event Codes"
        assert "voice-close 4017 after voice READY #1" in document["faults"]


async def test_an_unusable_ca_dir_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replayer", "replay", str(SAMPLE), "--voice",
        "--ca-dir", str(tmp_path / "a-file" / "ca"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert await process.wait() == 1
    assert err.decode().strip().splitlines() == [
        f"error: voice CA in {tmp_path / 'a-file' / 'ca'}: Not a directory "
        "(--ca-dir chooses another)"
    ]
