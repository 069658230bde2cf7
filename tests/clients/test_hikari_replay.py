"""hikari 2.7 against the replay server on loopback: its own entity factory, cache,
decompressors and reconnect logic are the oracle.

hikari is pointed at the server with ``rest_url``; it takes the gateway URL from
``GET /gateway/bot`` (gateway-facts.md, client table). The archive is the ``rich`` one:
hikari cannot parse the sample's GUILD_CREATE (see conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import hikari
import hikari.impl.shard
import pytest
from hikari.api.shard import GatewayCompression

from replayer.archive.records import Closer, HttpRecord
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.server import ReplayServer
from tests.clients.conftest import (
    BOT_ID,
    COMPRESSIONS,
    TIMEOUT,
    TOKEN,
    Message,
    Scenario,
    client_ops,
    closes,
    connections,
    dispatches,
    frames,
    make_scenario,
    normalized,
    payload_json,
    replay,
    rich_scenario,
    transcript,
)

# GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT, as in the recordings.
INTENTS = hikari.Intents.GUILDS | hikari.Intents.GUILD_MESSAGES | hikari.Intents.MESSAGE_CONTENT

_COMPRESSION_TYPES = {
    "zlib-stream": GatewayCompression.TRANSPORT_ZLIB_STREAM,
    "zstd-stream": GatewayCompression.TRANSPORT_ZSTD_STREAM,
}


@pytest.fixture(params=COMPRESSIONS)
def compression(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The transport compression hikari asks for.

    GatewayBot has no compression parameter: each ``GatewayShardImpl`` takes the default
    of its ``compression`` keyword, ``_DEFAULT_COMPRESS_TYPE``, which is zstd-stream when
    ``backports.zstd`` imports (as here) and zlib-stream otherwise. That default is bound
    when the function is defined, so it is changed where it lives: ``__kwdefaults__``.
    """
    wanted: str = request.param
    assert _COMPRESSION_TYPES["zstd-stream"] == hikari.impl.shard._DEFAULT_COMPRESS_TYPE
    init: Any = hikari.impl.shard.GatewayShardImpl.__init__
    monkeypatch.setitem(init.__kwdefaults__, "compression", _COMPRESSION_TYPES[wanted])
    return wanted


class Probe:
    """A hikari GatewayBot running against a replay, and what it has seen."""

    def __init__(self, bot: hikari.GatewayBot, scenario: Scenario) -> None:
        self.bot = bot
        self.started = asyncio.Event()
        self.ready: list[hikari.ShardReadyEvent] = []
        self.resumed = asyncio.Event()
        self.guilds: dict[int, tuple[str, list[str]]] = {}
        self.all_guilds = asyncio.Event()
        self.messages: list[hikari.GuildMessageCreateEvent] = []
        self.all_messages = asyncio.Event()

        async def on_started(_: hikari.StartedEvent) -> None:
            self.started.set()

        async def on_ready(event: hikari.ShardReadyEvent) -> None:
            self.ready.append(event)

        async def on_resumed(_: hikari.ShardResumedEvent) -> None:
            self.resumed.set()

        async def on_guild(event: hikari.GuildAvailableEvent) -> None:
            texts = [c for c in event.channels.values() if isinstance(c, hikari.GuildTextChannel)]
            self.guilds[event.guild_id] = (event.guild.name, sorted(c.name or "" for c in texts))
            if len(self.guilds) >= len(scenario.guilds):
                self.all_guilds.set()

        async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
            self.messages.append(event)
            if len(self.messages) >= len(scenario.messages):
                self.all_messages.set()

        bot.subscribe(hikari.StartedEvent, on_started)
        bot.subscribe(hikari.ShardReadyEvent, on_ready)
        bot.subscribe(hikari.ShardResumedEvent, on_resumed)
        bot.subscribe(hikari.GuildAvailableEvent, on_guild)
        bot.subscribe(hikari.GuildMessageCreateEvent, on_message)


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), TIMEOUT)


@asynccontextmanager
async def running(
    server: ReplayServer, scenario: Scenario, *, start: bool = True
) -> AsyncIterator[Probe]:
    """A GatewayBot pointed at ``server``, started; closed on the way out."""
    bot = hikari.GatewayBot(TOKEN, rest_url=server.rest_base, banner=None, intents=INTENTS)
    probe = Probe(bot, scenario)
    try:
        if start:
            await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
        yield probe
    finally:
        if bot.is_alive:
            await asyncio.wait_for(bot.close(), TIMEOUT)


def seen(events: list[hikari.GuildMessageCreateEvent]) -> list[Message]:
    """(guild id, channel name, content), the channel resolved from the bot's cache (so
    before GatewayBot.close(), which empties the cache)."""
    out = []
    for event in events:
        channel = event.get_channel()
        assert isinstance(channel, hikari.GuildTextChannel), channel
        assert event.get_guild() is not None
        out.append((int(event.guild_id), channel.name or "", event.message.content or ""))
    return out


@pytest.mark.parametrize("scenario_name", ["rich", "synth"])
async def test_start_guilds_and_messages(
    scenario_name: str, compression: str, tmp_path: Path
) -> None:
    """start() returns once the shard is READY (user id from the token matches READY's);
    StartedEvent, GuildAvailableEvent per guild with its channels and every
    GuildMessageCreateEvent in order, in its cached channel, follow."""
    scenario = make_scenario(scenario_name, tmp_path)
    async with replay(scenario, tmp_path) as server, running(server, scenario) as probe:
        await wait(probe.started)
        await wait(probe.all_guilds)
        await wait(probe.all_messages)
        (ready,) = probe.ready
        assert ready.my_user.id == BOT_ID
        assert ready.session_id == scenario.session_ids[0]
        assert ready.resume_gateway_url == server.gateway_url + "resume/1"
        assert probe.guilds == scenario.guilds
        assert set(probe.bot.cache.get_guilds_view()) == set(scenario.guilds)
        assert seen(probe.messages) == scenario.messages

    records = transcript(server)
    http = [(r.method, r.path) for r in records if isinstance(r, HttpRecord)]
    assert http == [("GET", "/api/v10/gateway/bot")]
    (conn,) = connections(records)
    assert (conn.query.v, conn.query.encoding, conn.query.compress) == (10, "json", compression)
    assert conn.url == f"{server.gateway_url}?v=10&encoding=json&compress={compression}"
    assert all(f.frame_type == 2 for f in frames(records, 1))  # binary, both ways
    assert dispatches(records, 1) == [
        (s, t) for s, t in enumerate(scenario.delivered(0, int(INTENTS)), 1)
    ]
    assert client_ops(records, 1) == [2]
    (identify,) = [f for f in frames(records, 1, Direction.CLIENT) if f.op == 2]
    d = payload_json(identify)["d"]
    assert (d["shard"], d["intents"], d["compress"]) == ([0, 1], int(INTENTS), False)
    (close,) = closes(records, 1)
    assert (close.code, close.closed_by) == (1001, Closer.CLIENT)  # GOING_AWAY on close()


async def run_resume(
    scenario: Scenario, tmp_path: Path, tag: str = ""
) -> tuple[ReplayServer, Probe]:
    """Replay with ``close_at_end=4000``: everything, close 4000, RESUME, closed by the test."""
    options = ReplayOptions(speed=0, close_at_end=4000)
    async with (
        replay(scenario, tmp_path, options, tag) as server,
        running(server, scenario) as probe,
    ):
        await wait(probe.resumed)
        await wait(probe.all_guilds)
        await wait(probe.all_messages)
        assert seen(probe.messages) == scenario.messages  # none twice
    return server, probe


async def test_resume_after_close_4000(compression: str, tmp_path: Path) -> None:
    """Close 4000 after the last dispatch: hikari reconnects (after its 1-2 s backoff) to
    resume_gateway_url and RESUMEs with READY's session_id and the last seq; RESUMED
    follows; no message twice."""
    scenario = rich_scenario()
    server, probe = await run_resume(scenario, tmp_path)
    assert probe.guilds == scenario.guilds

    records = transcript(server)
    first, second = connections(records)
    assert first.query == second.query
    assert first.query.compress == compression
    last = len(scenario.delivered(0, int(INTENTS)))
    assert dispatches(records, 1) == [
        (s, t) for s, t in enumerate(scenario.delivered(0, int(INTENTS)), 1)
    ]
    (end,) = closes(records, 1)
    assert (end.code, end.closed_by) == (4000, Closer.SERVER)
    ready = payload_json(next(f for f in frames(records, 1, Direction.SERVER) if f.t == "READY"))

    assert frames(records, 2, Direction.SERVER)[0].op == 10
    assert client_ops(records, 2) == [6]
    (resume,) = [f for f in frames(records, 2, Direction.CLIENT) if f.op == 6]
    d = payload_json(resume)["d"]
    assert (d["session_id"], d["seq"]) == (ready["d"]["session_id"], last)
    assert dispatches(records, 2) == [(last + 1, "RESUMED")]
    (close,) = closes(records, 2)
    assert (close.code, close.closed_by) == (1001, Closer.CLIENT)


async def test_two_runs_same_transcript(tmp_path: Path) -> None:
    """Two runs of one replay with hikari: equal transcripts up to timing and port
    (``normalized``): GET /gateway/bot, every dispatch, IDENTIFY, RESUME, RESUMED, closes."""
    scenario = rich_scenario()
    views = []
    for run in range(2):
        server, _ = await run_resume(scenario, tmp_path, tag=f"-{run}")
        views.append(normalized(transcript(server), [server.gateway_url]))
    first, second = views
    assert sorted(first) == ["conn 1", "conn 2", "http"]
    for key in first:
        assert first[key] == second[key], key


async def test_wrong_token_fails_at_login(tmp_path: Path) -> None:
    """ReplayOptions(token="other"): GET /gateway/bot gets 401, so start() raises
    UnauthorizedError and no gateway connection is opened. (The gateway's own 4004 path:
    the close:4004 fault in test_faults_hikari.py.)"""
    scenario = rich_scenario()
    options = ReplayOptions(speed=0, token="other")
    async with replay(scenario, tmp_path, options) as server:
        async with running(server, scenario, start=False) as probe:
            with pytest.raises(hikari.errors.UnauthorizedError):
                await asyncio.wait_for(probe.bot.start(check_for_updates=False), TIMEOUT)
            assert not probe.started.is_set()
        assert server.connections_total == 0
    records = transcript(server)
    assert connections(records) == []


async def test_two_shards(tmp_path: Path) -> None:
    """A 2-shard archive: /gateway/bot says 2 shards, hikari starts both (the second after
    its startup window, at least 5 s: max_concurrency is 1), each IDENTIFYs with
    [id, 2] and gets its recorded stream, READY.shard echoed; all guilds arrive."""
    scenario = rich_scenario(num_shards=2)
    async with replay(scenario, tmp_path) as server, running(server, scenario) as probe:
        await wait(probe.started)
        await wait(probe.all_guilds)
        await wait(probe.all_messages)
        assert sorted(e.shard.id for e in probe.ready) == [0, 1]
        assert probe.guilds == scenario.guilds
        by_shard: dict[int, list[Message]] = {0: [], 1: []}
        for event, item in zip(probe.messages, seen(probe.messages), strict=True):
            by_shard[event.shard.id].append(item)
        assert by_shard == scenario.messages_by_shard
    records = transcript(server)
    identified = []
    for conn in connections(records):
        (identify,) = [f for f in frames(records, conn.conn_id, Direction.CLIENT) if f.op == 2]
        shard = payload_json(identify)["d"]["shard"]
        identified.append(shard[0])
        ready = next(f for f in frames(records, conn.conn_id, Direction.SERVER) if f.t == "READY")
        assert payload_json(ready)["d"]["shard"] == shard
        assert [t for _, t in dispatches(records, conn.conn_id)] == scenario.delivered(
            shard[0], int(INTENTS)
        )
    assert identified == [0, 1]
