"""discord.py and hikari through the recording proxy, with real parts on loopback.

mitmproxy runs in-process (:class:`RecordingProxy`, reverse mode) in front of a local
upstream gateway: a :class:`ReplayServer` over a ``replayer.synth`` session that writes a
transcript of exactly what it sent and received. The clients are pointed at the proxy the
way a user would (``Route.BASE`` and ``DEFAULT_GATEWAY`` for discord.py, ``rest_url`` for
hikari), with zlib-stream and with zstd-stream. The transcript is the oracle: the archive
must hold the same frames, both ways, in order; the clients' own parsers, caches,
decompressors and reconnect logic judge what the proxy forwarded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import discord.gateway
import discord.http
import discord.utils
import hikari
import hikari.impl.shard
import pytest
import yarl
from hikari.api.shard import GatewayCompression
from typer.testing import CliRunner

from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    HttpRecord,
    Record,
)
from replayer.cli import app
from replayer.gateway.codec import FrameEncoder
from replayer.gateway.compression import Compression, make_decompressor
from replayer.gateway.encoding import Encoding
from replayer.gateway.opcodes import Direction
from replayer.record.proxy import RecordingProxy, RecordSettings
from replayer.record.recorder import RESUME_PATH
from replayer.replay.engine import ReplayOptions
from replayer.replay.server import ReplayServer
from tests.clients.conftest import (
    BOT_ID,
    COMPRESSIONS,
    TIMEOUT,
    Message,
    Scenario,
    replay,
    synth_scenario,
    transcript,
)
from tests.clients.test_discordpy_replay import (
    GUILD_READY_TIMEOUT,
    NoWaitShardedClient,
    cached_guilds,
    discord_zlib_context,
)
from tests.clients.test_discordpy_replay import INTENTS as DISCORD_INTENTS
from tests.clients.test_discordpy_replay import Probe as DiscordProbe
from tests.clients.test_discordpy_replay import seen as discord_seen
from tests.clients.test_hikari_replay import INTENTS as HIKARI_INTENTS
from tests.clients.test_hikari_replay import Probe as HikariProbe
from tests.clients.test_hikari_replay import seen as hikari_seen
from tests.integration.record.test_recorder_proxy import ADDON, start_mitmdump

# A distinctive token (hikari reads the bot id from its first segment): after the run, no
# byte of the archive may hold it, nor its secret part alone.
SECRET = "rec0rd-cl1ents-n0t-in-the-archive-7f3a9c"
TOKEN = f"MTIzNDU2Nzg5MDEyMzQ1Njc4.Zx9Qw2.{SECRET}"

# discord.py: a plain Client (no shard in IDENTIFY, never asks for /gateway/bot) and an
# AutoShardedClient (GET /gateway/bot, whose url the proxy rewrites; IDENTIFY shard [0, 1]).
LIBRARIES = ("discord.py", "discord.py-sharded", "hikari")
HIKARI_COMPRESSION = {
    "zlib-stream": GatewayCompression.TRANSPORT_ZLIB_STREAM,
    "zstd-stream": GatewayCompression.TRANSPORT_ZSTD_STREAM,
}


def force_compression(library: str, compression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the client ask for ``compression`` (see the replay tests' fixtures: both pick
    zstd-stream here because a zstd module imports)."""
    if library == "hikari":
        init: Any = hikari.impl.shard.GatewayShardImpl.__init__
        monkeypatch.setitem(init.__kwdefaults__, "compression", HIKARI_COMPRESSION[compression])
        return
    if compression == "zlib-stream":
        monkeypatch.setattr(discord.utils, "_ActiveDecompressionContext", discord_zlib_context())
    assert compression == discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE


# --- the rig: upstream gateway, proxy in front ---------------------------------------------


@dataclass
class Rig:
    scenario: Scenario
    upstream: ReplayServer
    proxy: RecordingProxy
    archive: Path
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the proxy saw a close

    async def settled(self) -> None:
        """Wait until every gateway connection has ended at the upstream and in the proxy
        (its close recorded): then nothing is in flight, both records are complete."""
        recorder = self.proxy.recorder
        assert recorder is not None

        def busy() -> bool:
            return self.upstream.connections_open > 0 or any(
                s.closed is None for s in recorder.stats.values()
            )

        async with asyncio.timeout(TIMEOUT):
            while busy():
                self.upstream.changed.clear()
                self.ended.clear()
                waiters = {
                    asyncio.ensure_future(self.upstream.changed.wait()),
                    asyncio.ensure_future(self.ended.wait()),
                }
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                    await asyncio.wait(waiters)


@asynccontextmanager
async def recording(tmp_path: Path, close_at_end: int | None) -> AsyncIterator[Rig]:
    """The synth session served by an upstream ReplayServer (``transcript.rpl``), a
    RecordingProxy in front of it writing ``rec.rpl``. Both stopped on the way out."""
    scenario = synth_scenario(tmp_path)
    options = ReplayOptions(speed=0, close_at_end=close_at_end)
    archive = tmp_path / "rec.rpl"
    async with replay(scenario, tmp_path, options) as upstream:
        settings = RecordSettings(
            archive, upstream=f"http://127.0.0.1:{upstream.port}", confdir=tmp_path / "mitm"
        )
        async with RecordingProxy(settings) as proxy:
            rig = Rig(scenario, upstream, proxy, archive)
            recorder = proxy.recorder
            assert recorder is not None
            close = recorder.close

            def close_and_tell(
                key: object, code: int | None, reason: str, closed_by_client: bool | None
            ) -> None:
                close(key, code, reason, closed_by_client)
                rig.ended.set()

            recorder.close = close_and_tell  # type: ignore[method-assign]
            yield rig


# --- the clients ----------------------------------------------------------------------------


@dataclass
class Seen:
    """What a client saw, read from its own caches and events."""

    user_id: int
    guilds: dict[int, tuple[str, list[str]]]
    messages: list[Message]
    resume_url: str  # READY's resume_gateway_url, as the client got it
    resumed: bool


async def run_discordpy(
    rig: Rig, library: str, monkeypatch: pytest.MonkeyPatch, *, resume: bool
) -> Seen:
    """discord.py configured for the proxy; READY, caches and messages (then close 4000
    from the upstream and RESUME through the proxy, with ``resume``); then close()."""
    monkeypatch.setattr(discord.http.Route, "BASE", rig.proxy.rest_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(rig.proxy.gateway_url)
    )
    cls = NoWaitShardedClient if library == "discord.py-sharded" else discord.Client
    client = cls(intents=DISCORD_INTENTS, guild_ready_timeout=GUILD_READY_TIMEOUT)
    probe = DiscordProbe(client)
    probe.expected_messages = len(rig.scenario.messages)
    probe.task = asyncio.create_task(client.start(TOKEN))
    try:
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
        if resume:
            await probe.wait(probe.resumed)
        assert client.user is not None
        ws = client.ws
        if isinstance(client, discord.AutoShardedClient):
            shard = client.get_shard(0)
            assert shard is not None
            ws = shard._parent.ws  # the shard's socket (client.ws is the first's too)
        assert ws is not None
        return Seen(
            client.user.id,
            cached_guilds(client),
            discord_seen(probe.messages),
            str(ws.gateway),
            probe.resumed.is_set(),
        )
    finally:
        await client.close()
        await asyncio.wait({probe.task}, timeout=TIMEOUT)
        assert probe.task.done(), "discord.py did not stop after close()"
        if not probe.task.cancelled():
            assert probe.task.exception() is None


async def run_hikari(rig: Rig, *, resume: bool) -> Seen:
    """hikari configured for the proxy (``rest_url``: it asks /gateway/bot for the
    gateway); started, its guilds and messages (RESUMED with ``resume``); closed."""

    async def wait(event: asyncio.Event) -> None:
        await asyncio.wait_for(event.wait(), TIMEOUT)

    bot = hikari.GatewayBot(
        TOKEN, rest_url=rig.proxy.rest_base, banner=None, intents=HIKARI_INTENTS
    )
    probe = HikariProbe(bot, rig.scenario)
    # hikari 2.7 leaks the new connection's heartbeat and poll tasks when close() comes
    # between RESUMED and the end of its _connect() (the keep-alive's `finally` still
    # holds the previous connection's tasks); ShardConnectedEvent comes after that.
    connected = asyncio.Event()
    connections_wanted = 2 if resume else 1
    count = 0

    async def on_connected(_: hikari.ShardConnectedEvent) -> None:
        nonlocal count
        count += 1
        if count >= connections_wanted:
            connected.set()

    bot.subscribe(hikari.ShardConnectedEvent, on_connected)
    try:
        await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
        await wait(probe.started)
        await wait(probe.all_guilds)
        await wait(probe.all_messages)
        if resume:
            await wait(probe.resumed)
        await wait(connected)
        (ready,) = probe.ready
        return Seen(
            int(ready.my_user.id),
            dict(probe.guilds),
            hikari_seen(probe.messages),  # before close(), which empties the cache
            ready.resume_gateway_url,
            probe.resumed.is_set(),
        )
    finally:
        if bot.is_alive:
            await asyncio.wait_for(bot.close(), TIMEOUT)


async def run_client(
    rig: Rig, library: str, monkeypatch: pytest.MonkeyPatch, *, resume: bool
) -> Seen:
    if library == "hikari":
        return await run_hikari(rig, resume=resume)
    return await run_discordpy(rig, library, monkeypatch, resume=resume)


# --- reading archives -------------------------------------------------------------------


def by_connection(records: Sequence[Record], direction: Direction) -> dict[int, list[bytes]]:
    """Frame payloads per connection, in order."""
    out: dict[int, list[bytes]] = {}
    for r in records:
        if isinstance(r, FrameRecord) and r.direction == direction:
            out.setdefault(r.conn_id, []).append(r.payload)
    return out


def assert_verifies(path: Path) -> None:
    """``replayer verify`` (the CLI, in-process) accepts the archive."""
    result = CliRunner().invoke(app, ["verify", str(path)])
    assert result.exit_code == 0, (result.output, result.exception)


def assert_no_token(path: Path) -> None:
    data = path.read_bytes()
    assert TOKEN.encode() not in data
    assert SECRET.encode() not in data


def assert_client_saw_the_session(seen: Seen, scenario: Scenario) -> None:
    assert seen.user_id == BOT_ID
    assert seen.guilds == scenario.guilds
    assert seen.messages == scenario.messages  # in order, none twice (even after RESUME)


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("library", LIBRARIES)
async def test_record_session_and_resume(
    library: str,
    compression: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client gets READY, every guild and message through the proxy; the upstream's
    close 4000 after the stream makes it RESUME on the proxy's rewritten resume URL, and
    it gets RESUMED. The archive then holds exactly the frames of the upstream's
    transcript, both ways, per connection and in order (the original READY, flagged
    REWRITTEN); connection 2 is linked to 1; the shard IDENTIFY names is recorded; the
    REST calls the client made are there; the token is nowhere; ``replayer verify`` passes."""
    force_compression(library, compression, monkeypatch)
    async with recording(tmp_path, close_at_end=4000) as rig:
        seen = await run_client(rig, library, monkeypatch, resume=True)
        await rig.settled()
        proxy_base = rig.proxy.gateway_url.rstrip("/")
        assert rig.upstream.connections_total == 2
        assert rig.proxy.addon.errors == 0
        port = rig.proxy.port
    with pytest.raises(ConnectionRefusedError):  # a stopped proxy frees its port
        await asyncio.open_connection("127.0.0.1", port)
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors  # nothing went wrong quietly (mitmproxy logs what its tasks raise)
    assert_client_saw_the_session(seen, rig.scenario)
    assert seen.resumed
    # The client was sent to the proxy's resume route, not to the upstream's URL.
    assert seen.resume_url.startswith(proxy_base + RESUME_PATH)

    archive = read_records(rig.archive)[1]
    assert rig.upstream.transcript_path is not None
    upstream = read_records(rig.upstream.transcript_path)[1]
    # Exactly what the upstream sent, and what the client sent, in order.
    server = by_connection(archive, Direction.SERVER)
    assert server == by_connection(upstream, Direction.SERVER)
    assert by_connection(archive, Direction.CLIENT) == by_connection(upstream, Direction.CLIENT)
    assert sorted(server) == [1, 2]
    frames = [r for r in archive if isinstance(r, FrameRecord)]
    assert not [f for f in frames if f.flags & FrameFlag.UNDECODED]
    # Sanity of the oracle: a compressed session, a RESUME answered by RESUMED.
    connections = [r for r in upstream if isinstance(r, ConnectionRecord)]
    assert [c.query.compress for c in connections] == [compression, compression]
    assert [f.op for f in frames if f.conn_id == 2 and f.op not in (1, 11)] == [10, 6, 0]
    assert [f.t for f in frames if f.conn_id == 2 and f.op == 0] == ["RESUMED"]

    # The archive keeps READY as the upstream sent it, flagged as rewritten for the client.
    (ready,) = [f for f in frames if f.t == "READY"]
    assert ready.flags & FrameFlag.REWRITTEN
    assert (
        json.loads(ready.payload)["d"]["resume_gateway_url"]
        == rig.upstream.gateway_url + "resume/1"
    )
    infos = [r for r in archive if isinstance(r, ConnectionInfoRecord)]
    assert [(r.conn_id, r.resumes) for r in infos if r.resumes is not None] == [(2, 1)]
    session_id = rig.scenario.session_ids[0]
    assert [(r.conn_id, r.session_id) for r in infos if r.resumes is None and r.session_id] == [
        (1, session_id)
    ]
    # The shard the client's IDENTIFY names (a plain discord.py Client names none).
    identify = json.loads(next(f.payload for f in frames if f.op == 2))
    assert identify["d"]["token"] == "[REDACTED]"
    shards = [(r.conn_id, r.shard) for r in infos if r.shard is not None]
    if library == "discord.py":
        assert "shard" not in identify["d"]
        assert shards == []
    else:
        assert identify["d"]["shard"] == [0, 1]
        assert shards == [(1, (0, 1))]

    # The client's REST calls, as the upstream answered them (before any rewrite).
    def rest(records: list[Record]) -> list[tuple[str, str, int, bytes]]:
        return [
            (r.method, r.path, r.status, r.response_body)
            for r in records
            if isinstance(r, HttpRecord)
        ]

    assert rest(archive) == rest(upstream)
    expected_paths = {
        "discord.py": ["/api/v10/users/@me", "/api/v10/oauth2/applications/@me"],
        "discord.py-sharded": [
            "/api/v10/users/@me",
            "/api/v10/oauth2/applications/@me",
            "/api/v10/gateway/bot",
        ],
        "hikari": ["/api/v10/gateway/bot"],
    }[library]
    assert [path for _, path, _, _ in rest(archive)] == expected_paths

    assert_no_token(rig.archive)
    assert_verifies(rig.archive)


def inflate_raw(frames: list[FrameRecord], compression: str) -> list[bytes]:
    """The gateway messages in raw (undecoded) server frames: the wire bytes, inflated."""
    inflate = make_decompressor(Compression(compression))
    return [message for f in frames for message in inflate.feed(f.payload)]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("library", ["discord.py", "hikari"])
async def test_client_keeps_its_traffic_when_the_recorder_fails(
    library: str, compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every server message makes the recorder raise: the addon logs it, stores the
    message raw, and forwards the upstream's own bytes. The first failure came before the
    proxy sent any stream of its own, so the connection turned to pass-through for good:
    the client's stream is the upstream's, whole: READY, every guild and message arrive. The
    raw frames are the wire bytes: inflated, they are the transcript's server frames.
    READY could not be rewritten: its resume URL is the upstream's own (a RESUME would
    bypass the proxy), hence no close at the end here."""
    force_compression(library, compression, monkeypatch)
    async with recording(tmp_path, close_at_end=None) as rig:
        recorder = rig.proxy.recorder
        assert recorder is not None

        def explode(key: object, content: bytes, is_text: bool) -> bytes | None:
            raise RuntimeError("recorder bug")

        monkeypatch.setattr(recorder, "server_message", explode)
        seen = await run_client(rig, library, monkeypatch, resume=False)
        await rig.settled()
        errors = rig.proxy.addon.errors
    assert_client_saw_the_session(seen, rig.scenario)
    assert seen.resume_url == rig.upstream.gateway_url + "resume/1"

    archive = read_records(rig.archive)[1]
    assert rig.upstream.transcript_path is not None
    upstream = read_records(rig.upstream.transcript_path)[1]
    raw = [r for r in archive if isinstance(r, FrameRecord) and r.direction == Direction.SERVER]
    assert errors == len(raw) > 0  # one error per server message, each kept
    assert all(f.flags & FrameFlag.UNDECODED and "recorder bug" in (f.error or "") for f in raw)
    assert inflate_raw(raw, compression) == by_connection(upstream, Direction.SERVER)[1]
    # The client's side is recorded as usual.
    assert by_connection(archive, Direction.CLIENT) == by_connection(upstream, Direction.CLIENT)
    assert_no_token(rig.archive)
    assert_verifies(rig.archive)


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("library", ["discord.py", "hikari"])
async def test_client_keeps_its_stream_when_the_recorder_fails_once(
    library: str, compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One server message, well after READY, makes the recorder raise. The proxy has been
    re-compressing the stream (READY was rewritten): the upstream's bytes of that message
    would break the client's decompressor (discord.py stopped with a JSONDecodeError,
    hikari hung, before the fix), so the addon's fallback puts it into the proxy's stream.
    The client gets everything and RESUMEs through the proxy; the archive holds that one
    message raw (the upstream's compressed bytes), every other frame as the upstream sent
    it, and the rest of the session (connection 2 linked to 1) as usual."""
    fail_at = 8  # HELLO, READY and the GUILD_CREATEs come first
    force_compression(library, compression, monkeypatch)
    async with recording(tmp_path, close_at_end=4000) as rig:
        recorder = rig.proxy.recorder
        assert recorder is not None
        server_message = recorder.server_message
        calls = 0

        def fail_once(key: object, content: bytes, is_text: bool) -> bytes | None:
            nonlocal calls
            calls += 1
            if calls == fail_at:
                raise RuntimeError("recorder bug")
            return server_message(key, content, is_text)

        monkeypatch.setattr(recorder, "server_message", fail_once)
        seen = await run_client(rig, library, monkeypatch, resume=True)
        await rig.settled()
        errors = rig.proxy.addon.errors
        proxy_base = rig.proxy.gateway_url.rstrip("/")
    assert errors == 1
    assert_client_saw_the_session(seen, rig.scenario)
    assert seen.resumed
    assert seen.resume_url.startswith(proxy_base + RESUME_PATH)

    archive = read_records(rig.archive)[1]
    assert rig.upstream.transcript_path is not None
    upstream = read_records(rig.upstream.transcript_path)[1]
    server = [r for r in archive if isinstance(r, FrameRecord) and r.direction == Direction.SERVER]
    (raw,) = [f for f in server if f.flags & FrameFlag.UNDECODED]
    assert server.index(raw) == fail_at - 1
    assert raw.conn_id == 1
    assert "recorder bug" in (raw.error or "")
    expected = by_connection(upstream, Direction.SERVER)
    # The raw bytes are the upstream's own: its encoder, fed the same messages, made them.
    upstream_encoder = FrameEncoder(Encoding.JSON, Compression(compression))
    wire = [upstream_encoder.encode_raw(p)[0] for p in expected[1][:fail_at]]
    assert raw.payload == wire[-1]
    del expected[1][fail_at - 1]
    kept = [f for f in server if f is not raw]
    assert by_connection(kept, Direction.SERVER) == expected
    assert by_connection(archive, Direction.CLIENT) == by_connection(upstream, Direction.CLIENT)
    infos = [r for r in archive if isinstance(r, ConnectionInfoRecord)]
    assert [(r.conn_id, r.resumes) for r in infos if r.resumes is not None] == [(2, 1)]
    assert_no_token(rig.archive)
    assert_verifies(rig.archive)


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_a_failed_record_costs_the_client_nothing(
    compression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing the record of the first MESSAGE_CREATE raises (inside ``server_message``,
    after the decoder took the frame): discord.py still gets every message and RESUMEs;
    the archive keeps that payload raw (flagged undecoded, with the error), byte for byte
    what the upstream sent."""
    force_compression("discord.py", compression, monkeypatch)
    async with recording(tmp_path, close_at_end=4000) as rig:
        recorder = rig.proxy.recorder
        assert recorder is not None
        frame = recorder._frame
        failed = False

        def fail_once(conn: Any, direction: Direction, message: Any, *args: Any) -> None:
            nonlocal failed
            payload = message.payload
            if not failed and payload is not None and payload.t == "MESSAGE_CREATE":
                failed = True
                raise RuntimeError("cannot record")
            frame(conn, direction, message, *args)

        monkeypatch.setattr(recorder, "_frame", fail_once)
        seen = await run_client(rig, "discord.py", monkeypatch, resume=True)
        await rig.settled()
        errors = rig.proxy.addon.errors
    assert errors == 1
    assert_client_saw_the_session(seen, rig.scenario)
    assert seen.resumed

    archive = read_records(rig.archive)[1]
    assert rig.upstream.transcript_path is not None
    upstream = read_records(rig.upstream.transcript_path)[1]
    assert by_connection(archive, Direction.SERVER) == by_connection(upstream, Direction.SERVER)
    (raw,) = [r for r in archive if isinstance(r, FrameRecord) and r.flags & FrameFlag.UNDECODED]
    assert json.loads(raw.payload)["t"] == "MESSAGE_CREATE"
    assert "cannot record" in (raw.error or "")
    assert_no_token(rig.archive)
    assert_verifies(rig.archive)


async def test_mitmdump_addon_records_discordpy_through_its_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mitmdump -s addons/gateway_recorder.py` (its recorder worker on, the default) in
    reverse mode in front of the upstream, a real discord.py bot through it (zlib-stream):
    the bot sees the whole session, and once mitmdump has stopped the archive holds
    exactly the upstream's frames, both ways, without the token, and verifies."""
    scenario = synth_scenario(tmp_path)
    archive = tmp_path / "dump.rpl"
    log: list[str] = []
    async with replay(scenario, tmp_path, ReplayOptions(speed=0)) as upstream:
        proc, port = await start_mitmdump(
            tmp_path, upstream, "-s", str(ADDON), "--set", f"gateway_record={archive}",
            "--set", f"gateway_upstream=ws://127.0.0.1:{upstream.port}", log=log,
        )  # fmt: skip
        try:
            assert any("worker pid" in line for line in log)
            endpoints = SimpleNamespace(
                rest_base=f"http://127.0.0.1:{port}/api/v10", gateway_url=f"ws://127.0.0.1:{port}/"
            )
            rig = Rig(scenario, upstream, endpoints, archive)  # type: ignore[arg-type]
            seen = await run_client(rig, "discord.py", monkeypatch, resume=False)
        finally:
            proc.send_signal(signal.SIGINT)  # mitmdump waits for its worker to finish
            output, _ = await asyncio.to_thread(proc.communicate, timeout=TIMEOUT)
    assert proc.returncode == 0, output
    assert "gateway recorder" not in output  # no recorder error of either process
    assert_client_saw_the_session(seen, scenario)
    records = read_records(archive)[1]
    upstream_records = transcript(upstream)
    for direction in (Direction.SERVER, Direction.CLIENT):
        assert by_connection(records, direction) == by_connection(upstream_records, direction)
    assert_no_token(archive)
    assert_verifies(archive)
