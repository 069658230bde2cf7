"""A minimal hikari bot for ``replayer conform --client hikari``.

Pointed at the replay as ``replayer replay`` prints it: ``rest_url`` is REPLAYER_REST_BASE;
hikari takes the gateway URL from ``GET /gateway/bot``, which the replay answers with its
own (REPLAYER_GATEWAY_URL). It asks for the intents the bundled recordings hold (guilds,
guild messages, typing, direct messages) and, when the case wants member requests
(REPLAYER_REQUEST_MEMBERS=1), requests the first guild's members by query.
REPLAYER_COMPRESS picks hikari's transport compression (zlib-stream or zstd-stream: its
shards take ``_DEFAULT_COMPRESS_TYPE``); REPLAYER_ENCODING is a hint it cannot follow
(hikari speaks JSON).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import hikari
import hikari.impl.shard
from hikari.api.shard import GatewayCompression

from replayer.conform.adapters import run_adapter

INTENTS = (
    hikari.Intents.GUILDS
    | hikari.Intents.GUILD_MESSAGES
    | hikari.Intents.GUILD_MESSAGE_TYPING
    | hikari.Intents.DM_MESSAGES
)


def _compression(wanted: str) -> None:
    """hikari's shards take the default of ``GatewayShardImpl.__init__``'s ``compression``;
    set it where it lives (tests/clients/test_hikari_replay.py does the same)."""
    types = {
        "zlib-stream": GatewayCompression.TRANSPORT_ZLIB_STREAM,
        "zstd-stream": GatewayCompression.TRANSPORT_ZSTD_STREAM,
    }
    if wanted in types:
        init: Any = hikari.impl.shard.GatewayShardImpl.__init__
        init.__kwdefaults__["compression"] = types[wanted]


async def run(stop: asyncio.Event) -> int:
    _compression(os.environ.get("REPLAYER_COMPRESS", ""))
    bot = hikari.GatewayBot(
        os.environ["REPLAYER_TOKEN"], rest_url=os.environ["REPLAYER_REST_BASE"], banner=None,
        intents=INTENTS,
    )  # fmt: skip
    request_members = os.environ.get("REPLAYER_REQUEST_MEMBERS") == "1"
    asked: set[int] = set()

    async def on_guild(event: hikari.GuildAvailableEvent) -> None:
        if request_members and not asked:
            asked.add(int(event.guild_id))
            # The event's own shard: bot.shards is filled only once start() returns, and
            # the first GUILD_CREATE can come before that.
            await event.shard.request_guild_members(event.guild_id, query="a", limit=10)

    bot.subscribe(hikari.GuildAvailableEvent, on_guild)
    try:
        await bot.start(check_for_updates=False)
    except Exception as exc:  # the library gave up: the verdicts say what that means
        print(f"hikari did not start: {exc!r}", file=sys.stderr)
        return 1
    closed = asyncio.ensure_future(bot.join())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not closed.done():
        await bot.close()
    closed.cancel()
    return 0


def main() -> int:
    return run_adapter("hikari", hikari.__version__, run)


if __name__ == "__main__":
    raise SystemExit(main())
