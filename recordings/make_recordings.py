"""Make the sample archives (replayer/data/recordings/) with the project's own recorder.

No Discord is reachable from where these are made, so the upstream is `replayer replay`
serving a `replayer synth` session; between it and a real discord.py client sits the
recorder (mitmproxy, reverse mode), exactly as `replayer record` runs it. What is
recorded is therefore a real client's real traffic (IDENTIFY, heartbeats, member chunk
requests, RESUME...) against a gateway that behaves like Discord.

    .venv/bin/python recordings/make_recordings.py [small-bot large-bot sharded-bot voice-bot]

``voice-bot`` records voice as well: a scripted client (raw WebSockets, as a bot library
speaks) joins a voice channel, and the voice server behind the recorder is the scripted one
of the tests (tests/voice_upstream.py), its address in the upstream's VOICE_SERVER_UPDATE. The
recorder rewrites that endpoint to itself and routes the voice socket there, as `replayer
record` does with a real Discord voice server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import discord
import websockets
import yarl

from replayer.archive.records import ConnectionKind, ConnectionRecord, FrameRecord
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Opcode
from replayer.record.proxy import RecordingProxy, RecordSettings
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import recordings_dir
from replayer.synth import SynthOptions, synth_records, write_synth

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # tests.voice_upstream: the scripted voice server
from tests.voice_upstream import voice_client_session, voice_upstream  # noqa: E402

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.recording.sample-token-not-a-secret"


@dataclass(frozen=True)
class Sample:
    name: str
    synth: SynthOptions
    speed: float
    make_client: Callable[[], discord.Client]
    description: str


def _intents(members: bool) -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = members
    intents.presences = True
    return intents


SAMPLES = {
    s.name: s
    for s in (
        Sample(
            "small-bot",
            SynthOptions(
                guilds=1,
                channels_per_guild=4,
                members_per_guild=8,
                messages=12,
                presence_updates=6,
                typing=3,
                member_chunk_requests=0,
                seed=1,
                compress="zstd-stream",
            ),
            1.0,
            lambda: discord.Client(intents=_intents(False)),
            "discord.py Client, one guild: READY, GUILD_CREATE, messages, presence updates, "
            "typing, heartbeats; zstd-stream",
        ),
        Sample(
            "large-bot",
            SynthOptions(
                guilds=24,
                channels_per_guild=6,
                roles_per_guild=8,
                members_per_guild=300,
                messages=40,
                presence_updates=20,
                typing=5,
                member_chunk_requests=24,
                seed=2,
                compress="zlib-stream",
            ),
            4.0,
            lambda: discord.Client(intents=_intents(True), chunk_guilds_at_startup=True),
            "discord.py Client with the members intent, 24 large guilds (301 members each): "
            "REQUEST_GUILD_MEMBERS per guild answered by GUILD_MEMBERS_CHUNK; zlib-stream",
        ),
        Sample(
            "sharded-bot",
            SynthOptions(
                guilds=6,
                channels_per_guild=4,
                members_per_guild=15,
                messages=24,
                presence_updates=8,
                typing=4,
                shards=2,
                member_chunk_requests=0,
                seed=3,
                compress="zstd-stream",
            ),
            1.0,
            lambda: discord.AutoShardedClient(intents=_intents(False), shard_count=2),
            "discord.py AutoShardedClient, 2 shards on 2 connections (IDENTIFYs 5 s apart, "
            "as max_concurrency 1 requires); zstd-stream",
        ),
    )
}


async def record(sample: Sample, workdir: Path) -> Path:
    upstream_archive = workdir / f"{sample.name}-upstream.rpl"
    write_synth(upstream_archive, sample.synth)
    script = load_script(upstream_archive)
    expected_messages = sum(s.events.count("MESSAGE_CREATE") for s in script.shards.values())
    out = recordings_dir() / f"{sample.name}.rpl"
    async with ReplayServer(script, ReplayOptions(speed=sample.speed)) as upstream:
        settings = RecordSettings(
            out, upstream=f"http://127.0.0.1:{upstream.port}", confdir=workdir / "mitmproxy"
        )
        async with RecordingProxy(settings) as proxy:
            discord.http.Route.BASE = proxy.rest_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(proxy.gateway_url)
            client = sample.make_client()
            done = asyncio.Event()
            seen: list[Any] = []

            @client.event
            async def on_message(message: discord.Message) -> None:
                seen.append(message.id)
                if len(seen) >= expected_messages:
                    done.set()

            async with client:
                runner = asyncio.create_task(client.start(TOKEN))
                await asyncio.wait_for(done.wait(), 300)
                await client.close()
                await runner
    print(f"{out}: {expected_messages} messages seen by the client", file=sys.stderr)
    return out


VOICE_SYNTH = SynthOptions(
    guilds=1, channels_per_guild=4, members_per_guild=8, messages=6, presence_updates=2,
    typing=1, member_chunk_requests=0, seed=4, voice=True,
)  # fmt: skip


def write_voice_upstream(path: Path, endpoint: str) -> None:
    """The synth --voice session without its voice connection (the scripted voice server
    plays that part), its VOICE_SERVER_UPDATE naming ``endpoint``. Unredacted: the upstream
    is Discord, which sends the voice token."""
    voice = set()
    with ArchiveWriter(path, redact=False, overwrite=True) as writer:
        for record in synth_records(VOICE_SYNTH):
            if isinstance(record, ConnectionRecord) and record.kind is ConnectionKind.VOICE:
                voice.add(record.conn_id)
            if getattr(record, "conn_id", None) in voice:
                continue
            if isinstance(record, FrameRecord) and record.t == "VOICE_SERVER_UPDATE":
                obj = json.loads(record.payload)
                obj["d"]["endpoint"] = endpoint
                payload = json.dumps(obj, separators=(",", ":")).encode()
                writer.write(replace(record, payload=payload, wire_size=len(payload)))
            else:
                writer.write(record)


async def scripted_voice_bot(rest_base: str, token: str) -> None:
    """GET /gateway/bot, IDENTIFY, VOICE_STATE_UPDATE after the first GUILD_CREATE, then the
    voice session at the endpoint VOICE_SERVER_UPDATE gave (IDENTIFY, SELECT_PROTOCOL,
    heartbeat, SPEAKING, a DAVE key package; a RESUME on a second connection); close 1000."""
    headers = {"Authorization": f"Bot {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(rest_base + "/gateway/bot") as response,
    ):
        gateway = (await response.json())["url"]
    async with websockets.connect(gateway.rstrip("/") + "/?v=10&encoding=json") as ws:
        hello = json.loads(await ws.recv())
        assert hello["op"] == Opcode.HELLO, hello
        identify = {
            "token": token,
            "intents": 1 | 1 << 7,
            "properties": {"os": "linux", "browser": "voice-bot", "device": "voice-bot"},
        }
        await ws.send(json.dumps({"op": Opcode.IDENTIFY, "d": identify}))
        state: dict[str, Any] = {}
        server: dict[str, Any] = {}
        while not server:
            payload = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if payload.get("t") == "GUILD_CREATE":
                guild = payload["d"]
                channel = next(c for c in guild["channels"] if c["type"] == 2)
                join = {
                    "guild_id": guild["id"],
                    "channel_id": channel["id"],
                    "self_mute": False,
                    "self_deaf": False,
                }
                await ws.send(json.dumps({"op": Opcode.VOICE_STATE_UPDATE, "d": join}))
            elif payload.get("t") == "VOICE_STATE_UPDATE":
                state = payload["d"]
            elif payload.get("t") == "VOICE_SERVER_UPDATE":
                server = payload["d"]
        await ws.send(json.dumps({"op": Opcode.HEARTBEAT, "d": payload.get("s")}))
        await voice_client_session(
            server["endpoint"], server_id=server["guild_id"], session_id=state["session_id"],
            identify_token=server["token"], resume_token=server["token"],
        )  # fmt: skip
        await ws.close(1000)


async def record_voice(workdir: Path) -> Path:
    out = recordings_dir() / "voice-bot.rpl"
    async with voice_upstream() as voice:
        upstream_archive = workdir / "voice-bot-upstream.rpl"
        write_voice_upstream(upstream_archive, voice.endpoint)
        script = load_script(upstream_archive)
        async with ReplayServer(
            script, ReplayOptions(speed=1.0, rewrite_voice_servers=False)
        ) as upstream:
            settings = RecordSettings(
                out, upstream=f"http://127.0.0.1:{upstream.port}", confdir=workdir / "mitmproxy",
                overwrite=True,
            )  # fmt: skip
            async with RecordingProxy(settings) as proxy:
                await scripted_voice_bot(proxy.rest_base, TOKEN)
    print(
        f"{out}: {voice.connections} voice connections, client ops {voice.received}",
        file=sys.stderr,
    )
    return out


async def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or [*SAMPLES, "voice-bot"]:
            if name == "voice-bot":
                await record_voice(Path(tmp))
            else:
                await record(SAMPLES[name], Path(tmp))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
