"""The recording proxy and a voice client that, like every bot library, opens the endpoint of
VOICE_SERVER_UPDATE with wss://: the rewritten endpoint is the proxy, which speaks TLS with
mitmproxy's CA on its one port and routes the voice socket to the real voice server."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

from websockets.asyncio.client import connect

from replayer.archive.reader import read_records
from replayer.archive.records import ConnectionKind, ConnectionRecord, FrameRecord
from replayer.record.proxy import RecordingProxy, RecordSettings, ca_cert_path
from replayer.record.recorder import VOICE_PATH
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.voice.opcodes import VoiceOp
from tests.secrets import TIMEOUT, write_upstream
from tests.voice_upstream import voice_upstream


async def test_a_wss_voice_client_reaches_the_voice_server_through_the_proxy(
    tmp_path: Path,
) -> None:
    out = tmp_path / "voice.rpl"
    async with voice_upstream() as voice:
        script = load_script(write_upstream(tmp_path / "discord.rpl", voice.endpoint))
        async with ReplayServer(
            script, ReplayOptions(speed=0, rewrite_voice_servers=False)
        ) as upstream:
            settings = RecordSettings(
                out, upstream=f"http://127.0.0.1:{upstream.port}",
                gateway_upstream=upstream.gateway_url, confdir=tmp_path / "mitm",
            )  # fmt: skip
            async with RecordingProxy(settings) as proxy:
                async with connect(proxy.gateway_url + "?v=10&encoding=json") as ws:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                    identify = {"token": "t" * 30, "intents": 4097, "properties": {}}
                    await ws.send(json.dumps({"op": 2, "d": identify}))
                    while (payload := json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))[
                        "t"
                    ] != "VOICE_SERVER_UPDATE":
                        pass
                endpoint = payload["d"]["endpoint"]
                assert endpoint == f"127.0.0.1:{proxy.port}{VOICE_PATH}v1"
                tls = ssl.create_default_context(cafile=ca_cert_path(tmp_path / "mitm"))
                async with connect(f"wss://{endpoint}/?v=8", ssl=tls) as v:
                    hello = json.loads(await asyncio.wait_for(v.recv(), TIMEOUT))
                    assert hello["op"] == VoiceOp.HELLO
                    await v.send(
                        json.dumps(
                            {
                                "op": 0,
                                "d": {
                                    "server_id": "1",
                                    "user_id": "2",
                                    "session_id": "s",
                                    "token": "voice-token-xyz",
                                },
                            }
                        )
                    )
                    ready = json.loads(await asyncio.wait_for(v.recv(), TIMEOUT))
                    assert (ready["op"], ready["seq"]) == (VoiceOp.READY, 1)
    assert voice.connections == 1
    _, records = read_records(out)
    voice_conn = next(
        r for r in records if isinstance(r, ConnectionRecord) and r.kind is ConnectionKind.VOICE
    )
    assert voice_conn.url == f"ws://127.0.0.1:{voice.port}/?v=8"  # where the proxy sent it
    ops = [r.op for r in records if isinstance(r, FrameRecord) and r.conn_id == voice_conn.conn_id]
    assert ops == [VoiceOp.HELLO, VoiceOp.IDENTIFY, VoiceOp.READY]
    assert b"voice-token-xyz" not in out.read_bytes()
