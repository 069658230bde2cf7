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


def _intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.guild_typing = True
    intents.dm_messages = True
    return intents


async def run(stop: asyncio.Event) -> int:
    discord.http.Route.BASE = os.environ["REPLAYER_REST_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["REPLAYER_GATEWAY_URL"])
    client = discord.Client(intents=_intents(), chunk_guilds_at_startup=False)
    request_members = os.environ.get("REPLAYER_REQUEST_MEMBERS") == "1"

    @client.event
    async def on_guild_available(guild: discord.Guild) -> None:
        if request_members:
            await guild.query_members("a", limit=10, cache=False)

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
