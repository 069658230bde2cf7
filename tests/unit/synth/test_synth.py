"""``replayer synth``: determinism, archive integrity, sharding, sequence numbers, member
chunks, size-targeted streaming, ETF, and the real discord.py and hikari parsers accepting
every synthetic payload shape."""

from __future__ import annotations

import asyncio
import io
import json
import tracemalloc
import types
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest
from typer.testing import CliRunner

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    HttpRecord,
    Record,
)
from replayer.archive.redaction import REDACTED
from replayer.archive.verify import ArchiveChecker
from replayer.cli import app
from replayer.gateway.etf import etf_decode
from replayer.gateway.opcodes import Direction, Opcode
from replayer.synth import (
    DISCORD_EPOCH_MS,
    SESSION_START_MS,
    SYNTH_TOKEN,
    SynthOptions,
    iso_time,
    parse_size,
    synth_records,
    write_synth,
)

BOT_ID = 123456789012345678


def decode(frame: FrameRecord, encoding: str = "json") -> dict[str, Any]:
    obj = etf_decode(frame.payload) if encoding == "etf" else json.loads(frame.payload)
    assert isinstance(obj, dict)
    return obj


def frames(records: list[Record]) -> list[FrameRecord]:
    return [r for r in records if isinstance(r, FrameRecord)]


def dispatches(records: list[Record], event: str | None = None) -> Iterator[dict[str, Any]]:
    for frame in frames(records):
        if frame.op == Opcode.DISPATCH and (event is None or frame.t == event):
            yield decode(frame)["d"]


def check(records: list[Record]) -> ArchiveChecker:
    checker = ArchiveChecker()
    for record in records:
        checker.check(record)
    return checker


def after_header(path: Path) -> bytes:
    data = path.read_bytes()
    unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False)
    unpacker.unpack()
    return data[unpacker.tell() :]


# --- determinism and integrity ---------------------------------------------------------


def test_same_seed_same_session(tmp_path: Path) -> None:
    options = SynthOptions(shards=2, guilds=4, seed=7)
    assert list(synth_records(options)) == list(synth_records(options))
    first, second = tmp_path / "a.rpl", tmp_path / "b.rpl"
    assert write_synth(first, options) == write_synth(second, options)
    assert after_header(first) == after_header(second)  # only the created time differs
    other = list(synth_records(replace(options, seed=8)))
    assert other != list(synth_records(options))


@pytest.mark.parametrize(
    "options",
    [
        SynthOptions(),
        SynthOptions(shards=3, guilds=7, encoding="etf", compress="zlib-stream"),
        SynthOptions(shards=2, compress="zstd-stream", heartbeat_interval_ms=700),
        SynthOptions(guilds=0),
        SynthOptions(guilds=2, shards=4, members_per_guild=0, channels_per_guild=1),
        SynthOptions(roles_per_guild=1, channels_per_guild=2, end_with_close=False),
        SynthOptions(messages=0, presence_updates=0, typing=0, member_chunk_requests=0),
    ],
)
def test_every_record_passes_the_checker(options: SynthOptions, tmp_path: Path) -> None:
    records = list(synth_records(options))
    checker = check(records)
    assert checker.connections == options.shards
    assert checker.http == 3
    assert checker.closes == (options.shards if options.end_with_close else 0)
    # t_ns realistic: strictly later than the REST calls, within minutes.
    assert records[-1].t_ns < 10 * 60 * 10**9
    # And the archive written to disk (redacted) reads back and verifies.
    path = tmp_path / "s.rpl"
    count = write_synth(path, options)
    assert count == len(records)
    with ArchiveReader(path) as reader:
        assert reader.header.metadata["synthetic"] is True
        assert reader.header.metadata["options"]["seed"] == options.seed
        check(list(reader))
    assert not (tmp_path / "s.rpl.partial").exists()


def test_layout_of_a_connection() -> None:
    records = list(synth_records(SynthOptions()))
    kinds = [type(r).__name__ for r in records[:11]]
    assert kinds[:4] == ["HttpRecord", "HttpRecord", "HttpRecord", "ConnectionRecord"]
    assert [r.path for r in records[:3] if isinstance(r, HttpRecord)] == [
        "/api/v10/users/@me",
        "/api/v10/oauth2/applications/@me",
        "/api/v10/gateway/bot",
    ]
    head = [(f.direction, f.op, f.t) for f in frames(records)[:5]]
    assert head == [
        (Direction.SERVER, Opcode.HELLO, None),
        (Direction.CLIENT, Opcode.HEARTBEAT, None),
        (Direction.CLIENT, Opcode.IDENTIFY, None),
        (Direction.SERVER, Opcode.HEARTBEAT_ACK, None),
        (Direction.SERVER, Opcode.DISPATCH, "READY"),
    ]
    conn = next(r for r in records if isinstance(r, ConnectionRecord))
    assert conn.url == "wss://gateway.discord.gg/?v=10&encoding=json"
    assert (conn.query.v, conn.query.encoding, conn.query.compress) == (10, "json", None)
    info = next(r for r in records if isinstance(r, ConnectionInfoRecord))
    assert info.shard == (0, 1)
    hello = decode(frames(records)[0])
    assert hello["d"]["heartbeat_interval"] == 41250
    assert decode(frames(records)[1]) == {"op": 1, "d": None}
    identify = decode(frames(records)[2])["d"]
    assert identify["token"] == SYNTH_TOKEN
    assert identify["shard"] == [0, 1]
    assert identify["large_threshold"] == 250
    close = records[-1]
    assert isinstance(close, CloseRecord)
    assert (close.code, close.closed_by, close.clean) == (1000, Closer.CLIENT, True)
    for frame in frames(records):
        assert frame.frame_type is FrameType.TEXT
        assert frame.wire_size == len(frame.payload)
    counts: dict[str | None, int] = defaultdict(int)
    for frame in frames(records):
        counts[frame.t] += 1
    assert counts["MESSAGE_CREATE"] == 30
    assert counts["PRESENCE_UPDATE"] == 10
    assert counts["TYPING_START"] == 5
    assert counts["GUILD_CREATE"] == 3


def test_token_is_redacted_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "s.rpl"
    write_synth(path, SynthOptions(shards=2))
    data = path.read_bytes()
    assert SYNTH_TOKEN.encode() not in data
    with ArchiveReader(path) as reader:
        identifies = [r for r in reader if isinstance(r, FrameRecord) and r.op == Opcode.IDENTIFY]
    assert len(identifies) == 2
    for frame in identifies:
        assert frame.flags & FrameFlag.REDACTED
        assert decode(frame)["d"]["token"] == REDACTED


# --- sharding, sequence numbers, heartbeats -----------------------------------------------


def test_guilds_split_over_shards() -> None:
    n = 4
    records = list(synth_records(SynthOptions(shards=n, guilds=10, messages=150)))
    shard_of_conn: dict[int, int] = {}
    for frame in frames(records):
        if frame.op == Opcode.IDENTIFY:
            shard = decode(frame)["d"]["shard"]
            assert shard[1] == n
            shard_of_conn[frame.conn_id] = shard[0]
    assert sorted(shard_of_conn.values()) == list(range(n))
    gateway_bot = next(r for r in records if isinstance(r, HttpRecord) and "gateway" in r.path)
    assert json.loads(gateway_bot.response_body)["shards"] == n
    seen: set[int] = set()
    for frame in frames(records):
        if frame.t not in ("READY", "GUILD_CREATE", "MESSAGE_CREATE", "TYPING_START"):
            continue
        i = shard_of_conn[frame.conn_id]
        d = decode(frame)["d"]
        if frame.t == "READY":
            assert d["shard"] == [i, n]
            for stub in d["guilds"]:
                assert stub["unavailable"] is True
                assert (int(stub["id"]) >> 22) % n == i
            seen.update(int(stub["id"]) for stub in d["guilds"])
        else:
            guild_id = d["id"] if frame.t == "GUILD_CREATE" else d["guild_id"]
            assert (int(guild_id) >> 22) % n == i
    assert len(seen) == 10
    # The shards' connections run concurrently: their frames interleave by time.
    order = [f.conn_id for f in frames(records) if f.t == "MESSAGE_CREATE"]
    assert len(set(order)) == n
    assert order != sorted(order)


def test_sequence_numbers_and_heartbeats() -> None:
    records = list(synth_records(SynthOptions(shards=2, messages=80, heartbeat_interval_ms=1000)))
    last_s: dict[int, int | None] = defaultdict(lambda: None)
    beats: dict[int, int] = defaultdict(int)
    unacked: dict[int, bool] = defaultdict(bool)
    for frame in frames(records):
        payload = decode(frame)
        if frame.op == Opcode.DISPATCH:
            previous = last_s[frame.conn_id]
            assert frame.s == (previous or 0) + 1
            last_s[frame.conn_id] = frame.s
        elif frame.op == Opcode.HEARTBEAT:
            assert payload == {"op": 1, "d": last_s[frame.conn_id]}
            assert not unacked[frame.conn_id]
            unacked[frame.conn_id] = True
            beats[frame.conn_id] += 1
        elif frame.op == Opcode.HEARTBEAT_ACK:
            assert unacked[frame.conn_id]
            unacked[frame.conn_id] = False
        else:
            assert frame.s is None
            assert frame.t is None
    assert all(count >= 10 for count in beats.values()), beats
    assert sorted(beats) == [1, 2]


def test_member_chunks_echo_the_nonce() -> None:
    options = SynthOptions(guilds=2, members_per_guild=1200, member_chunk_requests=3, messages=5)
    records = list(synth_records(options))
    requests = [decode(f)["d"] for f in frames(records) if f.op == Opcode.REQUEST_GUILD_MEMBERS]
    assert len(requests) == 3
    assert len({r["nonce"] for r in requests}) == 3
    chunks = list(dispatches(records, "GUILD_MEMBERS_CHUNK"))
    assert len(chunks) == 3 * 2  # 1201 members (the bot too) in chunks of 1000
    for request in requests:
        mine = [c for c in chunks if c["nonce"] == request["nonce"]]
        assert [c["chunk_index"] for c in mine] == [0, 1]
        assert {c["chunk_count"] for c in mine} == {2}
        assert {c["guild_id"] for c in mine} == {request["guild_id"]}
        sizes = [len(c["members"]) for c in mine]
        assert sizes == [1000, 201]
        ids = {m["user"]["id"] for c in mine for m in c["members"]}
        assert len(ids) == 1201
        assert str(BOT_ID) in ids
    # Large guilds (over large_threshold) send only the online members in GUILD_CREATE.
    for guild in dispatches(records, "GUILD_CREATE"):
        assert guild["large"] is True
        assert guild["member_count"] == 1201
        assert len(guild["members"]) < 1201


# --- sizes, ids, encodings ---------------------------------------------------------------


def test_target_bytes_streams_in_flat_memory() -> None:
    """The first half streams untraced (warming the caches); over the second half, the
    memory allocated and still held stays tiny: nothing accumulates."""
    target = 3 << 20
    total = 0
    held = peak = 0
    records = synth_records(SynthOptions(target_bytes=target, seed=3))
    for record in records:
        if isinstance(record, FrameRecord):
            total += len(record.payload)
            if total >= target // 2 and not tracemalloc.is_tracing():
                tracemalloc.start()
                traced_from = total
    try:
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert target <= total < target + 64 * 1024  # reaches the target, then stops
    streamed = total - traced_from
    assert streamed > 1 << 20
    assert held < 256 << 10, held  # still referenced after 1.5 MiB went through
    assert peak < 1 << 20, peak


def test_write_synth_reports_progress(tmp_path: Path) -> None:
    seen: list[int] = []
    count = write_synth(tmp_path / "s.rpl", SynthOptions(target_bytes=2 << 20), seen.append)
    assert count > 2048
    assert seen == sorted(seen)
    assert seen[-1] >= 2 << 20


def test_snowflakes_and_timestamps_are_realistic() -> None:
    records = list(synth_records(SynthOptions(messages=50)))
    for frame in frames(records):
        if frame.t != "MESSAGE_CREATE":
            continue
        d = decode(frame)["d"]
        ms = (int(d["id"]) >> 22) + DISCORD_EPOCH_MS
        assert ms == SESSION_START_MS + frame.t_ns // 1_000_000
        assert d["timestamp"] == iso_time(ms)
        assert d["timestamp"].endswith("+00:00")
        assert int(d["author"]["id"]) >> 22 < int(d["id"]) >> 22  # accounts predate messages
    ready = next(dispatches(records, "READY"))
    assert ready["user"]["id"] == str(BOT_ID)
    assert len(ready["session_id"]) == 32
    int(ready["session_id"], 16)


def test_etf_payloads_decode_to_the_json_session() -> None:
    as_json = list(synth_records(SynthOptions(shards=2, seed=5)))
    as_etf = list(synth_records(SynthOptions(shards=2, seed=5, encoding="etf")))
    check(as_etf)
    assert len(as_json) == len(as_etf)
    for a, b in zip(frames(as_json), frames(as_etf), strict=True):
        assert b.frame_type is FrameType.BINARY
        assert decode(a) == decode(b, "etf")
        assert b.payload[0] == 131  # ETF version byte
    conn = next(r for r in as_etf if isinstance(r, ConnectionRecord))
    assert conn.query.encoding == "etf"


def test_compressed_wire_sizes() -> None:
    records = list(synth_records(SynthOptions(compress="zlib-stream")))
    conn = next(r for r in records if isinstance(r, ConnectionRecord))
    assert conn.url.endswith("&compress=zlib-stream")
    assert conn.query.compress == "zlib-stream"
    guild_creates = [f for f in frames(records) if f.t == "GUILD_CREATE"]
    assert all(f.wire_size < len(f.payload) // 3 for f in guild_creates)
    for frame in frames(records):
        if frame.direction is Direction.CLIENT:  # clients never compress
            assert frame.wire_size == len(frame.payload)
            assert frame.frame_type is FrameType.TEXT
        else:
            assert frame.frame_type is FrameType.BINARY


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="shards"):
        SynthOptions(shards=0)
    with pytest.raises(ValueError, match="encoding"):
        SynthOptions(encoding="xml")
    with pytest.raises(ValueError, match="compress"):
        SynthOptions(compress="gzip")
    with pytest.raises(ValueError, match="guild"):
        SynthOptions(guilds=0, target_bytes=100)
    assert parse_size("200MB") == 200 << 20
    assert parse_size("1GiB") == parse_size("1gb") == 1 << 30
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("12 parsecs")


# --- the real client libraries accept the shapes ----------------------------------------


SHAPES = SynthOptions(
    guilds=3,
    members_per_guild=40,
    messages=200,
    presence_updates=100,
    typing=40,
    member_chunk_requests=3,
    seed=11,
)


@pytest.fixture(scope="module")
def shapes() -> list[Record]:
    return list(synth_records(SHAPES))


async def test_discord_py_parses_every_payload(shapes: list[Record]) -> None:
    import discord

    records = shapes
    client = discord.Client(intents=discord.Intents.all(), chunk_guilds_at_startup=False)
    state = client._connection
    events: list[tuple[str, tuple[Any, ...]]] = []
    state.dispatch = lambda event, *args: events.append((event, args))
    try:
        bodies = {r.path: json.loads(r.response_body) for r in records if isinstance(r, HttpRecord)}
        info = discord.AppInfo(state, bodies["/api/v10/oauth2/applications/@me"])
        assert info.id == BOT_ID
        assert info.owner.name == "synthowner"
        parsed: dict[str, int] = defaultdict(int)
        for frame in frames(records):
            if frame.op != Opcode.DISPATCH:
                continue
            assert frame.t is not None
            d = decode(frame)["d"]
            state.parsers[frame.t](d)
            parsed[frame.t] += 1
            if frame.t == "GUILD_CREATE":
                guild = state._get_guild(int(d["id"]))
                assert guild is not None
                assert guild.name == d["name"]
                assert guild.member_count == d["member_count"] == 41
                assert len(guild.members) == 41
                assert len(guild.channels) == len(d["channels"]) == 5
                assert len(guild.text_channels) == 3
                assert len(guild.voice_channels) == 1
                assert len(guild.categories) == 1
                assert {r.name for r in guild.roles} >= {"@everyone", "synthbot"}
                assert guild.me is not None
                assert guild.me.id == BOT_ID
                assert guild.owner_id == int(d["owner_id"])
            elif frame.t == "MESSAGE_CREATE":
                assert state._messages is not None
                message = state._messages[-1]
                assert message.id == int(d["id"])
                assert message.content == d["content"]
                assert message.author.id == int(d["author"]["id"])
                assert isinstance(message.author, discord.Member)
                assert message.channel.id == int(d["channel_id"])
                assert message.guild is not None
                assert message.guild.id == int(d["guild_id"])
                assert [m.id for m in message.mentions] == [int(m["id"]) for m in d["mentions"]]
                assert len(message.attachments) == len(d["attachments"])
            elif frame.t == "PRESENCE_UPDATE":
                guild = state._get_guild(int(d["guild_id"]))
                assert guild is not None
                member = guild.get_member(int(d["user"]["id"]))
                assert member is not None
                assert str(member.status) == d["status"]
                assert len(member.activities) == len(d["activities"])
        assert state.user is not None
        assert (state.user.id, state.user.name) == (BOT_ID, "synthbot")
        assert state.application_id == BOT_ID
        assert parsed["READY"] == 1
        assert parsed["GUILD_CREATE"] == 3
        assert parsed["GUILD_MEMBERS_CHUNK"] == 3
        names = {event for event, _ in events}
        assert {"connect", "message", "typing", "presence_update"} <= names
        typing = [args for event, args in events if event == "typing"]
        assert len(typing) == parsed["TYPING_START"] == 40
        assert all(isinstance(user, discord.Member) for _, user, _ in typing)
    finally:
        if state._ready_task is not None:
            state._ready_task.cancel()
        await asyncio.sleep(0)
        await client.close()


async def test_discord_py_sharded_ready() -> None:
    import discord

    options = SynthOptions(shards=2, guilds=5)
    client = discord.AutoShardedClient(
        intents=discord.Intents.all(), chunk_guilds_at_startup=False, shard_count=2
    )
    state = client._connection
    state.dispatch = lambda event, *args: None
    try:
        for frame in frames(list(synth_records(options))):
            if frame.op == Opcode.DISPATCH and frame.t is not None:
                state.parsers[frame.t](decode(frame)["d"])
        shard_ids = {g.name: g.shard_id for g in state.guilds}
        assert len(shard_ids) == 5
        assert set(shard_ids.values()) == {0, 1}
    finally:
        for task in [state._ready_task, *state._ready_tasks.values()]:
            if task is not None:
                task.cancel()
        await asyncio.sleep(0)
        await client.http.close()


def test_hikari_parses_every_payload(shapes: list[Record]) -> None:
    import hikari
    from hikari.impl.entity_factory import EntityFactoryImpl
    from hikari.impl.event_factory import EventFactoryImpl

    records = shapes
    app_stub: Any = types.SimpleNamespace()
    entities = EntityFactoryImpl(app_stub)
    app_stub.entity_factory = entities
    events = EventFactoryImpl(app_stub)
    shard: Any = types.SimpleNamespace(
        get_user_id=lambda: hikari.Snowflake(BOT_ID), id=0, shard_count=1
    )

    bodies = {r.path: json.loads(r.response_body) for r in records if isinstance(r, HttpRecord)}
    me = entities.deserialize_my_user(bodies["/api/v10/users/@me"])
    assert (me.id, me.username, me.is_bot) == (BOT_ID, "synthbot", True)
    application = entities.deserialize_application(bodies["/api/v10/oauth2/applications/@me"])
    assert application.id == BOT_ID
    gateway = entities.deserialize_gateway_bot_info(bodies["/api/v10/gateway/bot"])
    assert gateway.shard_count == 1
    assert gateway.session_start_limit.remaining >= 1

    parsed: dict[str, int] = defaultdict(int)
    for frame in frames(records):
        if frame.op != Opcode.DISPATCH:
            continue
        d = decode(frame)["d"]
        parsed[frame.t or ""] += 1
        if frame.t == "READY":
            ready = events.deserialize_ready_event(shard, d)
            assert ready.my_user.id == BOT_ID
            assert ready.actual_gateway_version == 10
            assert len(ready.unavailable_guilds) == 3
            assert entities.deserialize_my_user(d["user"]).username == "synthbot"
        elif frame.t == "GUILD_CREATE":
            definition = entities.deserialize_gateway_guild(d, user_id=hikari.Snowflake(BOT_ID))
            guild = definition.guild()
            assert (guild.id, guild.name) == (int(d["id"]), d["name"])
            assert guild.member_count == 41
            assert len(definition.members()) == 41
            assert len(definition.channels()) == 5
            assert len(definition.roles()) == 4
            assert len(definition.presences()) == len(d["presences"])
            assert len(definition.emojis()) == len(d["emojis"])
            assert len(definition.voice_states()) == len(d["voice_states"])
            assert definition.threads() == {}
            assert definition.stickers() == {}
            available = events.deserialize_guild_available_event(shard, d)
            assert available.guild.name == d["name"]
        elif frame.t == "MESSAGE_CREATE":
            message = entities.deserialize_message(d)
            assert message.id == int(d["id"])
            assert message.content == (d["content"] or None)
            assert message.author.id == int(d["author"]["id"])
            assert message.member is not None
            assert message.timestamp.timestamp() * 1000 == pytest.approx(
                (int(d["id"]) >> 22) + DISCORD_EPOCH_MS
            )
        elif frame.t == "PRESENCE_UPDATE":
            presence = entities.deserialize_member_presence(d)
            assert presence.user_id == int(d["user"]["id"])
            assert presence.guild_id == int(d["guild_id"])
            assert str(presence.visible_status) == d["status"]
        elif frame.t == "TYPING_START":
            typing = events.deserialize_typing_start_event(shard, d)
            assert isinstance(typing, hikari.GuildTypingEvent)
            assert typing.member.id == int(d["user_id"])
        elif frame.t == "GUILD_MEMBERS_CHUNK":
            chunk = events.deserialize_guild_member_chunk_event(shard, d)
            assert chunk.nonce == d["nonce"]
            assert (chunk.chunk_index, chunk.chunk_count) == (0, 1)
            assert len(chunk.members) == 41
    assert parsed["MESSAGE_CREATE"] == 200
    assert parsed["PRESENCE_UPDATE"] == 100


# --- command line ----------------------------------------------------------------------


def test_cli_synth_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.rpl"
    result = runner.invoke(app, ["synth", "-o", str(out), "--guilds", "2", "--shards", "2"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"wrote {out}: ")
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output
    sized = tmp_path / "sized.rpl"
    result = runner.invoke(app, ["synth", "-o", str(sized), "--size", "300KB", "--seed", "4"])
    assert result.exit_code == 0, result.output
    with ArchiveReader(sized) as reader:
        assert reader.header.metadata["options"]["target_bytes"] == 300 << 10
        payload = sum(len(r.payload) for r in reader if isinstance(r, FrameRecord))
    assert payload >= 300 << 10
    for args, needle in (
        (["--shards", "0"], "--shards"),
        (["--encoding", "xml"], "--encoding"),
        (["--compress", "gzip"], "--compress"),
        (["--size", "lots"], "--size"),
    ):
        result = runner.invoke(app, ["synth", "-o", str(tmp_path / "bad.rpl"), *args])
        assert result.exit_code == 1
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert lines[0].startswith("error: ")
        assert needle in lines[0]
    assert not (tmp_path / "bad.rpl").exists()
