"""Make the sample archives (replayer/data/recordings/) with the project's own recorder.

No Discord is reachable from where these are made, so the upstream is `replayer replay`
serving a `replayer synth` session; between it and a real discord.py client sits the
recorder (mitmproxy, reverse mode), exactly as `replayer record` runs it. What is
recorded is therefore a real client's real traffic (IDENTIFY, heartbeats, member chunk
requests, RESUME...) against a gateway that behaves like Discord.

    .venv/bin/python recordings/make_recordings.py [small-bot large-bot sharded-bot]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import yarl

from replayer.record.proxy import RecordingProxy, RecordSettings
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import recordings_dir
from replayer.synth import SynthOptions, write_synth

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


async def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(SAMPLES):
            await record(SAMPLES[name], Path(tmp))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
