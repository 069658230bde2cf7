"""A minimal discord.py bot for ``replayer conform --client discord.py``.

Pointed at the replay as ``replayer replay`` prints it: ``discord.http.Route.BASE`` is
REPLAYER_REST_BASE and ``DiscordWebSocket.DEFAULT_GATEWAY`` REPLAYER_GATEWAY_URL (discord.py
asks ``GET /gateway/bot`` and connects where it says, which is the replay too). It asks for
the intents the bundled recordings hold (guilds, guild messages, typing, direct messages)
and, when the case wants member requests (REPLAYER_REQUEST_MEMBERS=1), requests the first
guild's members by query. REPLAYER_COMPRESS=zlib-stream gets discord.py's own zlib-stream
context: it uses zstd-stream whenever a zstd module imports, so in this process those
imports are made to fail before discord.py loads. REPLAYER_ENCODING is a hint it cannot
follow (it speaks JSON).

Voice (REPLAYER_VOICE=1): it asks for the voice states intent too, joins
REPLAYER_VOICE_CHANNEL once REPLAYER_VOICE_GUILD is available (``VoiceChannel.connect``,
reconnect on, a 5 s connect timeout, which is also how long it waits for a resume) and
plays pre-encoded opus silence (the 3-byte silence frame: no libopus needed; PyNaCl and
davey do the rest). It trusts the voice face's CA through SSL_CERT_FILE, which the runner
sets (aiohttp's default SSL context reads it).
"""

from __future__ import annotations

import asyncio
import os
import sys

if os.environ.get("REPLAYER_COMPRESS") == "zlib-stream":  # before discord.utils loads
    for _zstd in ("zstandard", "compression.zstd"):
        sys.modules[_zstd] = None  # type: ignore[assignment]  # makes `import` fail

import discord
import yarl

from replayer.conform.adapters import run_adapter

VOICE_CONNECT_TIMEOUT_S = 5.0
OPUS_SILENCE = b"\xf8\xff\xfe"  # Voice Connections > Voice Data Interpolation


def _intents(voice: bool) -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.guild_typing = True
    intents.dm_messages = True
    intents.voice_states = voice
    return intents


class Silence(discord.AudioSource):
    """Pre-encoded opus: the silence frame every 20 ms, for as long as it is played."""

    def read(self) -> bytes:
        return OPUS_SILENCE

    def is_opus(self) -> bool:
        return True


async def _join_voice(client: discord.Client, guild: discord.Guild) -> None:
    channel = guild.get_channel(int(os.environ.get("REPLAYER_VOICE_CHANNEL", "0")))
    if not isinstance(channel, discord.VoiceChannel):
        print(f"no voice channel {os.environ.get('REPLAYER_VOICE_CHANNEL')} in {guild.id}")
        return
    print(f"joining voice channel {channel.id} of guild {guild.id}", flush=True)
    vc: discord.VoiceClient = await channel.connect(timeout=VOICE_CONNECT_TIMEOUT_S, reconnect=True)
    vc.play(Silence())


async def run(stop: asyncio.Event) -> int:
    discord.http.Route.BASE = os.environ["REPLAYER_REST_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["REPLAYER_GATEWAY_URL"])
    voice = os.environ.get("REPLAYER_VOICE") == "1"
    client = discord.Client(intents=_intents(voice), chunk_guilds_at_startup=False)
    request_members = os.environ.get("REPLAYER_REQUEST_MEMBERS") == "1"
    joined: set[int] = set()

    @client.event
    async def on_guild_available(guild: discord.Guild) -> None:
        if request_members:
            await guild.query_members("a", limit=10, cache=False)
        wanted = os.environ.get("REPLAYER_VOICE_GUILD")
        if voice and not joined and (wanted is None or str(guild.id) == wanted):
            joined.add(guild.id)
            await _join_voice(client, guild)

    bot = asyncio.ensure_future(client.start(os.environ["REPLAYER_TOKEN"], reconnect=True))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([bot, stopped], return_when=asyncio.FIRST_COMPLETED)
    await client.close()
    stopped.cancel()
    if bot.done() and not bot.cancelled() and bot.exception() is not None:
        print(f"discord.py stopped: {bot.exception()!r}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    return run_adapter("discord.py", discord.__version__, run)


if __name__ == "__main__":
    raise SystemExit(main())
