"""Throughput and peak-memory benchmark of the archive writer and reader.

Compares ``ArchiveWriter`` / ``ArchiveReader`` with bare msgpack doing the same work on
the same data in the same run, and checks them against the project's targets:

* write: ours >= 0.5 x bare in records/s (bare = ``to_row`` + ``Packer.pack`` + a
  buffered file, ours = ``ArchiveWriter.write``; the same rows end up in both files);
* read: ours >= 0.5 x bare in MB/s of file (bare = ``msgpack.Unpacker`` iterating the
  archive's objects, ours = ``ArchiveReader`` iterating validated records);
* memory: the reader's peak RSS growth < 2 x largest record + 32 MiB.

The data is a synthetic gateway session (a few thousand frames sized like a real bot's
traffic) kept in memory once and cycled, with fresh ``conn_id``/``t_ns``/``s``, until the
requested amount of payload has been streamed. The writers under test run in lockstep,
taking turns every template cycle, and so do the readers (every 4096 records): see
``write_lockstep``. Memory is measured in child processes (this script re-invoked with
``--phase``), one phase each, see ``_measure_phase``.

Usage::

    .venv/bin/python bench/archive_bench.py                  # 1024 MiB of payload
    .venv/bin/python bench/archive_bench.py --size-mb 50     # quick
    .venv/bin/python bench/archive_bench.py --check --json out.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import msgpack

from replayer.archive.header import Header
from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord, FrameType, to_row
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction

MiB = 1 << 20
WRITE_TARGET = 0.5  # ours / bare, records/s
READ_TARGET = 0.5  # ours / bare, MB/s of file
MEM_SLACK = 32 * MiB  # reader growth bound: 2 x largest record + this
TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.bench-token-0123456789abcdefghijklmnopqrstuv"
SESSION_START_NS = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z
HEARTBEAT_INTERVAL_S = 41.25
DISPATCH_RATE_PER_S = 0.6  # a quiet bot: ~25 dispatches per heartbeat pair

# --- synthetic gateway session -----------------------------------------------------------


class _Gen:
    """Deterministic builders of Discord-shaped JSON objects."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._next_id = 1_100_000_000_000_000_000
        self.guild_ids = [self.snowflake() for _ in range(64)]
        self.channel_ids = [self.snowflake() for _ in range(256)]
        self.user_ids = [self.snowflake() for _ in range(4096)]
        self.message_ids: list[str] = []

    def snowflake(self) -> str:
        self._next_id += self.rng.randrange(1 << 22, 1 << 30)
        return str(self._next_id)

    def pick(self, seq: list[str]) -> str:
        return seq[self.rng.randrange(len(seq))]

    def hexhash(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def timestamp(self) -> str:
        r = self.rng
        return (
            f"202{r.randrange(0, 5)}-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}"
            f"T{r.randrange(24):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}"
            f".{r.randrange(10**6):06d}+00:00"
        )

    def text(self, lo: int, hi: int) -> str:
        words = _WORDS
        n = self.rng.randrange(lo, hi + 1)
        out: list[str] = []
        size = 0
        while size < n:
            w = self.rng.choice(words)
            out.append(w)
            size += len(w) + 1
        return " ".join(out)[:n]

    def user(self, uid: str | None = None) -> dict[str, Any]:
        r = self.rng
        name = f"user{r.randrange(100000)}"
        return {
            "username": name,
            "public_flags": r.choice([0, 0, 64, 128, 256]),
            "id": uid or self.pick(self.user_ids),
            "global_name": name.title() if r.random() < 0.7 else None,
            "discriminator": "0",
            "clan": None,
            "bot": r.random() < 0.05,
            "avatar_decoration_data": None,
            "avatar": self.hexhash() if r.random() < 0.8 else None,
        }

    def member(
        self, uid: str | None = None, guild_roles: list[str] | None = None
    ) -> dict[str, Any]:
        r = self.rng
        roles = guild_roles or [self.snowflake() for _ in range(4)]
        return {
            "user": self.user(uid),
            "roles": r.sample(roles, k=min(len(roles), r.randrange(0, 4))),
            "premium_since": None,
            "pending": False,
            "nick": f"nick{r.randrange(1000)}" if r.random() < 0.2 else None,
            "mute": False,
            "joined_at": self.timestamp(),
            "flags": 0,
            "deaf": False,
            "communication_disabled_until": None,
            "banner": None,
            "avatar": None,
        }

    def activity(self) -> dict[str, Any]:
        r = self.rng
        act: dict[str, Any] = {
            "type": r.choice([0, 2, 4]),
            "name": r.choice(["Custom Status", "Spotify", "Visual Studio Code", "Minecraft"]),
            "id": f"{r.getrandbits(64):016x}",
            "created_at": 1_735_689_600_000 + r.randrange(10**9),
        }
        if r.random() < 0.5:
            act["state"] = self.text(5, 60)
            act["details"] = self.text(5, 60)
            act["timestamps"] = {"start": 1_735_689_600_000 + r.randrange(10**9)}
            act["assets"] = {"large_image": f"spotify:{self.hexhash()}", "large_text": "album"}
        return act

    def presence(self, guild_id: str | None = None) -> dict[str, Any]:
        r = self.rng
        status = r.choice(["online", "idle", "dnd"])
        p: dict[str, Any] = {
            "user": {"id": self.pick(self.user_ids)},
            "status": status,
            "client_status": {r.choice(["desktop", "mobile", "web"]): status},
            "broadcast": None,
            "activities": [self.activity() for _ in range(r.choice([0, 1, 1, 2]))],
        }
        if guild_id is not None:
            p["guild_id"] = guild_id
        return p

    def channel(self, guild_id: str) -> dict[str, Any]:
        r = self.rng
        return {
            "version": 1_700_000_000_000 + r.randrange(10**9),
            "type": r.choice([0, 0, 0, 2, 4, 5, 13, 15]),
            "topic": self.text(0, 80) if r.random() < 0.4 else None,
            "rate_limit_per_user": 0,
            "position": r.randrange(50),
            "permission_overwrites": [
                {"type": 0, "id": self.snowflake(), "deny": "1024", "allow": "0"}
                for _ in range(r.randrange(3))
            ],
            "parent_id": self.pick(self.channel_ids),
            "nsfw": False,
            "name": f"channel-{r.randrange(1000)}",
            "last_message_id": self.snowflake(),
            "id": self.pick(self.channel_ids),
            "guild_id": guild_id,
            "flags": 0,
        }

    def role(self) -> dict[str, Any]:
        r = self.rng
        return {
            "version": 1_700_000_000_000 + r.randrange(10**9),
            "unicode_emoji": None,
            "tags": {},
            "position": r.randrange(40),
            "permissions": str(r.getrandbits(40)),
            "name": f"role-{r.randrange(1000)}",
            "mentionable": False,
            "managed": False,
            "id": self.snowflake(),
            "icon": None,
            "hoist": r.random() < 0.3,
            "flags": 0,
            "colors": {"primary_color": r.randrange(1 << 24), "secondary_color": None},
            "color": r.randrange(1 << 24),
        }

    def guild_create(self, target_size: int) -> dict[str, Any]:
        """A GUILD_CREATE ``d`` whose JSON is about ``target_size`` bytes."""
        r = self.rng
        gid = self.snowflake()
        roles = [self.role() for _ in range(r.randrange(5, 30))]
        role_ids = [x["id"] for x in roles]
        d: dict[str, Any] = {
            "id": gid,
            "name": f"Guild {r.randrange(100000)}",
            "icon": self.hexhash(),
            "description": self.text(10, 120),
            "owner_id": self.pick(self.user_ids),
            "region": "deprecated",
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "features": ["COMMUNITY", "NEWS", "ANIMATED_ICON", "INVITE_SPLASH"],
            "mfa_level": 0,
            "premium_tier": r.randrange(4),
            "preferred_locale": "en-US",
            "joined_at": self.timestamp(),
            "large": target_size > 100_000,
            "unavailable": False,
            "roles": roles,
            "emojis": [
                {"id": self.snowflake(), "name": f"emoji{i}", "animated": False, "roles": []}
                for i in range(r.randrange(0, 40))
            ],
            "stickers": [],
            "voice_states": [],
            "threads": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "channels": [self.channel(gid) for _ in range(r.randrange(5, 60))],
            "members": [],
            "presences": [],
        }
        size = len(json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode())
        members: list[Any] = d["members"]
        presences: list[Any] = d["presences"]
        while size < target_size:
            m = self.member(guild_roles=role_ids)
            members.append(m)
            size += len(json.dumps(m, separators=(",", ":")).encode()) + 1
            if r.random() < 0.4:
                p = self.presence()
                presences.append(p)
                size += len(json.dumps(p, separators=(",", ":")).encode()) + 1
        d["member_count"] = len(members) + r.randrange(0, 10_000)
        return d

    def members_chunk(self, target_size: int) -> dict[str, Any]:
        members: list[Any] = []
        size = 200
        while size < target_size:
            m = self.member()
            members.append(m)
            size += len(json.dumps(m, separators=(",", ":")).encode()) + 1
        return {
            "members": members,
            "guild_id": self.pick(self.guild_ids),
            "chunk_index": 0,
            "chunk_count": 1,
            "nonce": f"{self.rng.getrandbits(64):x}",
        }

    def message(self) -> dict[str, Any]:
        r = self.rng
        gid = self.pick(self.guild_ids)
        mid = self.snowflake()
        self.message_ids.append(mid)
        author = self.user()
        msg: dict[str, Any] = {
            "type": 0,
            "tts": False,
            "timestamp": self.timestamp(),
            "pinned": False,
            "nonce": str(r.getrandbits(60)),
            "mentions": [self.user() for _ in range(r.choice([0, 0, 0, 1, 2]))],
            "mention_roles": [],
            "mention_everyone": False,
            "member": {k: v for k, v in self.member(author["id"]).items() if k != "user"},
            "id": mid,
            "flags": 0,
            "embeds": [],
            "edited_timestamp": None,
            "content": self.text(0, 400),
            "components": [],
            "channel_type": 0,
            "channel_id": self.pick(self.channel_ids),
            "author": author,
            "attachments": [],
            "guild_id": gid,
        }
        if r.random() < 0.15:
            msg["embeds"].append(
                {
                    "type": "rich",
                    "title": self.text(5, 80),
                    "description": self.text(20, 600),
                    "color": r.randrange(1 << 24),
                    "fields": [
                        {"name": self.text(3, 20), "value": self.text(3, 80), "inline": True}
                        for _ in range(r.randrange(0, 5))
                    ],
                    "footer": {"text": self.text(3, 40)},
                }
            )
        if r.random() < 0.1:
            msg["attachments"].append(
                {
                    "id": self.snowflake(),
                    "filename": "image.png",
                    "size": r.randrange(10**6),
                    "url": f"https://cdn.discordapp.com/attachments/{gid}/{mid}/image.png",
                    "proxy_url": f"https://media.discordapp.net/attachments/{gid}/{mid}/i.png",
                    "width": 1024,
                    "height": 768,
                    "content_type": "image/png",
                }
            )
        return msg

    def typing(self) -> dict[str, Any]:
        uid = self.pick(self.user_ids)
        return {
            "user_id": uid,
            "timestamp": 1_735_689_600 + self.rng.randrange(10**7),
            "member": self.member(uid),
            "channel_id": self.pick(self.channel_ids),
            "guild_id": self.pick(self.guild_ids),
        }

    def reaction(self) -> dict[str, Any]:
        uid = self.pick(self.user_ids)
        return {
            "user_id": uid,
            "type": 0,
            "message_id": self.pick(self.message_ids) if self.message_ids else self.snowflake(),
            "message_author_id": self.pick(self.user_ids),
            "member": self.member(uid),
            "emoji": {"name": self.rng.choice(["👍", "🎉", "😂", "❤️"]), "id": None},
            "channel_id": self.pick(self.channel_ids),
            "burst": False,
            "guild_id": self.pick(self.guild_ids),
        }

    def voice_state(self) -> dict[str, Any]:
        uid = self.pick(self.user_ids)
        return {
            "member": self.member(uid),
            "user_id": uid,
            "suppress": False,
            "session_id": self.hexhash(),
            "self_video": False,
            "self_mute": self.rng.random() < 0.5,
            "self_deaf": False,
            "request_to_speak_timestamp": None,
            "mute": False,
            "guild_id": self.pick(self.guild_ids),
            "deaf": False,
            "channel_id": self.pick(self.channel_ids),
        }


_WORDS = [
    "the", "gateway", "sent", "a", "heartbeat", "ack", "and", "then", "the", "bot",
    "reconnected", "after", "resume", "latency", "shard", "guild", "member", "presence",
    "typing", "message", "embed", "reaction", "voice", "ok", "lol", "👍", "🎉", "ça",
    "marche", "très", "bien", "ありがとう", "謝謝", "نعم",
]  # fmt: skip


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _dispatch_bytes(t: str, s: int, d: Any) -> bytes:
    return _dumps({"t": t, "s": s, "op": 0, "d": d})


def _clamp(x: float, lo: float, hi: float) -> int:
    return int(min(max(x, lo), hi))


@dataclass
class Template:
    frames: list[FrameRecord]
    span_ns: int  # t_ns of the last frame minus the first, plus a gap
    max_s: int
    payload_bytes: int
    largest_payload: int
    largest_row: int  # msgpack size of the largest record
    kinds: Counter[str] = field(default_factory=Counter)
    kind_bytes: Counter[str] = field(default_factory=Counter)


def build_template(seed: int = 1, target_frames: int = 4000) -> Template:
    """One gateway session: HELLO, IDENTIFY, READY, GUILD_CREATE burst, then steady traffic.

    Server frames are marked binary (zlib-stream transport, wire size about 1/5 of the
    JSON); client frames are text. Sizes: heartbeats/acks 20-40 B, small dispatches
    100 B-3 KB, GUILD_CREATE 20-500 KB (log-normal, median ~60 KB), two ~1 MiB frames
    (one huge GUILD_CREATE and one GUILD_MEMBERS_CHUNK).
    """
    g = _Gen(seed)
    rng = g.rng
    frames: list[FrameRecord] = []
    kinds: Counter[str] = Counter()
    kind_bytes: Counter[str] = Counter()
    t_ns = SESSION_START_NS
    s = 0

    def add(
        direction: Direction,
        payload: bytes,
        op: int,
        t: str | None = None,
        seq: int | None = None,
        dt_s: float = 0.0,
    ) -> None:
        nonlocal t_ns
        t_ns += int(dt_s * 1e9) + rng.randrange(1000, 200_000)
        server = direction is Direction.SERVER
        frames.append(
            FrameRecord(
                conn_id=1,
                t_ns=t_ns,
                direction=direction,
                frame_type=FrameType.BINARY if server else FrameType.TEXT,
                payload=payload,
                op=op,
                s=seq,
                t=t,
                wire_size=len(payload) // 5 + 8 if server else len(payload) + 6,
            )
        )
        kind = t or {1: "HEARTBEAT", 2: "IDENTIFY", 8: "REQUEST_MEMBERS", 10: "HELLO"}.get(
            op, "HEARTBEAT_ACK" if op == 11 else f"op{op}"
        )
        kinds[kind] += 1
        kind_bytes[kind] += len(payload)

    def dispatch(t: str, d: Any, dt_s: float = 0.0) -> None:
        nonlocal s
        s += 1
        add(Direction.SERVER, _dispatch_bytes(t, s, d), 0, t, s, dt_s)

    hello = {
        "heartbeat_interval": 41250,
        "_trace": ['["gateway-prd-us-east1-c-7h2x",{"micros":0.0}]'],
    }
    add(Direction.SERVER, _dumps({"t": None, "s": None, "op": 10, "d": hello}), 10)
    identify = {
        "op": 2,
        "d": {
            "token": TOKEN,
            "properties": {"os": "linux", "browser": "disnake", "device": "disnake"},
            "intents": 3276799,
            "shard": [0, 1],
            "large_threshold": 250,
            "compress": False,
        },
    }
    add(Direction.CLIENT, _dumps(identify), 2, dt_s=0.05)
    ready = {
        "v": 10,
        "user": g.user(),
        "session_type": "normal",
        "session_id": g.hexhash(),
        "resume_gateway_url": "wss://gateway-us-east1-c.discord.gg",
        "guilds": [{"unavailable": True, "id": gid} for gid in g.guild_ids],
        "application": {"id": g.snowflake(), "flags": 8953856},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "geo_ordered_rtc_regions": ["us-east", "us-central", "atlanta", "us-south"],
        "shard": [0, 1],
        "_trace": ['["gateway-prd-us-east1-c-7h2x",{"micros":123456}]'] * 4,
    }
    dispatch("READY", ready, dt_s=0.1)
    for i in range(len(g.guild_ids) - 4):
        if i == 7:
            size = MiB + rng.randrange(-50_000, 50_000)  # one huge guild
        else:
            size = _clamp(math.exp(rng.gauss(math.log(60_000), 0.9)), 20_000, 500_000)
        dispatch("GUILD_CREATE", g.guild_create(size), dt_s=0.01)

    small: list[tuple[str, float, Callable[[], Any]]] = [
        ("PRESENCE_UPDATE", 35, lambda: g.presence(g.pick(g.guild_ids))),
        ("MESSAGE_CREATE", 20, g.message),
        ("TYPING_START", 15, g.typing),
        ("MESSAGE_REACTION_ADD", 8, g.reaction),
        ("MESSAGE_UPDATE", 5, g.message),
        ("GUILD_MEMBER_UPDATE", 5, lambda: {**g.member(), "guild_id": g.pick(g.guild_ids)}),
        ("MESSAGE_DELETE", 4, lambda: {"id": g.snowflake(), "channel_id": g.pick(g.channel_ids)}),
        ("VOICE_STATE_UPDATE", 4, g.voice_state),
        ("CHANNEL_UPDATE", 2, lambda: g.channel(g.pick(g.guild_ids))),
        ("GUILD_ROLE_UPDATE", 2, lambda: {"role": g.role(), "guild_id": g.pick(g.guild_ids)}),
    ]
    names = [x[0] for x in small]
    weights = [x[1] for x in small]
    makers = {x[0]: x[2] for x in small}
    next_heartbeat = HEARTBEAT_INTERVAL_S * rng.random()
    clock = 0.0
    chunk_at = target_frames // 2
    while len(frames) < target_frames:
        dt = rng.expovariate(DISPATCH_RATE_PER_S)
        if clock + dt >= next_heartbeat:
            add(Direction.CLIENT, _dumps({"op": 1, "d": s}), 1, dt_s=next_heartbeat - clock)
            add(Direction.SERVER, _dumps({"t": None, "s": None, "op": 11, "d": None}), 11)
            clock = next_heartbeat
            next_heartbeat += HEARTBEAT_INTERVAL_S
            continue
        clock += dt
        if len(frames) >= chunk_at:
            chunk_at = sys.maxsize
            req = {"op": 8, "d": {"guild_id": g.pick(g.guild_ids), "query": "", "limit": 0}}
            add(Direction.CLIENT, _dumps(req), 8, dt_s=dt)
            dispatch("GUILD_MEMBERS_CHUNK", g.members_chunk(MiB - 20_000), dt_s=0.2)
            continue
        name = rng.choices(names, weights)[0]
        dispatch(name, makers[name](), dt_s=dt)

    for f in frames:  # every payload must be valid JSON whose op/s/t match the record
        obj = json.loads(f.payload)
        if (obj["op"], obj.get("s"), obj.get("t")) != (f.op, f.s, f.t):
            raise AssertionError(f"template frame does not match its payload: {f}")
    packer = msgpack.Packer(use_bin_type=True)
    return Template(
        frames=frames,
        span_ns=frames[-1].t_ns - frames[0].t_ns + 5 * 10**9,
        max_s=s,
        payload_bytes=sum(len(f.payload) for f in frames),
        largest_payload=max(len(f.payload) for f in frames),
        largest_row=max(len(packer.pack(to_row(f))) for f in frames),
        kinds=kinds,
        kind_bytes=kind_bytes,
    )


def stream_batches(tpl: Template, total_bytes: int) -> Iterator[list[FrameRecord]]:
    """Records of ``total_bytes`` of payload (at least), one template cycle per batch.

    Cycle ``k`` is a new connection (``conn_id`` k+1) later in time, with ``s`` continuing
    from the previous cycle so that every ``s`` in the file is distinct; the payload bytes
    are the template's own objects (shared, not copied), so their inner ``"s"`` is the
    template's.
    """
    written = 0
    cycle = 0
    while written < total_bytes:
        dt = cycle * tpl.span_ns
        ds = cycle * tpl.max_s
        conn = cycle + 1
        batch: list[FrameRecord] = []
        for f in tpl.frames:
            batch.append(
                FrameRecord(
                    conn,
                    f.t_ns + dt,
                    f.direction,
                    f.frame_type,
                    f.payload,
                    f.op,
                    None if f.s is None else f.s + ds,
                    f.t,
                    f.wire_size,
                    f.flags,
                    f.error,
                )
            )
            written += len(f.payload)
            if written >= total_bytes:
                break
        yield batch
        cycle += 1


# --- measurements ------------------------------------------------------------------------


@dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0
    records: int = 0
    payload_bytes: int = 0
    file_bytes: int = 0

    def rate(self, what: str) -> float:
        if what == "rec/s":
            return self.records / self.wall
        if what == "MB/s":  # of payload for writes, of file for reads
            return (self.payload_bytes or self.file_bytes) / MiB / self.wall
        raise ValueError(what)

    def as_dict(self) -> dict[str, float]:
        return {
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "records": self.records,
            "payload_bytes": self.payload_bytes,
            "file_bytes": self.file_bytes,
            "records_per_s": self.records / self.wall,
            "mb_per_s": (self.payload_bytes or self.file_bytes) / MiB / self.wall,
        }


class _Clock:
    """Accumulates wall and CPU time over the timed sections only."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing

    def __enter__(self) -> None:
        self._w = time.perf_counter()
        self._c = time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.timing.cpu += time.process_time() - self._c
        self.timing.wall += time.perf_counter() - self._w


def bench_header() -> Header:
    return Header(created_unix_ns=0, tool="replayer bench", metadata={"bench": True})


class _Sink:
    """One writer under test; only ``open``, ``write_batch`` and ``close`` are timed."""

    def open(self, path: Path) -> None:
        raise NotImplementedError

    def write_batch(self, batch: list[FrameRecord]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class BareSink(_Sink):
    """Bare baseline: the same rows, packed by one Packer into a buffered file."""

    def open(self, path: Path) -> None:
        self._packer = msgpack.Packer(use_bin_type=True)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(self._packer.pack(bench_header().to_map()))

    def write_batch(self, batch: list[FrameRecord]) -> None:
        pack = self._packer.pack
        write = self._file.write
        for rec in batch:
            write(pack(to_row(rec)))

    def close(self) -> None:
        self._file.close()


class OursSink(_Sink):
    def __init__(self, *, redact: bool) -> None:
        self.redact = redact

    def open(self, path: Path) -> None:
        self._writer = ArchiveWriter(
            path, redact=self.redact, header=bench_header(), overwrite=True
        )

    def write_batch(self, batch: list[FrameRecord]) -> None:
        write = self._writer.write
        for rec in batch:
            write(rec)

    def close(self) -> None:
        self._writer.close()


def write_lockstep(
    sinks: dict[str, tuple[_Sink, Path]], tpl: Template, total: int
) -> dict[str, Timing]:
    """Run the writers side by side, one template cycle each in turn.

    This VM's CPU speed drifts by tens of percent within seconds (a pure-Python loop
    varied from 0.29 to 0.46 s CPU), so phases run one after the other could see
    different machines. Taking turns every cycle (~10 MiB, tens of ms) gives every writer
    the same machine on average; the turn order rotates so that none always comes first
    (and finds the payloads in the CPU cache). Building the records is not timed.
    """
    names = list(sinks)
    timings = {name: Timing() for name in names}
    clocks = {name: _Clock(timings[name]) for name in names}
    for name, (sink, path) in sinks.items():
        fresh_file(path)
        with clocks[name]:
            sink.open(path)
    for i, batch in enumerate(stream_batches(tpl, total)):
        nbytes = sum(len(r.payload) for r in batch)
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            with clocks[name]:
                sinks[name][0].write_batch(batch)
            timings[name].records += len(batch)
            timings[name].payload_bytes += nbytes
    for name, (sink, path) in sinks.items():
        with clocks[name]:
            sink.close()
        timings[name].file_bytes = path.stat().st_size
    return timings


def write_one(sink: _Sink, path: Path, tpl: Template, total: int) -> Timing:
    return write_lockstep({"one": (sink, path)}, tpl, total)["one"]


# A source opens a file (timed) and returns an iterator of its records and a closer.
Source = Callable[[Path], tuple[Iterator[object], Callable[[], None]]]


def bare_source(path: Path) -> tuple[Iterator[object], Callable[[], None]]:
    f = open(path, "rb")  # noqa: SIM115 - closed by the returned closer
    it: Iterator[object] = iter(msgpack.Unpacker(f, read_size=MiB, raw=False))
    next(it)  # the header: not a record (the reader reads it in its constructor too)
    return it, f.close


def ours_source(path: Path) -> tuple[Iterator[object], Callable[[], None]]:
    reader = ArchiveReader(path)
    return iter(reader), reader.close


def ours_rows_source(path: Path) -> tuple[Iterator[object], Callable[[], None]]:
    reader = ArchiveReader(path)
    return reader.rows(), reader.close


READ_STEP = 4096  # records per turn in lockstep reading


def read_lockstep(sources: dict[str, Source], path: Path) -> dict[str, Timing]:
    """Read the same file with each source, taking turns every ``READ_STEP`` records."""
    names = list(sources)
    size = path.stat().st_size
    timings = {name: Timing(file_bytes=size) for name in names}
    clocks = {name: _Clock(timings[name]) for name in names}
    iters: dict[str, Iterator[object]] = {}
    closers: dict[str, Callable[[], None]] = {}
    for name, source in sources.items():
        with clocks[name]:
            iters[name], closers[name] = source(path)
    live = list(names)
    turn = 0
    while live:
        finished = []
        for k in range(len(live)):
            name = live[(turn + k) % len(live)]
            n = 0
            with clocks[name]:
                for _obj in islice(iters[name], READ_STEP):
                    n += 1
                if n < READ_STEP:
                    closers[name]()
            timings[name].records += n
            if n < READ_STEP:
                finished.append(name)
        live = [name for name in live if name not in finished]
        turn += 1
    return timings


def read_raw(path: Path) -> Timing:
    """Plain ``read`` of the file in 1 MiB chunks: the I/O ceiling (and a cache warm-up)."""
    tm = Timing(file_bytes=path.stat().st_size)
    with _Clock(tm), open(path, "rb", buffering=0) as f:
        while f.read(MiB):
            pass
    return tm


def read_one(source: Source, path: Path) -> Timing:
    return read_lockstep({"one": source}, path)["one"]


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def fresh_file(path: Path) -> None:
    """Delete ``path`` and flush, untimed: every write phase starts on a new, empty file.

    Overwriting (``O_TRUNC``) a large file that was just written made the next writer up to
    2x slower on ext4 here, and unevenly so (writers doing one syscall per record suffer
    more), which is not what this benchmark is about.
    """
    path.unlink(missing_ok=True)
    settle()


def settle() -> None:
    """Write dirty pages out between phases, so no phase pays for another's writeback."""
    if hasattr(os, "sync"):
        os.sync()


def warm_up(workdir: Path, nbytes: int) -> float:
    """Write and delete ``nbytes`` of scratch files before timing anything.

    In a VM, the first touch of guest memory can cost several times a page-cache write
    (measured here: ~2 s per GiB cold, 0.3 s warm). Whichever phase ran first would pay
    it; afterwards the page cache reuses the memory this has touched.
    """
    t0 = time.perf_counter()
    chunk = os.urandom(MiB)
    paths = [workdir / f"warm-{i}.tmp" for i in range(2)]
    for p in paths:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(nbytes // len(paths) // MiB + 1):
                os.write(fd, chunk)
        finally:
            os.close(fd)
    for p in paths:
        p.unlink()
    settle()
    return time.perf_counter() - t0


# --- peak memory, in child processes -----------------------------------------------------


def _proc_status() -> dict[str, int]:
    """VmRSS / VmHWM in bytes from /proc/self/status (Linux); empty elsewhere."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def _ru_maxrss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


def _reset_peak_rss() -> bool:
    """Reset VmHWM (Linux >= 4.0); ru_maxrss cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


PHASES = ("write-bare", "write-ours", "read-bare", "read-ours")


def run_phase(phase: str, path: Path, size_mb: float, seed: int) -> dict[str, Any]:
    """Child side: set up, note RSS, run one phase, report peak and growth."""
    tpl = build_template(seed) if phase.startswith("write") else None
    gc.collect()
    rss_before = _proc_status().get("VmRSS", 0)
    ru_before = _ru_maxrss()
    reset = _reset_peak_rss()
    if phase == "write-bare":
        assert tpl is not None
        tm = write_one(BareSink(), path, tpl, int(size_mb * MiB))
    elif phase == "write-ours":
        assert tpl is not None
        tm = write_one(OursSink(redact=True), path, tpl, int(size_mb * MiB))
    elif phase == "read-bare":
        tm = read_one(bare_source, path)
    elif phase == "read-ours":
        tm = read_one(ours_source, path)
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    ru_after = _ru_maxrss()
    hwm_after = _proc_status().get("VmHWM", 0) if reset else 0
    # ru_maxrss is the process's peak since exec; it is a good measure of the phase only if
    # the phase went above the peak reached before it (imports, template). VmHWM, reset
    # just before the phase, is exact; use it when the kernel offers it.
    peak = hwm_after if reset and hwm_after else ru_after
    return {
        "phase": phase,
        "rss_before": rss_before,
        "ru_maxrss_before": ru_before,
        "ru_maxrss_after": ru_after,
        "vmhwm_after": hwm_after,
        "peak_method": "VmHWM (reset at phase start)" if peak == hwm_after else "ru_maxrss",
        "peak": peak,
        "growth": peak - rss_before,
        "growth_ru_maxrss": ru_after - rss_before,
        "records": tm.records,
        "wall_s": tm.wall,
    }


_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def _measure_phase(phase: str, path: Path, size_mb: float, seed: int) -> dict[str, Any]:
    """Run one phase in a fresh process and return its report.

    A child inherits its parent's ru_maxrss across fork+exec (Linux keeps the larger of
    the two), so this (large) process would set a floor under the child's figure. The
    child is therefore started through a tiny launcher process (~10 MiB) whose own
    children start from its small peak instead.
    """
    cmd = [
        sys.executable,
        "-c",
        _LAUNCHER,
        sys.executable,
        str(Path(__file__).resolve()),
        "--phase",
        phase,
        "--phase-file",
        str(path),
        "--size-mb",
        str(size_mb),
        "--seed",
        str(seed),
    ]
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"phase {phase} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _pythonpath() -> str:
    root = str(Path(__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH")
    return root if not old else f"{root}{os.pathsep}{old}"


# --- report ------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    unit: str
    ours: float
    base: float | None = None
    target: float | None = None  # minimum ratio ours/base
    bound: float | None = None  # maximum value of ours
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.base is None or self.base == 0:
            return None
        if self.unit == "MiB" and max(self.base, self.ours) < MiB:
            return None  # memory growth below 1 MiB: noise, no meaningful ratio
        return self.ours / self.base

    @property
    def verdict(self) -> str:
        if self.target is not None:
            r = self.ratio
            return "PASS" if r is not None and r >= self.target else "FAIL"
        if self.bound is not None:
            return "PASS" if self.ours < self.bound else "FAIL"
        return "info"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "ours": self.ours,
            "baseline": self.base,
            "ratio": self.ratio,
            "target_ratio": self.target,
            "bound": self.bound,
            "result": self.verdict,
            "note": self.note,
        }


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "MiB":
        return f"{value / MiB:,.1f} MiB"
    if unit == "rec/s":
        return f"{value:,.0f} {unit}"
    if unit in ("s", "CPU s"):
        return f"{value:,.3f} {unit}"
    return f"{value:,.1f} {unit}"


def print_table(rows: list[Row]) -> None:
    head = ("measurement", "ours", "baseline", "ratio", "target", "result")
    cells = []
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.3f}"
        if r.target is not None:
            target = f"ratio >= {r.target:.2f}"
        elif r.bound is not None:
            target = f"< {_fmt(r.bound, r.unit)}"
        else:
            target = "-"
        cells.append((r.name, _fmt(r.ours, r.unit), _fmt(r.base, r.unit), ratio, target, r.verdict))
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*head))
    print("  ".join("-" * w for w in widths))
    for c, r in zip(cells, rows, strict=True):
        print(line.format(*c) + (f"   {r.note}" if r.note else ""))


def describe_template(tpl: Template) -> None:
    sizes = sorted(len(f.payload) for f in tpl.frames)
    n = len(sizes)

    def pct(p: float) -> int:
        return sizes[min(n - 1, int(p * n))]

    print(
        f"template: {n} frames, {tpl.payload_bytes / MiB:.1f} MiB of JSON payload per cycle; "
        f"payload size p10 {pct(0.1)} B, p50 {pct(0.5)} B, p90 {pct(0.9)} B, "
        f"p99 {pct(0.99):,} B, max {sizes[-1]:,} B; largest record {tpl.largest_row:,} B"
    )
    parts = [
        f"{k} {c} ({tpl.kind_bytes[k] / c / 1024:.1f} KiB avg)" for k, c in tpl.kinds.most_common()
    ]
    print("  frames by kind: " + ", ".join(parts))


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _median_round(baseline: list[Timing]) -> int:
    """The round whose baseline time is the median (the lower one of an even count).

    All measurements of one lockstep round are reported together: their ratios are the
    meaningful numbers, and they hold within a round whatever the machine's speed.
    """
    order = sorted(range(len(baseline)), key=lambda i: baseline[i].wall)
    return order[(len(order) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=1024, help="MiB of payload (default 1024)")
    ap.add_argument("--dir", type=Path, default=None, help="where the files go (default: TMPDIR)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is kept")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also save the results here")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    ap.add_argument("--keep", action="store_true", help="keep the archive files")
    ap.add_argument("--skip-memory", action="store_true", help="no peak-memory phases")
    ap.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    ap.add_argument("--phase-file", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.phase:
        print(json.dumps(run_phase(args.phase, args.phase_file, args.size_mb, args.seed)))
        return 0

    total = int(args.size_mb * MiB)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="archive-bench-", dir=args.dir))
    print(
        f"archive bench: {args.size_mb:g} MiB of payload, repeat {args.repeat}, dir {workdir}\n"
        f"python {platform.python_version()}, msgpack {'.'.join(map(str, msgpack.version))}, "
        f"{platform.platform()}, {os.cpu_count()} CPUs, load average {_load()}"
    )
    t0 = time.perf_counter()
    tpl = build_template(args.seed)
    print(f"template built in {time.perf_counter() - t0:.1f} s")
    describe_template(tpl)

    bare_path = workdir / "bare.msgpack"
    ours_path = workdir / "ours-redact.archive"
    plain_path = workdir / "ours-noredact.archive"
    w_bare: list[Timing] = []
    w_red: list[Timing] = []
    w_plain: list[Timing] = []
    digests: dict[str, set[str]] = {"bare": set(), "plain": set()}
    try:
        warm = warm_up(workdir, 3 * total)
        print(
            f"page-cache warm-up: wrote and deleted {3 * total / MiB:,.0f} MiB in {warm:.1f} s "
            f"({3 * total / MiB / warm:,.0f} MiB/s)",
            flush=True,
        )
        for rnd in range(args.repeat):
            # The three writers in lockstep, each to its own file.
            wt = write_lockstep(
                {
                    "bare": (BareSink(), bare_path),
                    "redact": (OursSink(redact=True), ours_path),
                    "plain": (OursSink(redact=False), plain_path),
                },
                tpl,
                total,
            )
            w_bare.append(wt["bare"])
            w_red.append(wt["redact"])
            w_plain.append(wt["plain"])
            for name, path in (("bare", bare_path), ("plain", plain_path)):
                digests[name].add(file_digest(path))
                path.unlink()  # the redacted archive is kept for the read phase
            done = ", ".join(f"{k} {t.wall:.3f} s" for k, t in wt.items())
            print(f"write round {rnd + 1}/{args.repeat} (lockstep): {done}", flush=True)
        # Same header, same rows: the bare and the unredacted files must be identical.
        same_bytes = len(digests["bare"] | digests["plain"]) == 1
        r_raw: list[Timing] = []
        r_bare: list[Timing] = []
        r_ours: list[Timing] = []
        r_rows: list[Timing] = []
        for rnd in range(args.repeat):
            r_raw.append(read_raw(ours_path))
            rt = read_lockstep(
                {"bare": bare_source, "ours": ours_source, "ours-rows": ours_rows_source},
                ours_path,
            )
            r_bare.append(rt["bare"])
            r_ours.append(rt["ours"])
            r_rows.append(rt["ours-rows"])
            done = ", ".join(f"{k} {t.wall:.3f} s" for k, t in rt.items())
            print(
                f"read round {rnd + 1}/{args.repeat} (lockstep): raw {r_raw[-1].wall:.3f} s, "
                f"{done}",
                flush=True,
            )
        mem: dict[str, dict[str, Any]] = {}
        if not args.skip_memory:
            for phase in PHASES:
                print(f"memory phase {phase} ...", flush=True)
                target = ours_path if phase.startswith("read") else workdir / f"{phase}.out"
                mem[phase] = _measure_phase(phase, target, args.size_mb, args.seed)
                if phase.startswith("write"):
                    target.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    wi, ri = _median_round(w_bare), _median_round(r_bare)
    wb, wr, wp = w_bare[wi], w_red[wi], w_plain[wi]
    rw, rb, ro, rr = r_raw[ri], r_bare[ri], r_ours[ri], r_rows[ri]
    expected = wr.records
    for t in (rb, ro, rr):
        if t.records != expected:
            raise RuntimeError(f"read {t.records} records, wrote {expected}")

    cpu = "CPU s"
    rows = [
        Row("write rec/s  ours(redact=True) vs bare", "rec/s", wr.rate("rec/s"),
            wb.rate("rec/s"), target=WRITE_TARGET),
        Row("write rec/s  ours(redact=False) vs bare", "rec/s", wp.rate("rec/s"),
            wb.rate("rec/s"), target=WRITE_TARGET),
        Row("write MB/s   ours(redact=True) vs bare", "MB/s", wr.rate("MB/s"),
            wb.rate("MB/s"), note="MiB of payload per s"),
        Row("write MB/s   ours(redact=False) vs bare", "MB/s", wp.rate("MB/s"),
            wb.rate("MB/s")),
        Row("write wall   ours(redact=True) vs bare", "s", wr.wall, wb.wall),
        Row("write CPU    ours(redact=True) vs bare", cpu, wr.cpu, wb.cpu),
        Row("write CPU    ours(redact=False) vs bare", cpu, wp.cpu, wb.cpu),
        Row("read MB/s    ArchiveReader vs Unpacker", "MB/s", ro.rate("MB/s"),
            rb.rate("MB/s"), target=READ_TARGET, note="MiB of file per s"),
        Row("read rec/s   ArchiveReader vs Unpacker", "rec/s", ro.rate("rec/s"),
            rb.rate("rec/s")),
        Row("read MB/s    ArchiveReader.rows() vs Unpacker", "MB/s", rr.rate("MB/s"),
            rb.rate("MB/s")),
        Row("read wall    ArchiveReader vs Unpacker", "s", ro.wall, rb.wall),
        Row("read CPU     ArchiveReader vs Unpacker", cpu, ro.cpu, rb.cpu),
        Row("read MB/s    Unpacker vs raw file read", "MB/s", rb.rate("MB/s"),
            rw.rate("MB/s"), note="the I/O ceiling (page cache)"),
    ]  # fmt: skip
    bound = 2 * tpl.largest_row + MEM_SLACK
    if mem:
        ro_m, rb_m = mem["read-ours"], mem["read-bare"]
        wo_m, wb_m = mem["write-ours"], mem["write-bare"]
        rows += [
            Row("mem growth   read: ArchiveReader vs Unpacker", "MiB", ro_m["growth"],
                rb_m["growth"], bound=bound, note="bound = 2 x largest record + 32 MiB"),
            Row("mem peak RSS read: ArchiveReader vs Unpacker", "MiB", ro_m["peak"],
                rb_m["peak"]),
            Row("mem growth   write: ArchiveWriter vs Packer", "MiB", wo_m["growth"],
                wb_m["growth"]),
            Row("mem peak RSS write: ArchiveWriter vs Packer", "MiB", wo_m["peak"],
                wb_m["peak"]),
        ]  # fmt: skip

    print()
    print(f"reported: write round {wi + 1}, read round {ri + 1} (median baseline time)")
    print(
        f"data: {wr.records:,} records, {wr.payload_bytes / MiB:,.1f} MiB payload, "
        f"archive {wr.file_bytes / MiB:,.1f} MiB (redact=True), bare file "
        f"{wb.file_bytes / MiB:,.1f} MiB; largest record {tpl.largest_row:,} B "
        f"(payload {tpl.largest_payload:,} B); bare and redact=False files identical: "
        f"{'yes' if same_bytes else 'NO'}"
    )
    if mem:
        m = mem["read-ours"]
        print(
            f"memory: peak by {m['peak_method']}; RSS before the phase "
            f"{m['rss_before'] / MiB:.1f} MiB (reader child); ru_maxrss growth "
            f"read-ours {m['growth_ru_maxrss'] / MiB:.1f} MiB, "
            f"read-bare {mem['read-bare']['growth_ru_maxrss'] / MiB:.1f} MiB"
        )
    print()
    print_table(rows)
    failed = [r.name for r in rows if r.verdict == "FAIL"]
    if not same_bytes:
        failed.append("bare and redact=False archives differ")
    print()
    print("all targets met" if not failed else f"FAILED: {'; '.join(failed)}")
    print(f"load average at the end: {_load()} (other processes share the CPUs)")

    if args.json is not None:
        result = {
            "size_mb": args.size_mb,
            "repeat": args.repeat,
            "seed": args.seed,
            "python": platform.python_version(),
            "msgpack": ".".join(map(str, msgpack.version)),
            "platform": platform.platform(),
            "template": {
                "frames": len(tpl.frames),
                "payload_bytes": tpl.payload_bytes,
                "largest_payload": tpl.largest_payload,
                "largest_record": tpl.largest_row,
                "kinds": dict(tpl.kinds),
                "kind_bytes": dict(tpl.kind_bytes),
            },
            "timings": {
                "write_bare": wb.as_dict(),
                "write_ours_redact": wr.as_dict(),
                "write_ours_noredact": wp.as_dict(),
                "read_raw": rw.as_dict(),
                "read_bare": rb.as_dict(),
                "read_ours": ro.as_dict(),
                "read_ours_rows": rr.as_dict(),
            },
            "reported_rounds": {"write": wi + 1, "read": ri + 1},
            "rounds_wall_s": {
                name: [t.wall for t in ts]
                for name, ts in (
                    ("write_bare", w_bare),
                    ("write_ours_redact", w_red),
                    ("write_ours_noredact", w_plain),
                    ("read_raw", r_raw),
                    ("read_bare", r_bare),
                    ("read_ours", r_ours),
                    ("read_ours_rows", r_rows),
                )
            },
            "memory": mem,
            "memory_bound": bound,
            "bare_equals_noredact": same_bytes,
            "rows": [r.as_dict() for r in rows],
            "failed": failed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results saved to {args.json}")
    return 1 if (args.check and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
