"""discord.py 2.7 against the replay server on loopback: its own parsers, caches,
decompressors and reconnect logic are the oracle.

discord.py is pointed at the server through ``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY`` (gateway-facts.md, client table).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import discord.utils
import pytest
import yarl

from replayer.archive.records import Closer, HttpRecord
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.server import ReplayServer
from replayer.replay.starts import SessionStartLimit
from replayer.replay.verdicts import Result
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
    sample_scenario,
    transcript,
    until_judged,
)

# GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT, as in the recordings: no member chunking.
INTENTS = discord.Intents(guilds=True, guild_messages=True, message_content=True)
# discord.py fires on_ready only once no GUILD_CREATE came for this long (default 2 s).
GUILD_READY_TIMEOUT = 0.1


@functools.cache
def discord_zlib_context() -> type[Any]:
    """discord.py's own zlib-stream context class.

    ``discord.utils`` defines ``_ZlibDecompressionContext`` only when neither
    ``zstandard`` nor ``compression.zstd`` imports, so a private copy of the module is
    loaded with those imports blocked; ``discord.utils`` itself is left as it is.
    """
    spec = importlib.util.find_spec("discord.utils")
    assert spec is not None
    assert spec.origin is not None
    blocked = ("zstandard", "compression.zstd")
    saved = {name: sys.modules[name] for name in blocked if name in sys.modules}
    try:
        for name in blocked:
            sys.modules[name] = None  # type: ignore[assignment]  # makes `import` fail
        copy_spec = importlib.util.spec_from_file_location(
            "discord._replayer_tests_utils_without_zstd", spec.origin
        )
        assert copy_spec is not None
        assert copy_spec.loader is not None
        module = importlib.util.module_from_spec(copy_spec)
        copy_spec.loader.exec_module(module)
    finally:
        for name in blocked:
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                del sys.modules[name]
    context: type[Any] = module._ZlibDecompressionContext
    assert context.COMPRESSION_TYPE == "zlib-stream"
    return context


@pytest.fixture(params=COMPRESSIONS)
def compression(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The transport compression discord.py asks for: zstd-stream is what it picks with
    ``zstandard`` importable (as here); zlib-stream is forced with its own zlib context."""
    wanted: str = request.param
    if wanted == "zlib-stream":
        monkeypatch.setattr(discord.utils, "_ActiveDecompressionContext", discord_zlib_context())
    assert wanted == discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    return wanted


class Probe:
    """A discord.py client running against a replay, and what it has seen."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self.ready = asyncio.Event()
        self.resumed = asyncio.Event()
        self.messages: list[discord.Message] = []
        self.all_messages = asyncio.Event()
        self.expected_messages = 0
        self.task: asyncio.Task[None] | None = None

        @client.event
        async def on_ready() -> None:
            self.ready.set()

        @client.event
        async def on_resumed() -> None:
            self.resumed.set()

        @client.event
        async def on_message(message: discord.Message) -> None:
            self.messages.append(message)  # before any await: handlers start in order
            if len(self.messages) >= self.expected_messages:
                self.all_messages.set()

    async def wait(self, event: asyncio.Event) -> None:
        """Wait for ``event``; fail at once if the client stops first."""
        assert self.task is not None
        waiter = asyncio.ensure_future(event.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, self.task}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if waiter in done:
            return
        if self.task in done:
            raise AssertionError(f"the client stopped first: {self.task.exception()!r}")
        raise AssertionError(f"timed out after {TIMEOUT} s")


@asynccontextmanager
async def running(
    server: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
    expected_messages: int = 0,
    client_class: type[discord.Client] = discord.Client,
    **kwargs: Any,
) -> AsyncIterator[Probe]:
    """``client.start(TOKEN)`` against ``server``; closed (and awaited) on the way out."""
    monkeypatch.setattr(discord.http.Route, "BASE", server.rest_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url)
    )
    client = client_class(intents=INTENTS, guild_ready_timeout=GUILD_READY_TIMEOUT, **kwargs)
    probe = Probe(client)
    probe.expected_messages = expected_messages
    probe.task = asyncio.create_task(client.start(TOKEN))
    try:
        yield probe
    finally:
        await client.close()
        # start() returns once the close is through (ConnectionClosed is for the caller)
        await asyncio.wait({probe.task}, timeout=TIMEOUT)
        assert probe.task.done(), "the client did not stop after close()"
        if not probe.task.cancelled():
            probe.task.exception()  # retrieved: the test asserts on it where it matters


def cached_guilds(client: discord.Client) -> dict[int, tuple[str, list[str]]]:
    return {g.id: (g.name, sorted(c.name for c in g.text_channels)) for g in client.guilds}


def seen(messages: list[discord.Message]) -> list[Message]:
    """(guild id, channel name, content): the channel resolved from the client's cache."""
    out = []
    for message in messages:
        assert isinstance(message.channel, discord.TextChannel), message.channel
        assert message.guild is not None
        out.append((message.guild.id, message.channel.name, message.content))
    return out


@pytest.mark.parametrize("scenario_name", ["sample", "rich", "synth"])
async def test_ready_caches_and_messages(
    scenario_name: str, compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_ready fires; guild and channel caches hold the recorded ones; on_message sees the
    recorded messages in order, in their cached channels; the server saw the compression
    discord.py asked for, one IDENTIFY and nothing else but heartbeats."""
    scenario = make_scenario(scenario_name, tmp_path)
    # The sample's recorded op 7 would replay as a fault: off, to see the plain stream.
    options = ReplayOptions(speed=0, recorded_faults=False)
    async with (
        replay(scenario, tmp_path, options) as server,
        running(server, monkeypatch, len(scenario.messages)) as probe,
    ):
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
        client = probe.client
        assert client.user is not None
        assert client.user.id == BOT_ID
        assert cached_guilds(client) == scenario.guilds
        assert seen(probe.messages) == scenario.messages
        assert probe.task is not None
        assert not probe.task.done()
    assert probe.task.exception() is None

    records = transcript(server)
    (conn,) = connections(records)
    assert (conn.query.v, conn.query.encoding, conn.query.compress) == (10, "json", compression)
    assert conn.url == f"{server.gateway_url}?v=10&encoding=json&compress={compression}"
    expected = [(s, t) for s, t in enumerate(scenario.delivered(0, INTENTS.value), start=1)]
    assert dispatches(records, 1) == expected
    assert client_ops(records, 1) == [2]  # IDENTIFY, nothing else but heartbeats
    (identify_frame,) = [f for f in frames(records, 1, Direction.CLIENT) if f.op == 2]
    identify = payload_json(identify_frame)
    assert "shard" not in identify["d"]  # a plain Client does not shard
    # discord.py asks for payload compression too, on top of transport compression; the
    # replay (rightly) does not compress twice: the client decoded everything above.
    assert identify["d"]["compress"] is True
    assert identify["d"]["intents"] == INTENTS.value
    # discord.py's Client.close() while its poll loop waits ends with 4000, not 1000:
    # close(1000) wakes the loop, whose own close(4000) goes out first.
    (close,) = closes(records, 1)
    assert (close.code, close.closed_by, close.clean) == (4000, Closer.CLIENT, True)


async def run_resume(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str = ""
) -> tuple[ReplayServer, Probe]:
    """Replay with ``close_at_end=4000``: the client gets everything, then close 4000,
    reconnects and RESUMEs; the test closes it after RESUMED."""
    options = ReplayOptions(speed=0, close_at_end=4000)
    async with (
        replay(scenario, tmp_path, options, tag) as server,
        running(server, monkeypatch, len(scenario.messages)) as probe,
    ):
        await probe.wait(probe.resumed)
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
    return server, probe


async def test_resume_after_close_4000(
    compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Close 4000 after the last dispatch: discord.py reconnects on resume_gateway_url and
    RESUMEs with READY's session_id and the last seq; RESUMED follows, nothing is
    dispatched twice."""
    scenario = rich_scenario()
    server, probe = await run_resume(scenario, tmp_path, monkeypatch)
    assert probe.task is not None
    assert probe.task.exception() is None
    assert seen(probe.messages) == scenario.messages  # none twice

    records = transcript(server)
    first, second = connections(records)
    assert first.query == second.query
    assert first.query.compress == compression
    last = len(scenario.delivered(0, INTENTS.value))
    assert dispatches(records, 1) == [
        (s, t) for s, t in enumerate(scenario.delivered(0, INTENTS.value), 1)
    ]
    (end,) = closes(records, 1)
    assert (end.code, end.reason, end.closed_by) == (
        4000,
        "end of the recorded session",
        Closer.SERVER,
    )
    ready = payload_json(next(f for f in frames(records, 1, Direction.SERVER) if f.t == "READY"))
    assert ready["d"]["session_id"] == scenario.session_ids[0]
    assert ready["d"]["resume_gateway_url"] == server.gateway_url + "resume/1"

    assert frames(records, 2, Direction.SERVER)[0].op == 10  # HELLO first
    assert client_ops(records, 2) == [6]  # RESUME, no IDENTIFY (heartbeats may precede it)
    (resume,) = [f for f in frames(records, 2, Direction.CLIENT) if f.op == 6]
    d = payload_json(resume)["d"]
    assert (d["session_id"], d["seq"]) == (ready["d"]["session_id"], last)
    assert dispatches(records, 2) == [(last + 1, "RESUMED")]
    # The stream was over before the RESUME: the server does not close again; the test does.
    (close,) = closes(records, 2)
    assert (close.code, close.closed_by) == (4000, Closer.CLIENT)
    ws = probe.client.ws
    assert ws is not None
    assert (ws.session_id, ws.sequence) == (scenario.session_ids[0], last + 1)


async def test_a_recorded_reconnect_replays_and_is_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample archive holds a real op 7 (and the RESUME that followed it): replayed
    at its recorded point, discord.py RESUMEs on the session's resume URL, and the
    recorded incident gets its verdict like an injected fault."""
    scenario = sample_scenario()
    async with (
        replay(scenario, tmp_path) as server,
        running(server, monkeypatch, len(scenario.messages)) as probe,
    ):
        await probe.wait(probe.resumed)
        await probe.wait(probe.all_messages)
        await until_judged(server, 1)
    verdicts = {v.name: v for v in server.verdicts()}
    records = transcript(server)
    _, second = connections(records)
    assert second.url.startswith(server.gateway_url + "resume/1?")
    assert client_ops(records, 2) == [6]
    recorded = [v for name, v in verdicts.items() if name.startswith("recorded reconnect")]
    assert [(v.result, v.observed) for v in recorded] == [
        (Result.PASS, f"RESUME (session {scenario.session_ids[0]}, seq 4) on a new connection")
    ]  # after MESSAGE_REACTION_ADD (recorded s=7), 60 s into the recording; seq 4: the
    # recorded PRESENCE_UPDATE, TYPING_START and MESSAGE_REACTION_ADD are not of INTENTS
    assert verdicts["RESUMEs on resume_gateway_url"].result is Result.PASS
    assert seen(probe.messages) == scenario.messages  # none lost, none twice


async def test_two_runs_same_transcript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of one replay with discord.py: the transcripts are equal once what depends
    on time or on the port is dropped (``normalized``): the REST calls, every dispatch
    (bytes, s, t, frame type), IDENTIFY, RESUME, RESUMED and the closes."""
    scenario = rich_scenario()
    views = []
    for run in range(2):
        server, _ = await run_resume(scenario, tmp_path, monkeypatch, tag=f"-{run}")
        views.append(normalized(transcript(server), [server.gateway_url]))
    first, second = views
    assert sorted(first) == ["conn 1", "conn 2", "http"]
    assert [(r.method, r.path) for r in first["http"] if isinstance(r, HttpRecord)] == [
        ("GET", "/api/v10/users/@me"),
        ("GET", "/api/v10/oauth2/applications/@me"),
    ]
    for key in first:
        assert first[key] == second[key], key


async def test_wrong_token_fails_at_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ReplayOptions(token="other"): the REST face answers 401 as Discord does, so
    discord.py raises LoginFailure at login and never opens the gateway. (A wrong token
    that does reach the gateway gets 4004: tests/unit/replay/test_engine.py, and the
    close:4004 fault in test_faults_discordpy.py.)"""
    scenario = rich_scenario()
    options = ReplayOptions(speed=0, token="other")
    async with replay(scenario, tmp_path, options) as server:
        async with running(server, monkeypatch) as probe:
            assert probe.task is not None
            with pytest.raises(discord.LoginFailure):
                await asyncio.wait_for(asyncio.shield(probe.task), TIMEOUT)
            assert not probe.ready.is_set()
        assert server.connections_total == 0
    records = transcript(server)
    assert connections(records) == []
    [login] = [r for r in records if isinstance(r, HttpRecord)]
    assert (login.path, login.status) == ("/api/v10/users/@me", 401)


class NoWaitShardedClient(discord.AutoShardedClient):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """The documented hook: the default sleeps 5 s before each IDENTIFY but the first."""


@pytest.mark.parametrize("scenario_name", ["rich", "synth"])
async def test_auto_sharded_two_shards(
    scenario_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoShardedClient on a 2-shard archive: GET /gateway/bot says 2 shards; each shard
    IDENTIFYs with [id, 2], gets its own recorded stream with READY.shard echoed, and the
    caches hold the guilds of both."""
    scenario = make_scenario(scenario_name, tmp_path, num_shards=2)
    # No wait between IDENTIFYs is right for max_concurrency 2 (shards 0 and 1 in buckets
    # of their own); on 1 the second gets op 9 (test_starts_clients.py).
    options = ReplayOptions(speed=0, session_start_limit=SessionStartLimit(max_concurrency=2))
    async with (
        replay(scenario, tmp_path, options) as server,
        running(
            server, monkeypatch, len(scenario.messages), client_class=NoWaitShardedClient
        ) as probe,
    ):
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
        client = probe.client
        assert isinstance(client, discord.AutoShardedClient)
        assert client.shard_count == 2
        assert cached_guilds(client) == scenario.guilds
        by_shard: dict[int, list[Message]] = {0: [], 1: []}
        for message, item in zip(probe.messages, seen(probe.messages), strict=True):
            assert message.guild is not None
            by_shard[message.guild.shard_id].append(item)
        assert by_shard == scenario.messages_by_shard
    records = transcript(server)
    http = [r.path for r in records if isinstance(r, HttpRecord)]
    assert http == [
        "/api/v10/users/@me",
        "/api/v10/oauth2/applications/@me",
        "/api/v10/gateway/bot",
    ]
    shards = {}
    for conn in connections(records):
        (identify,) = [f for f in frames(records, conn.conn_id, Direction.CLIENT) if f.op == 2]
        shard = payload_json(identify)["d"]["shard"]
        shards[shard[0]] = conn.conn_id
        ready = next(f for f in frames(records, conn.conn_id, Direction.SERVER) if f.t == "READY")
        assert payload_json(ready)["d"]["shard"] == shard
        assert [t for _, t in dispatches(records, conn.conn_id)] == scenario.delivered(
            shard[0], INTENTS.value
        )
    assert sorted(shards) == [0, 1]
