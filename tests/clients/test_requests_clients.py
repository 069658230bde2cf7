"""discord.py and hikari with requests answered from state and IDENTIFY compress (issue
#15, items 8 and 9): member chunking at start-up, a prefix query, payload compression.

The expected members are read from the archive's own records here (every GUILD_CREATE
member and every recorded GUILD_MEMBERS_CHUNK member, by guild), not from the replayer.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import hikari
import hikari.impl.shard
import pytest
import yarl
from hikari.api.shard import GatewayCompression

from replayer.archive.reader import read_records
from replayer.archive.records import FrameRecord, FrameType
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from tests.clients.conftest import (
    TIMEOUT,
    TOKEN,
    Scenario,
    frames,
    payload_json,
    replay,
    rich_scenario,
    scenario_from_archive,
    transcript,
)


def large_guilds_scenario(directory: Path) -> Scenario:
    """2 large guilds (301 members, over large_threshold): GUILD_CREATE carries only the
    online members and those in voice; the recording requested guild 0's members (one
    chunk, everyone), never guild 1's."""
    from replayer.synth import SynthOptions, write_synth

    path = directory / "synth-large.rpl"
    options = SynthOptions(
        guilds=2, members_per_guild=300, member_chunk_requests=1, messages=2, seed=5
    )
    write_synth(path, options)
    return scenario_from_archive("synth-large", path)


def archive_members(path: Path) -> dict[int, dict[int, str]]:
    """guild id -> user id -> username, from every member the archive holds."""
    out: dict[int, dict[int, str]] = {}
    for record in read_records(path)[1]:
        if not isinstance(record, FrameRecord) or record.direction != Direction.SERVER:
            continue
        obj = json.loads(record.payload)
        d = obj.get("d")
        if obj.get("t") == "GUILD_CREATE":
            guild_id, members = int(d["id"]), d.get("members", [])
        elif obj.get("t") == "GUILD_MEMBERS_CHUNK":
            guild_id, members = int(d["guild_id"]), d["members"]
        else:
            continue
        known = out.setdefault(guild_id, {})
        known.update((int(m["user"]["id"]), m["user"]["username"]) for m in members)
    return out


@pytest.fixture
def discord_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    def point(server: Any) -> None:
        monkeypatch.setattr(discord.http.Route, "BASE", server.rest_base)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url)
        )

    return point


async def run_until_ready(client: discord.Client) -> asyncio.Task[None]:
    ready = asyncio.Event()
    client.event(_setter("on_ready", ready))
    task = asyncio.create_task(client.start(TOKEN))
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=TIMEOUT, return_when="FIRST_COMPLETED")
    waiter.cancel()
    assert waiter in done, f"no on_ready: {task.exception() if task.done() else 'timed out'}"
    return task


def _setter(name: str, event: asyncio.Event) -> Any:
    async def handler() -> None:
        event.set()

    handler.__name__ = name
    return handler


async def stop(client: discord.Client, task: asyncio.Task[None]) -> None:
    await client.close()
    await asyncio.wait({task}, timeout=TIMEOUT)
    assert task.done()
    if not task.cancelled():
        task.exception()


MEMBER_INTENTS = discord.Intents(guilds=True, members=True, guild_messages=True)


async def test_discordpy_chunks_every_member_the_archive_knows(
    tmp_path: Path, discord_at: Any
) -> None:
    """discord.py chunks both large guilds at start-up (query "", limit 0): each gets every
    member the archive knows, including the recorded chunk's for guild 0 and only
    GUILD_CREATE's for guild 1 (all it knows); chunk_index/chunk_count and the nonce let
    it finish, so on_ready comes."""
    scenario = large_guilds_scenario(tmp_path)
    assert scenario.path is not None
    expected = archive_members(scenario.path)
    assert sorted(len(m) for m in expected.values())[-1] == 301  # the recorded chunk's guild
    async with replay(scenario, tmp_path, ReplayOptions(speed=0, recorded_faults=False)) as server:
        discord_at(server)
        client = discord.Client(intents=MEMBER_INTENTS, guild_ready_timeout=0.1)
        task = await run_until_ready(client)
        try:
            got = {g.id: {m.id: m.name for m in g.members} for g in client.guilds}
            assert got == expected
            # discord.py's "chunked": as many members cached as member_count says; true
            # where the archive knows them all (the recorded chunk's guild) only.
            assert {g.id: g.chunked for g in client.guilds} == {
                g.id: len(expected[g.id]) == g.member_count for g in client.guilds
            }
            assert sorted(g.chunked for g in client.guilds) == [False, True]
            # A prefix query: the members whose username starts with it, recorded chunk
            # members among them (the recording never asked for this prefix).
            guild = max(client.guilds, key=lambda g: len(expected[g.id]))
            prefix = next(iter(expected[guild.id].values()))[:2]
            found = await guild.query_members(prefix, limit=100)
            wanted = {
                u
                for u, name in expected[guild.id].items()
                if name.casefold().startswith(prefix.casefold())
            }
            assert {m.id for m in found} == wanted
        finally:
            await stop(client, task)
    records = transcript(server)
    requests = [payload_json(f)["d"] for f in frames(records, 1, Direction.CLIENT) if f.op == 8]
    assert {(int(r["guild_id"]), r["query"], r["limit"]) for r in requests[:2]} == {
        (g, "", 0) for g in expected
    }


async def test_discordpy_without_the_members_intent_never_asks(
    tmp_path: Path, discord_at: Any
) -> None:
    """The sample archives' clients (no GUILD_MEMBERS) make no member requests: on_ready
    comes as before, with every rule on."""
    scenario = large_guilds_scenario(tmp_path)
    async with replay(scenario, tmp_path, ReplayOptions(speed=0, recorded_faults=False)) as server:
        discord_at(server)
        client = discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.1)
        task = await run_until_ready(client)
        await stop(client, task)
    assert [f.op for f in frames(transcript(server), 1, Direction.CLIENT) if f.op == 8] == []


async def hikari_bot(server: Any, intents: hikari.Intents) -> hikari.GatewayBot:
    bot = hikari.GatewayBot(TOKEN, rest_url=server.rest_base, banner=None, intents=intents)
    await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
    return bot


async def test_hikari_payload_compression_and_member_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hikari with payload compression (IDENTIFY compress=true, no transport compression):
    READY and what follows come as zlib streams of their own, which hikari inflates; its
    member requests (a query, then user_ids with one unknown) are answered from state with
    its nonce and not_found."""
    init: Any = hikari.impl.shard.GatewayShardImpl.__init__
    monkeypatch.setitem(init.__kwdefaults__, "compression", GatewayCompression.PAYLOAD_ZLIB_STREAM)
    scenario = rich_scenario()
    archive = scenario.write(tmp_path / "rich.rpl")
    expected = archive_members(archive)
    guild_id = min(expected)
    chunks: list[hikari.MemberChunkEvent] = []
    got_two = asyncio.Event()
    async with replay(scenario, tmp_path, ReplayOptions(speed=0)) as server:
        bot = await hikari_bot(server, hikari.Intents.GUILDS | hikari.Intents.GUILD_MEMBERS)

        async def on_chunk(event: hikari.MemberChunkEvent) -> None:
            chunks.append(event)
            if len(chunks) == 2:
                got_two.set()

        bot.subscribe(hikari.MemberChunkEvent, on_chunk)
        try:
            name = next(iter(expected[guild_id].values()))
            await bot.request_guild_members(guild_id, query=name[:3], limit=10, nonce="q1")
            known = next(iter(expected[guild_id]))
            await bot.request_guild_members(guild_id, users=[known, 42], nonce="u1")
            await asyncio.wait_for(got_two.wait(), TIMEOUT)
        finally:
            await asyncio.wait_for(bot.close(), TIMEOUT)
    by_nonce = {c.nonce: c for c in chunks}
    wanted = {
        u for u, n in expected[guild_id].items() if n.casefold().startswith(name[:3].casefold())
    }
    assert set(by_nonce["q1"].members) == wanted
    assert set(by_nonce["u1"].members) == {known}
    assert list(by_nonce["u1"].not_found) == [42]
    records = transcript(server)
    identify = next(payload_json(f) for f in frames(records, 1, Direction.CLIENT) if f.op == 2)
    assert identify["d"]["compress"] is True
    server_frames = frames(records, 1, Direction.SERVER)
    assert server_frames[0].op == 10
    assert server_frames[0].frame_type == FrameType.TEXT  # HELLO: before IDENTIFY
    after = [f for f in server_frames if f.s is not None]
    assert after
    assert all(f.frame_type == FrameType.BINARY for f in after)  # zlib per message


def server_closes(records: list[Any]) -> list[int | None]:
    from replayer.archive.records import Closer, CloseRecord

    return [r.code for r in records if isinstance(r, CloseRecord) and r.closed_by is Closer.SERVER]


async def test_discordpy_presence_and_voice_payloads_pass_validation(
    tmp_path: Path, discord_at: Any
) -> None:
    """discord.py's op 3 (a game, idle) and op 4 (leave voice) meet the documented
    structures: no 4001; a member request after them is still answered."""
    scenario = rich_scenario()
    async with replay(scenario, tmp_path, ReplayOptions(speed=0)) as server:
        discord_at(server)
        client = discord.Client(intents=MEMBER_INTENTS, guild_ready_timeout=0.1)
        task = await run_until_ready(client)
        try:
            await client.change_presence(activity=discord.Game("chess"), status=discord.Status.idle)
            guild = client.guilds[0]
            await guild.change_voice_state(channel=None, self_deaf=True)
            [member] = await guild.query_members(user_ids=[guild.owner_id or 0])
            assert member.id == guild.owner_id
        finally:
            await stop(client, task)
    records = transcript(server)
    ops = [f.op for f in frames(records, 1, Direction.CLIENT)]
    assert {3, 4, 8} <= set(ops)
    assert 4001 not in server_closes(records)


async def test_hikari_presence_and_voice_payloads_pass_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hikari's op 3 (with the legacy ``game``) and op 4 (without self_mute) pass: no
    4001; a member request after them is still answered."""
    init: Any = hikari.impl.shard.GatewayShardImpl.__init__
    monkeypatch.setitem(
        init.__kwdefaults__, "compression", GatewayCompression.TRANSPORT_ZLIB_STREAM
    )
    scenario = rich_scenario()
    archive = scenario.write(tmp_path / "rich.rpl")
    guild_id = min(archive_members(archive))
    chunk = asyncio.Event()
    async with replay(scenario, tmp_path, ReplayOptions(speed=0)) as server:
        bot = await hikari_bot(server, hikari.Intents.GUILDS | hikari.Intents.GUILD_MEMBERS)

        async def on_chunk(_: hikari.MemberChunkEvent) -> None:
            chunk.set()

        bot.subscribe(hikari.MemberChunkEvent, on_chunk)
        try:
            await bot.update_presence(
                status=hikari.Status.IDLE, activity=hikari.Activity(name="chess")
            )
            await bot.update_voice_state(guild_id, None, self_deaf=True)
            await bot.request_guild_members(guild_id, query="", limit=0)
            await asyncio.wait_for(chunk.wait(), TIMEOUT)
        finally:
            await asyncio.wait_for(bot.close(), TIMEOUT)
    records = transcript(server)
    sent = {f.op: payload_json(f)["d"] for f in frames(records, 1, Direction.CLIENT)}
    assert "game" in sent[3]
    assert "self_mute" not in sent[4]
    assert 4001 not in server_closes(records)
