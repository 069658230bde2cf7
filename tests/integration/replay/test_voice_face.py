"""The voice face over real sockets: a raw voice client (websockets + TLS trusting the
replay's CA, and a UDP socket) joins through the main gateway's op 4; scripted right and
wrong after a 4015 close."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from replayer.archive.reader import read_records
from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameRecord,
)
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result
from replayer.replay.voice.faults import VoicePlan, parse_voice_fault
from replayer.replay.voice_ca import local_ca
from replayer.replay.voice_server import VoiceOptions
from replayer.resources import sample_archive
from replayer.voice.ip_discovery import REQUEST, RESPONSE, build_discovery, parse_discovery
from replayer.voice.opcodes import VoiceOp

SAMPLE = sample_archive("sample-small.rpl")
GUILD = "81384788765712384"
TIMEOUT = 20 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))
GUILDS_AND_VOICE_STATES = 1 | 1 << 7 | 1 << 9


@asynccontextmanager
async def replay(
    tmp_path: Path, *faults: str, transcript: Path | None = None
) -> AsyncIterator[ReplayServer]:
    plan = VoicePlan(tuple(parse_voice_fault(f) for f in faults))
    server = ReplayServer(
        load_script(SAMPLE),
        ReplayOptions(speed=0, recorded_faults=False, verdict_window_ms=2_000),
        voice=VoiceOptions(ca_dir=tmp_path / "ca", plan=plan),
        transcript=transcript,
    )
    async with server:
        yield server


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert isinstance(message, dict)
    return message


async def join(gateway_url: str) -> dict[str, dict[str, Any]]:
    """IDENTIFY on the main gateway, then op 4: the two voice updates."""
    async with websockets.connect(gateway_url + "?v=10&encoding=json") as ws:
        await recv(ws)  # HELLO
        d = {"token": "t", "intents": GUILDS_AND_VOICE_STATES,
             "properties": {"os": "linux", "browser": "raw", "device": "raw"}}  # fmt: skip
        await ws.send(json.dumps({"op": 2, "d": d}))
        while (await recv(ws)).get("t") != "GUILD_CREATE":
            pass
        join = {"guild_id": GUILD, "channel_id": "1", "self_mute": False, "self_deaf": False}
        await ws.send(json.dumps({"op": 4, "d": join}))
        got: dict[str, dict[str, Any]] = {}
        while len(got) < 2:
            m = await recv(ws)
            if m.get("t") in ("VOICE_STATE_UPDATE", "VOICE_SERVER_UPDATE"):
                got[m["t"]] = m["d"]
        return got


def context(server: ReplayServer) -> ssl.SSLContext:
    assert server.voice is not None
    assert server.voice.tls is not None
    return server.voice.tls.client_context()


async def identify(ws: ClientConnection, grant: dict[str, dict[str, Any]]) -> dict[str, Any]:
    state, update = grant["VOICE_STATE_UPDATE"], grant["VOICE_SERVER_UPDATE"]
    d = {"server_id": update["guild_id"], "user_id": state["user_id"],
         "session_id": state["session_id"], "token": update["token"]}  # fmt: skip
    await ws.send(json.dumps({"op": VoiceOp.IDENTIFY, "d": d}))
    return await recv(ws)


async def udp(ready: dict[str, Any], packet: bytes, answer: bool = True) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (ready["d"]["ip"], ready["d"]["port"]))
        await loop.sock_sendall(sock, packet)
        if not answer:
            return None
        return await asyncio.wait_for(loop.sock_recv(sock, 100), TIMEOUT)


def rtp(ssrc: int, seq: int) -> bytes:
    return (
        bytes([0x80, 0x78])
        + seq.to_bytes(2, "big")
        + bytes(4)
        + ssrc.to_bytes(4, "big")
        + b"\xf8\xff\xfe"
    )


async def test_a_raw_client_gets_a_whole_voice_session(tmp_path: Path) -> None:
    async with replay(tmp_path) as server:
        grant = await join(server.gateway_url)
        endpoint = grant["VOICE_SERVER_UPDATE"]["endpoint"]
        assert server.voice is not None
        assert endpoint == f"127.0.0.1:{server.voice.ports[0]}"
        async with websockets.connect(f"wss://{endpoint}/?v=8", ssl=context(server)) as ws:
            extensions = (
                ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
            )
            assert "permessage-deflate" in extensions  # accepted, as Discord's servers do
            hello = await recv(ws)
            assert hello == {"op": 8, "d": {"heartbeat_interval": 13_750}}
            ready = await identify(ws, grant)
            assert (ready["op"], ready["seq"]) == (VoiceOp.READY, 1)
            answer = await udp(ready, build_discovery(REQUEST, ready["d"]["ssrc"]))
            assert answer is not None
            found = parse_discovery(answer)
            assert found is not None
            assert (found.type, found.ssrc, found.address) == (
                RESPONSE,
                ready["d"]["ssrc"],
                "127.0.0.1",
            )
            data = {"address": found.address, "port": found.port, "mode": ready["d"]["modes"][0]}
            await ws.send(json.dumps({"op": 1, "d": {"protocol": "udp", "data": data}}))
            description = await recv(ws)
            assert description["op"] == VoiceOp.SESSION_DESCRIPTION
            assert len(description["d"]["secret_key"]) == 32
            await ws.send(json.dumps({"op": 3, "d": {"t": 42, "seq_ack": description["seq"]}}))
            assert await recv(ws) == {"op": 6, "d": {"t": 42}}
            for i in range(5):
                await udp(ready, rtp(ready["d"]["ssrc"], i), answer=False)
            assert server.voice.replay is not None
            replay_ = server.voice.replay
            async with asyncio.timeout(TIMEOUT):
                while replay_.rtp_packets[ready["d"]["ssrc"]] < 5:
                    await asyncio.sleep(0.01)
        (heartbeat,) = [v for v in server.verdicts() if v.name.startswith("voice")]
        assert heartbeat.result is Result.PASS


async def test_the_face_needs_its_ca(tmp_path: Path) -> None:
    """TLS for real: without the CA, verification fails; with SSL_CERT_FILE (what replay
    prints for Python clients), a default context trusts it."""
    async with replay(tmp_path) as server:
        assert server.voice is not None
        assert server.voice.tls is not None
        tls = server.voice.tls
        ca_dir = tmp_path / "ca"
        assert tls.ca_cert == ca_dir / "replayer-ca-cert.pem"  # created on first use
        for secret in (ca_dir / "replayer-ca.pem", tls.key):  # keys: the owner's only
            assert secret.stat().st_mode & 0o077 == 0, secret
        before = tls.ca_cert.read_bytes()
        assert local_ca(ca_dir).ca_cert.read_bytes() == before  # the same CA next time
        url = f"wss://127.0.0.1:{server.voice.ports[0]}/?v=8"
        with pytest.raises(ssl.SSLCertVerificationError):
            await websockets.connect(url, ssl=ssl.create_default_context())
        code = (
            "import asyncio, json, websockets\n"
            "async def main():\n"
            f"    async with websockets.connect({url!r}) as ws:\n"
            "        print(json.loads(await ws.recv())['op'])\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, "SSL_CERT_FILE": str(server.voice.tls.ca_cert)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0, err.decode()
        assert out.decode().strip() == "8"  # HELLO


async def last_seq_until_closed(ws: ClientConnection, last_seq: int) -> int:
    """Read until the server closes; the last ``seq`` received."""
    try:
        while True:
            last_seq = (await recv(ws)).get("seq", last_seq)
    except websockets.ConnectionClosed:
        return last_seq


@pytest.mark.parametrize("right", [True, False], ids=["resume", "identify"])
async def test_4015_judged_over_sockets(tmp_path: Path, right: bool) -> None:
    """After 4015 a right client RESUMEs with the last seq it received (PASS: RESUMED); a
    wrong one IDENTIFYs again (FAIL). (The buffered re-send: tests/unit/replay/voice.)"""
    async with replay(tmp_path, "voice-close:4015@voice=SESSION_DESCRIPTION") as server:
        grant = await join(server.gateway_url)
        endpoint = grant["VOICE_SERVER_UPDATE"]["endpoint"]
        url = f"wss://{endpoint}/?v=8"
        async with websockets.connect(url, ssl=context(server)) as ws:
            await recv(ws)
            ready = await identify(ws, grant)
            data = {"address": "127.0.0.1", "port": 9, "mode": ready["d"]["modes"][1]}
            await ws.send(json.dumps({"op": 1, "d": {"protocol": "udp", "data": data}}))
            last_seq = await last_seq_until_closed(ws, ready["seq"])
            assert ws.close_code == 4015
        async with websockets.connect(url, ssl=context(server)) as ws:
            await recv(ws)
            if right:
                state, update = grant["VOICE_STATE_UPDATE"], grant["VOICE_SERVER_UPDATE"]
                d = {"server_id": GUILD, "session_id": state["session_id"],
                     "token": update["token"], "seq_ack": last_seq}  # fmt: skip
                await ws.send(json.dumps({"op": VoiceOp.RESUME, "d": d}))
                assert await recv(ws) == {"op": VoiceOp.RESUMED, "d": None}
                assert last_seq == 2  # READY, SESSION_DESCRIPTION: nothing missed to resend
            else:
                await identify(ws, grant)
        verdicts = {v.name: v for v in server.verdicts()}
        verdict = verdicts["voice: voice-close 4015 after voice SESSION_DESCRIPTION #1"]
        assert verdict.result is (Result.PASS if right else Result.FAIL), verdict


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "replayer", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_the_transcript_records_voice_connections_as_voice(tmp_path: Path) -> None:
    """--transcript: each voice WebSocket is a voice connection of the archive, its frames
    both ways under voice opcodes and seq, its close by whom it was; inspect and verify
    read it with voice names."""
    transcript = tmp_path / "transcript.rpl"
    fault = "voice-close:4015@voice=SESSION_DESCRIPTION"
    async with replay(tmp_path, fault, transcript=transcript) as server:
        grant = await join(server.gateway_url)
        url = f"wss://{grant['VOICE_SERVER_UPDATE']['endpoint']}/?v=8"
        async with websockets.connect(url, ssl=context(server)) as ws:
            await recv(ws)
            ready = await identify(ws, grant)
            data = {"address": "127.0.0.1", "port": 9, "mode": ready["d"]["modes"][0]}
            await ws.send(json.dumps({"op": 1, "d": {"protocol": "udp", "data": data}}))
            last_seq = await last_seq_until_closed(ws, ready["seq"])
        async with websockets.connect(url, ssl=context(server)) as ws:
            await recv(ws)
            state, update = grant["VOICE_STATE_UPDATE"], grant["VOICE_SERVER_UPDATE"]
            d = {"server_id": GUILD, "session_id": state["session_id"],
                 "token": update["token"], "seq_ack": last_seq}  # fmt: skip
            await ws.send(json.dumps({"op": VoiceOp.RESUME, "d": d}))
            assert await recv(ws) == {"op": VoiceOp.RESUMED, "d": None}
            await ws.send(json.dumps({"op": VoiceOp.HEARTBEAT, "d": {"t": 7, "seq_ack": 2}}))
            assert await recv(ws) == {"op": VoiceOp.HEARTBEAT_ACK, "d": {"t": 7}}
            await ws.close(1000)
    _, records = read_records(transcript)
    opened = [r for r in records if isinstance(r, ConnectionRecord)]
    voice = [r.conn_id for r in opened if r.kind is ConnectionKind.VOICE]
    assert len(voice) == 2
    assert [r.kind for r in opened].count(ConnectionKind.GATEWAY) == 1
    assert all(r.url.startswith("wss://127.0.0.1:") for r in opened if r.conn_id in voice)
    assert len({r.conn_id for r in opened}) == 3  # one numbering for both faces

    def frames(conn: int) -> list[tuple[str, int | None, int | None]]:
        return [
            ("C" if r.direction is Direction.CLIENT else "S", r.op, r.s)
            for r in records
            if isinstance(r, FrameRecord) and r.conn_id == conn
        ]

    assert frames(voice[0]) == [
        ("S", VoiceOp.HELLO, None), ("C", VoiceOp.IDENTIFY, None), ("S", VoiceOp.READY, 1),
        ("C", VoiceOp.SELECT_PROTOCOL, None), ("S", VoiceOp.SESSION_DESCRIPTION, 2),
    ]  # fmt: skip
    assert frames(voice[1]) == [
        ("S", VoiceOp.HELLO, None), ("C", VoiceOp.RESUME, None), ("S", VoiceOp.RESUMED, None),
        ("C", VoiceOp.HEARTBEAT, None), ("S", VoiceOp.HEARTBEAT_ACK, None),
    ]  # fmt: skip
    closes = {r.conn_id: (r.code, r.closed_by) for r in records if isinstance(r, CloseRecord)}
    assert closes[voice[0]] == (4015, Closer.SERVER)
    assert closes[voice[1]] == (1000, Closer.CLIENT)
    token = grant["VOICE_SERVER_UPDATE"]["token"]
    assert token.encode() not in transcript.read_bytes()  # the voice token never on disk

    shown = cli("inspect", transcript)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("open voice wss://") == 2, shown.stdout
    for name in ("SESSION_DESCRIPTION", "SELECT_PROTOCOL", "RESUMED", "close 4015"):
        assert name in shown.stdout, (name, shown.stdout)
    only = cli("inspect", transcript, "--conn", str(voice[1]))
    assert "HEARTBEAT_ACK" in only.stdout
    assert "INVALID_SESSION" not in only.stdout  # op 9 is RESUMED on a voice connection
    verified = cli("verify", transcript)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # diff pairs the voice connections with a recording's and names their voice opcodes.
    compared = cli("diff", sample_archive("voice-bot.rpl"), transcript, "-n", "1000")
    assert compared.returncode == 1, compared.stderr
    voice_lines = [line for line in compared.stdout.splitlines() if " c2 " in line]
    assert any("c2 server frame 1 (HELLO)" in line for line in voice_lines), compared.stdout
    assert any("(SESSION_DESCRIPTION)" in line for line in voice_lines), compared.stdout
    assert not any("REQUEST_GUILD_MEMBERS" in line for line in voice_lines), compared.stdout
