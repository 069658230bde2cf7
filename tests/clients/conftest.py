"""Shared helpers for the real-client tests: archives, a running replay, transcripts.

Two archives:

* ``sample``: ``replayer/data/recordings/sample-small.jsonl`` (one guild, three messages, a RESUME in
  the recording). discord.py parses it; hikari does not (its GUILD_CREATE lacks fields
  Discord documents as always present, such as ``afk_channel_id``, and hikari reads them
  with ``payload[...]``).
* ``rich``: built here from Discord's documented payload shapes, complete enough for both
  libraries: 2 guilds, 3 text channels, 3 members, 4 messages; optionally split over
  2 shards by Discord's rule ``shard_id = (guild_id >> 22) % num_shards``. Its
  expectations are written down here, independently of the replayer.
* ``synth``: a ``replayer.synth`` session (3 guilds with members, roles, presences,
  typing, 12 messages); its expectations are read back from the archive's payloads.

Everything waits on events with :data:`TIMEOUT`; nothing sleeps to wait for something.
Every test also fails on a leak asyncio reports (a pending task destroyed, an unclosed
client session or connector, a coroutine never awaited): see :func:`no_leaks`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from replayer.archive.jsonl import Importer
from replayer.archive.reader import read_records
from replayer.archive.records import (
    CloseRecord,
    ConnectionRecord,
    FrameRecord,
    HttpRecord,
    Record,
)
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import sample_archive

TIMEOUT = 20 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))

# hikari reads the bot id from the token's first segment: base64("123456789012345678").
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.x.y"
BOT_ID = 123456789012345678
SAMPLE_JSONL = sample_archive("sample-small.jsonl")

COMPRESSIONS = ("zlib-stream", "zstd-stream")
HEARTBEAT_OPS = frozenset({1, 11})  # timing-dependent: excluded from transcript comparisons
URL_PLACEHOLDER = b"ws://replayer.test/"


# Messages asyncio logs (from __del__, so after a gc) when something was not shut down.
LEAK_MESSAGES = (
    "Task was destroyed but it is pending",
    "Unclosed client session",
    "Unclosed connector",
    "Unclosed response",
    "was never awaited",
)


@pytest.fixture(autouse=True)
def no_leaks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test after which asyncio reports a pending task destroyed or a session left
    open (these are logged, not raised, so ``filterwarnings = error`` cannot see them)."""
    yield
    gc.collect()
    logged = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    leaks = [r.getMessage() for r in logged if any(m in r.getMessage() for m in LEAK_MESSAGES)]
    assert not leaks, leaks


@pytest.fixture(autouse=True)
async def no_pending_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves tasks running in the event loop (the loop's teardown would
    cancel them silently). Tasks still finishing their shutdown get a moment to do so."""
    yield
    current = asyncio.current_task()
    pending = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
    if pending:
        await asyncio.wait(pending, timeout=TIMEOUT / 10)
    left = [t for t in pending if not t.done()]
    assert not left, left


# --- archives ---------------------------------------------------------------------------


Message = tuple[int, str, str]  # guild id, channel name, content
# Events > Gateway > List of Intents: the intent of each guild event these scenarios hold
# besides GUILD_CREATE and MESSAGE_CREATE (GUILDS and GUILD_MESSAGES, which the clients
# here always ask for).
GUILD_EVENT_INTENTS = {
    "PRESENCE_UPDATE": 1 << 8,
    "MESSAGE_REACTION_ADD": 1 << 10,
    "TYPING_START": 1 << 11,
}


@dataclass
class Scenario:
    """An archive and what a client must see when it is replayed."""

    name: str
    lines: list[dict[str, Any]]  # JSON Lines objects, or [] when ``path`` is set
    guilds: dict[int, tuple[str, list[str]]]  # id -> name, sorted text channel names
    messages_by_shard: dict[int, list[Message]]  # MESSAGE_CREATEs in stream order
    dispatches: dict[int, list[str]]  # shard -> event names, READY first
    session_ids: dict[int, str]  # shard -> recorded session id
    path: Path | None = None  # an archive already written

    def delivered(self, shard: int, intents: int) -> list[str]:
        """The recorded dispatches a client with ``intents`` is sent (the replay filters
        by intents as Discord does: Events > Gateway > List of Intents)."""
        return [e for e in self.dispatches[shard] if GUILD_EVENT_INTENTS.get(e, intents) & intents]

    @property
    def messages(self) -> list[Message]:
        """Every message; in stream order when there is one shard."""
        return [
            m for shard in sorted(self.messages_by_shard) for m in self.messages_by_shard[shard]
        ]

    def write(self, path: Path) -> Path:
        if self.path is not None:
            return self.path
        return write_archive(path, self.lines)


def write_archive(path: Path, lines: list[dict[str, Any]]) -> Path:
    """An archive from JSON Lines objects (``replayer import`` without the CLI)."""
    importer = Importer()
    with ArchiveWriter(path) as writer:
        for obj in lines:
            if obj.get("kind") != "header":
                writer.write(importer.record(obj))
    return path


SAMPLE_GUILD = 81384788765712384


def sample_scenario() -> Scenario:
    lines = [json.loads(line) for line in SAMPLE_JSONL.read_text().splitlines() if line.strip()]
    general = "general"
    return Scenario(
        name="sample",
        lines=lines,
        guilds={SAMPLE_GUILD: ("Sample Guild", [general])},
        messages_by_shard={
            0: [
                (SAMPLE_GUILD, general, "hello bot"),
                (SAMPLE_GUILD, general, "hello, owner!"),
                (SAMPLE_GUILD, general, "still there?"),
            ]
        },
        # The recording's stream: conn 1, then what conn 2 got after its RESUME.
        dispatches={
            0: [
                "READY",
                "GUILD_CREATE",
                "PRESENCE_UPDATE",
                "TYPING_START",
                "MESSAGE_CREATE",
                "MESSAGE_CREATE",
                "MESSAGE_REACTION_ADD",
                "MESSAGE_CREATE",
            ]
        },
        session_ids={0: "0f1e2d3c4b5a69788796a5b4c3d2e1f0"},
    )


def _user(uid: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(uid),
        "username": name,
        "discriminator": "0",
        "global_name": None if bot else name.title(),
        "avatar": None,
        "bot": bot,
        "system": False,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "public_flags": 0,
        "flags": 0,
    }


OWNER = _user(80351110224678912, "owner")
FRIEND = _user(80351110224678913, "friend")
BOT = _user(BOT_ID, "samplebot", bot=True)
JOINED = "2026-11-01T10:00:00.000000+00:00"


def _member(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": user,
        "nick": None,
        "avatar": None,
        "banner": None,
        "roles": [],
        "joined_at": JOINED,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def _text_channel(cid: int, guild_id: int, name: str, position: int) -> dict[str, Any]:
    return {
        "id": str(cid),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "topic": None,
        "nsfw": False,
        "last_message_id": None,
        "last_pin_timestamp": None,
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
    }


def _guild(gid: int, name: str, channels: list[str], channel_ids: list[int]) -> dict[str, Any]:
    """A GUILD_CREATE ``d``: the Guild object plus the gateway-only fields."""
    members = [_member(u) for u in (OWNER, FRIEND, BOT)]
    return {
        "id": str(gid),
        "name": name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": OWNER["id"],
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [
            {
                "id": str(gid),  # @everyone has the guild's id
                "name": "@everyone",
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": 0,
                "permissions": "2248473465835073",
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": str(channel_ids[0]),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "max_presences": None,
        "max_members": 500000,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": False,
        "safety_alerts_channel_id": None,
        "incidents_data": None,
        # GUILD_CREATE extras (Gateway Events > Guild Create)
        "joined_at": JOINED,
        "large": False,
        "unavailable": False,
        "member_count": len(members),
        "voice_states": [],
        "members": members,
        "channels": [
            _text_channel(cid, gid, cname, pos)
            for pos, (cid, cname) in enumerate(zip(channel_ids, channels, strict=True))
        ],
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "lazy": True,
    }


def _message(
    mid: int, guild_id: int, channel_id: int, author: dict[str, Any], content: str
) -> dict[str, Any]:
    member = {k: v for k, v in _member(author).items() if k != "user"}
    return {
        "id": str(mid),
        "type": 0,
        "channel_id": str(channel_id),
        "guild_id": str(guild_id),
        "author": author,
        "member": member,
        "content": content,
        "timestamp": "2026-11-01T10:05:00.000000+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": False,
        "flags": 0,
    }


# Guild ids chosen so that (id >> 22) % 2 puts Alpha on shard 0 and Beta on shard 1.
ALPHA_ID = 81384788765712384  # (id >> 22) % 2 == 0
BETA_ID = ALPHA_ID + (1 << 22)  # the next shard
assert (ALPHA_ID >> 22) % 2 == 0
assert (BETA_ID >> 22) % 2 == 1
ALPHA_CHANNELS = {"general": ALPHA_ID + 1, "random": ALPHA_ID + 2}
BETA_CHANNELS = {"lobby": BETA_ID + 1}
CHANNEL_IDS = {**ALPHA_CHANNELS, **BETA_CHANNELS}
# (guild, channel, author, content), in recorded order
RICH_MESSAGES = [
    (ALPHA_ID, "general", OWNER, "hello bot"),
    (BETA_ID, "lobby", FRIEND, "anyone in the lobby?"),
    (ALPHA_ID, "random", FRIEND, "random thought"),
    (BETA_ID, "lobby", OWNER, "last word"),
]


def rich_scenario(num_shards: int = 1) -> Scenario:
    """A realistic session: per shard HELLO, IDENTIFY, READY, its GUILD_CREATEs, heartbeats
    and MESSAGE_CREATEs, 200 ms apart."""
    guilds = {
        ALPHA_ID: ("Alpha Guild", ALPHA_CHANNELS),
        BETA_ID: ("Beta Guild", BETA_CHANNELS),
    }
    lines: list[dict[str, Any]] = [
        {"kind": "header", "metadata": {"description": "tests/clients rich session"}},
    ]
    scenario = Scenario(
        name=f"rich-{num_shards}",
        lines=lines,
        guilds={g: (name, sorted(chans)) for g, (name, chans) in guilds.items()},
        messages_by_shard={},
        dispatches={},
        session_ids={},
    )
    for shard in range(num_shards):
        conn = shard + 1
        t = 100 * shard

        def frame(
            direction: str, payload: dict[str, Any], dt: int, conn: int = conn, t: int = t
        ) -> dict[str, Any]:
            return {
                "kind": "frame",
                "conn": conn,
                "dir": direction,
                "t_ms": t + dt,
                "payload": payload,
            }

        mine = [g for g in guilds if (g >> 22) % num_shards == shard]
        session_id = f"rich-session-{shard}-of-{num_shards}"
        scenario.session_ids[shard] = session_id
        ready = {
            "v": 10,
            "user": {**BOT, "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g), "unavailable": True} for g in mine],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg",
            "shard": [shard, num_shards],
            "application": {"id": BOT["id"], "flags": 565248},
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["us-east"],
            "auth": {},
            "_trace": ['["gateway-prd-us-east1-b-abcd",{"micros":1200}]'],
        }
        lines.append(
            {
                "kind": "connection",
                "conn": conn,
                "t_ms": t,
                "url": "wss://gateway.discord.gg/?v=10&encoding=json&compress=zstd-stream",
            }
        )
        lines.append(frame("server", {"op": 10, "d": {"heartbeat_interval": 41250}}, 40))
        lines.append(frame("client", {"op": 1, "d": None}, 41))
        identify = {
            "token": TOKEN,
            "properties": {"os": "linux", "browser": "replayer-tests", "device": "replayer-tests"},
            "compress": False,
            "large_threshold": 250,
            "shard": [shard, num_shards],
            "intents": 33281,
        }
        lines.append(frame("client", {"op": 2, "d": identify}, 42))
        lines.append(frame("server", {"op": 11, "d": None}, 60))
        s = 1
        lines.append(frame("server", {"op": 0, "s": s, "t": "READY", "d": ready}, 80))
        events = ["READY"]
        dt = 100
        for g in mine:
            name, chans = guilds[g]
            s += 1
            lines.append(
                frame(
                    "server",
                    {
                        "op": 0,
                        "s": s,
                        "t": "GUILD_CREATE",
                        "d": _guild(g, name, list(chans), list(chans.values())),
                    },
                    dt,
                )
            )
            events.append("GUILD_CREATE")
            dt += 20
        contents: list[Message] = []
        for index, (g, channel, author, content) in enumerate(RICH_MESSAGES):
            if g not in mine:
                continue
            s += 1
            dt += 200
            mid = 1310000000000000001 + index
            lines.append(
                frame(
                    "server",
                    {
                        "op": 0,
                        "s": s,
                        "t": "MESSAGE_CREATE",
                        "d": _message(mid, g, CHANNEL_IDS[channel], author, content),
                    },
                    dt,
                )
            )
            events.append("MESSAGE_CREATE")
            contents.append((g, channel, content))
        scenario.dispatches[shard] = events
        scenario.messages_by_shard[shard] = contents
    lines[1:] = sorted(lines[1:], key=lambda o: o["t_ms"])
    return scenario


def make_scenario(name: str, directory: Path, num_shards: int = 1) -> Scenario:
    if name == "sample":
        assert num_shards == 1
        return sample_scenario()
    if name == "rich":
        return rich_scenario(num_shards)
    if name == "synth":
        return synth_scenario(directory, num_shards)
    raise ValueError(name)


def synth_scenario(directory: Path, num_shards: int = 1) -> Scenario:
    """A ``replayer.synth`` session (several guilds, channels, members, presences, typing);
    its expectations are read back from the archive's own payloads.

    No member-chunk requests: the clients here do not request members, and chunks the
    client never asks for are never sent (so the expectations would not match)."""
    from replayer.synth import SynthOptions, write_synth

    path = directory / f"synth-{num_shards}.rpl"
    if not path.exists():
        options = SynthOptions(
            guilds=3, shards=num_shards, member_chunk_requests=0, messages=12, seed=7
        )
        write_synth(path, options)
    return scenario_from_archive(f"synth-{num_shards}", path)


def scenario_from_archive(name: str, path: Path) -> Scenario:
    """Expectations of an archive without RESUMEs: per connection its IDENTIFY's shard,
    READY's session id, the dispatches in order; guilds and messages from the payloads."""
    records = read_records(path)[1]
    shard_of: dict[int, int] = {}
    scenario = Scenario(name, [], {}, {}, {}, {}, path=path)
    channel_names: dict[int, str] = {}
    for r in records:
        if not isinstance(r, FrameRecord):
            continue
        obj = json.loads(r.payload)
        if r.direction == Direction.CLIENT:
            assert r.op != 6, "scenario_from_archive reads archives without RESUME"
            if r.op == 2:
                shard_of[r.conn_id] = (obj["d"].get("shard") or [0, 1])[0]
            continue
        if r.op != 0 or r.conn_id not in shard_of:
            continue
        shard = shard_of[r.conn_id]
        scenario.dispatches.setdefault(shard, []).append(obj["t"])
        d = obj["d"]
        if obj["t"] == "READY":
            scenario.session_ids[shard] = d["session_id"]
            scenario.messages_by_shard[shard] = []
        elif obj["t"] == "GUILD_CREATE":
            texts = [c for c in d["channels"] if c["type"] == 0]
            channel_names.update((int(c["id"]), c["name"]) for c in texts)
            scenario.guilds[int(d["id"])] = (d["name"], sorted(c["name"] for c in texts))
        elif obj["t"] == "MESSAGE_CREATE":
            message = (int(d["guild_id"]), channel_names[int(d["channel_id"])], d["content"])
            scenario.messages_by_shard[shard].append(message)
    return scenario


# --- a running replay ---------------------------------------------------------------------


@asynccontextmanager
async def replay(
    scenario: Scenario, directory: Path, options: ReplayOptions | None = None, tag: str = ""
) -> AsyncIterator[ReplayServer]:
    """A :class:`ReplayServer` on 127.0.0.1, port 0, writing ``transcript{tag}.rpl``."""
    archive = scenario.write(directory / f"archive{tag}.rpl")
    server = ReplayServer(
        load_script(archive),
        options or ReplayOptions(speed=0),
        transcript=directory / f"transcript{tag}.rpl",
    )
    async with server:
        yield server


def transcript(server: ReplayServer) -> list[Record]:
    """The records of a stopped server's transcript."""
    assert server.transcript_path is not None
    return read_records(server.transcript_path)[1]


# --- reading transcripts --------------------------------------------------------------------


def payload_json(record: FrameRecord) -> Any:
    return json.loads(record.payload)


def connections(records: list[Record]) -> list[ConnectionRecord]:
    return [r for r in records if isinstance(r, ConnectionRecord)]


def frames(
    records: list[Record], conn_id: int, direction: Direction | None = None
) -> list[FrameRecord]:
    return [
        r
        for r in records
        if isinstance(r, FrameRecord)
        and r.conn_id == conn_id
        and (direction is None or r.direction == direction)
    ]


def dispatches(records: list[Record], conn_id: int) -> list[tuple[int | None, str | None]]:
    """``(s, t)`` of every dispatch the server sent on one connection."""
    return [(r.s, r.t) for r in frames(records, conn_id, Direction.SERVER) if r.op == 0]


def client_ops(records: list[Record], conn_id: int) -> list[int | None]:
    """Opcodes the client sent on one connection, heartbeats left out."""
    return [r.op for r in frames(records, conn_id, Direction.CLIENT) if r.op not in HEARTBEAT_OPS]


def closes(records: list[Record], conn_id: int) -> list[CloseRecord]:
    return [r for r in records if isinstance(r, CloseRecord) and r.conn_id == conn_id]


def normalized(records: list[Record], urls: list[str]) -> dict[str, list[Record]]:
    """What must be equal between two runs of one replay with one client, per connection.

    Dropped or zeroed, because they depend on timing or on the port: ``t_ns``; heartbeats
    and their ACKs (op 1 and 11: sent by a timer, their number and place vary); frame
    sizes (a compressed frame's size depends on what the shared context compressed before
    it, ACKs included); request headers (Host has the port, Sec-WebSocket-Key is random);
    the connection URL (the port; its query stays); the server's own URL inside payloads
    (READY's resume_gateway_url, /gateway/bot's url). Records are grouped by connection
    (and HTTP apart): how two connections interleave depends on the scheduler.
    """

    def scrub(data: bytes) -> bytes:
        for url in urls:
            data = data.replace(url.rstrip("/").encode(), URL_PLACEHOLDER.rstrip(b"/"))
        return data

    out: dict[str, list[Record]] = {}
    for r in records:
        match r:
            case HttpRecord():
                out.setdefault("http", []).append(
                    dataclasses.replace(
                        r,
                        t_ns=0,
                        host="",
                        request_headers=(),
                        response_body=scrub(r.response_body),
                    )
                )
            case ConnectionRecord():
                out.setdefault(f"conn {r.conn_id}", []).append(
                    dataclasses.replace(r, t_ns=0, url="", headers=())
                )
            case FrameRecord() if r.op not in HEARTBEAT_OPS:
                out.setdefault(f"conn {r.conn_id}", []).append(
                    dataclasses.replace(r, t_ns=0, wire_size=0, payload=scrub(r.payload))
                )
            case CloseRecord():
                out.setdefault(f"conn {r.conn_id}", []).append(dataclasses.replace(r, t_ns=0))
            case _:
                pass
    return out


# --- faults (tests/clients/test_faults_*.py) -------------------------------------------------

# The whole-run checks the judge may add after the fault verdicts (verdicts.py).
STANDING_RULES = frozenset(
    {
        "heartbeats on schedule",
        "payload rate",
        "RESUMEs on resume_gateway_url",
        "RESUMEs keep the query",
        "new sessions on the gateway URL",
        "session starts",  # replay/starts.py: given once an IDENTIFY came
        "identify concurrency",  # ... once two did
    }
)

FAULT_HEARTBEAT_MS = 1000  # a short interval: a zombie is noticed within seconds


def fault_scenario(directory: Path) -> Scenario:
    """A small ``replayer.synth`` session (2 guilds, 4 messages) with a 1 s heartbeat
    interval, which both libraries parse; no member-chunk requests (see synth_scenario)."""
    from replayer.synth import SynthOptions, write_synth

    path = directory / "synth-faults.rpl"
    if not path.exists():
        options = SynthOptions(
            guilds=2,
            members_per_guild=5,
            member_chunk_requests=0,
            messages=4,
            presence_updates=2,
            typing=1,
            seed=11,
            heartbeat_interval_ms=FAULT_HEARTBEAT_MS,
        )
        write_synth(path, options)
    return scenario_from_archive("synth-faults", path)


@asynccontextmanager
async def faulty_replay(
    scenario: Scenario,
    directory: Path,
    faults: tuple[str, ...],
    window_ms: int,
    tag: str = "",
) -> AsyncIterator[ReplayServer]:
    """:func:`replay` at speed 0 with a fault plan (short syntax) and a verdict window."""
    from replayer.replay.faults import FaultPlan, parse_fault

    archive = scenario.write(directory / f"archive{tag}.rpl")
    server = ReplayServer(
        load_script(archive),
        # Identify concurrency off for the fault reactions: after op 9 or 4009 hikari
        # re-IDENTIFYs after a random 1.85^n s back-off, sometimes inside Discord's 5 s
        # identify window (then it gets op 9 again and backs off further), which would
        # make these transcripts differ run to run. test_starts_clients.py has the rule.
        ReplayOptions(speed=0, verdict_window_ms=window_ms, identify_concurrency=False),
        plan=FaultPlan(tuple(parse_fault(f) for f in faults)),
        transcript=directory / f"transcript{tag}.rpl",
    )
    async with server:
        yield server


async def until(condition: Callable[[], bool], what: str = "the condition") -> None:
    """Poll ``condition`` every 10 ms until it holds; fail after TIMEOUT."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {TIMEOUT} s waiting for {what}") from None


async def until_judged(server: ReplayServer, count: int) -> None:
    """Wait until the judge has decided the first ``count`` verdicts (a reaction seen, or
    its window over). The judge notices a passed deadline only on its next event, so it
    is ticked here with the server's clock before each look."""
    assert server.replay is not None
    judge = server.replay.judge

    def decided() -> bool:
        judge.tick(server._now())
        verdicts = judge.verdicts
        return len(verdicts) >= count and all(v.passed is not None for v in verdicts[:count])

    await until(decided, f"{count} verdicts")


def injected(records: list[Record]) -> list[tuple[int, int | None, Any]]:
    """(connection, op, d) of every frame the transcript marks as injected (a fault)."""
    from replayer.archive.records import FrameFlag

    return [
        (r.conn_id, r.op, json.loads(r.payload)["d"])
        for r in records
        if isinstance(r, FrameRecord) and r.flags & FrameFlag.INJECTED
    ]


@pytest.fixture
async def no_lost_task_errors(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail a test after which asyncio logged a task's exception that nobody retrieved
    (e.g. a client's event task failing because the test closed the client too soon).
    Tasks still running get a moment to end first, as in :func:`no_pending_tasks`.
    ("Future exception was never retrieved" is not checked: hikari 2.7 leaves one behind,
    inside its shard, after a server close it reconnects from, such as 4000 or 4009.)"""
    yield
    current = asyncio.current_task()
    pending = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
    if pending:
        await asyncio.wait(pending, timeout=TIMEOUT / 10)
    del pending
    gc.collect()
    logged = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    lost = [r.getMessage() for r in logged if "Task exception was never" in r.getMessage()]
    assert not lost, lost
