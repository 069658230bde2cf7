"""Synthetic gateway sessions: a realistic, deterministic archive without a Discord at hand.

``synth_records(options)`` simulates one bot session as the recorder would have captured
it: the REST calls a client makes first, then per shard a gateway connection (HELLO,
HEARTBEAT, IDENTIFY, READY, one GUILD_CREATE per guild, member chunks), a stream of
MESSAGE_CREATE / PRESENCE_UPDATE / TYPING_START dispatches, heartbeats every interval and
a clean close. Everything comes from ``random.Random(seed)``: the same options give the
same records. Shards run concurrently: a small discrete-event scheduler interleaves their
frames by time, so ``t_ns`` never goes back across the whole file. Records are produced
one at a time (``target_bytes`` archives of gigabytes stream in constant memory).

Where the shapes come from (Discord docs, discord/discord-api-docs):

* Resources > User > User Object; Resources > Application > Application Object;
  Topics > Gateway > Get Gateway Bot (the REST bodies);
* Events > Gateway Events > Hello / Identify / Ready / Guild Create / Guild Members Chunk /
  Message Create / Presence Update / Typing Start / Request Guild Members;
* Resources > Guild > Guild Object, Guild Member Object; Topics > Permissions > Role Object;
  Resources > Channel > Channel Object, Overwrite Object; Resources > Emoji > Emoji Object;
  Resources > Voice > Voice State Object; Resources > Message > Message Object, Attachment
  Object; Events > Gateway Events > Activity Object, Client Status Object;
* Reference > Snowflakes (ids: ms since 2015 << 22 | worker << 17 | process << 12 | increment);
* Topics > Gateway > Sharding (a guild's shard is ``(guild_id >> 22) % num_shards``) and
  Session Start Limit (``max_concurrency`` IDENTIFYs per 5 s).

They were checked against what discord.py 2.7 and hikari 2.7 index without ``.get``
(tests/unit/test_synth.py feeds the payloads to both libraries' real parsers).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameRecord,
    FrameType,
    Headers,
    HttpRecord,
    Query,
    Record,
)
from replayer.archive.writer import ArchiveWriter
from replayer.errors import CodecError
from replayer.gateway.compression import Compression, make_compressor
from replayer.gateway.encoding import Encoding, encode_payload
from replayer.gateway.opcodes import Direction, Opcode

JSON = dict[str, Any]

# Reference > Snowflakes: the Discord epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
DISCORD_EPOCH_MS = 1_420_070_400_000
# Wall clock of the synthetic session's start (2025-06-01T12:00:00Z): fixed, so that the
# snowflakes and timestamps inside the payloads are the same on every run.
SESSION_START_MS = 1_748_779_200_000
# What the client authenticates with; the archive writer redacts it (docs/archive-format.md §5).
SYNTH_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.synthetic.token"
DEFAULT_BOT_ID = 123456789012345678  # the id hikari decodes from the token's first segment
API = "/api/v10"
REST_HOST = "discord.com"
GATEWAY_URL = "wss://gateway.discord.gg"
RESUME_GATEWAY_URL = "wss://gateway-us-east1-b.discord.gg"
INTENTS = 3276799  # every intent, privileged ones included
LARGE_THRESHOLD = 250
MAX_CHUNK_MEMBERS = 1000  # Events > Gateway Events > Guild Members Chunk
# A large guild's GUILD_CREATE carries the online members only; this caps them so that a
# guild of a million members still makes a record of reasonable size.
MAX_ONLINE_IN_GUILD_CREATE = 1000
IDENTIFY_SPACING_MS = 5000  # Session Start Limit: max_concurrency (1) IDENTIFY per 5 s
USER_AGENT = "DiscordBot (https://github.com/Rapptz/discord.py 2.7.1) Python/3.12 aiohttp/3.14.5"
GEO_REGIONS = ["us-east", "us-central", "atlanta", "us-south", "newark", "us-west"]

_MS_NS = 1_000_000
CONTENT_POOL = 4096


def _words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


_ADJECTIVES = _words(
    "quiet brave lucky sleepy clever fuzzy rapid silent cosmic golden crimson mellow "
    "witty frosty sunny stormy gentle hidden little mighty noble odd plain royal shy tiny "
    "wild"
)
_NOUNS = _words(
    "otter falcon panda tiger comet pixel wizard badger ferret raven lynx koala gecko "
    "heron maple cedar nebula harbor meadow canyon ember willow quokka walrus puffin "
    "narwhal"
)
_WORDS = _words(
    "the a to and of is it you that in for on this was with i just have be so but not are "
    "what like can do my we get if all at no your out up about how one they good think "
    "know really yeah when time people now there would more me lol go some see make going "
    "back also why any any only new then here game server bot update patch build test "
    "deploy queue raid match ranked stream tonight tomorrow weekend anyone later thanks "
    "nice cool idea bug fix crash works broken again maybe probably definitely agree "
    "music song playlist meme channel voice role mod admin discord link check message"
)
_GUILD_WORDS = _words(
    "Gaming Lounge|Study Hall|Dev Den|Art Club|Music Corner|Anime Hub|Speedrun Squad|"
    "Book Nook|Homelab|Pixel Guild|Chess Club|Cozy Cafe|Retro Arcade|Night Owls|Code Camp",
    "|",
)
_TEXT_CHANNELS = [
    "general", "off-topic", "memes", "announcements", "help", "media", "bot-commands",
    "introductions", "dev", "music", "art", "gaming", "links", "feedback", "events",
]  # fmt: skip
_ROLE_NAMES = ["Moderator", "Member", "Admin", "VIP", "Helper", "Booster", "Artist", "Gamer"]
_GAMES = ["Minecraft", "Valorant", "Rocket League", "Stardew Valley", "Factorio", "Hades II"]
_CUSTOM_STATUSES = ["busy", "coding", "afk", "brb", "studying", "vibing", "on a break"]
_STATUSES = ("online", "idle", "dnd", "offline")
_STATUS_WEIGHTS = (40, 15, 10, 35)
_FEATURES = ["ANIMATED_ICON", "INVITE_SPLASH", "NEWS", "COMMUNITY", "BANNER"]
_PUBLIC_FLAGS = (0, 0, 0, 0, 0, 0, 0, 0, 64, 128, 256, 4194304)
# Topics > Permissions > Bitwise Permission Flags (as strings, like Discord sends them).
_PERM_EVERYONE = "2248473465835073"
_PERM_MEMBER = "2251799813685247"
_PERM_MODERATOR = "1099511627775"
_PERM_ADMIN = "8"
_PERM_BOT = "8"


@dataclass(frozen=True)
class SynthOptions:
    """What to generate. ``members_per_guild`` does not count the bot (it is in every guild
    too); ``roles_per_guild`` counts @everyone and the bot's managed role;
    ``channels_per_guild`` counts a category and a voice channel (from 3 channels on).
    With ``target_bytes``, events go on (in the proportions of ``messages``,
    ``presence_updates`` and ``typing``) until the frames' payloads reach that many bytes."""

    guilds: int = 3
    channels_per_guild: int = 5
    roles_per_guild: int = 4
    members_per_guild: int = 20
    messages: int = 30
    presence_updates: int = 10
    typing: int = 5
    shards: int = 1
    member_chunk_requests: int = 1
    encoding: str = "json"
    compress: str | None = None
    seed: int = 0
    bot_id: int = DEFAULT_BOT_ID
    heartbeat_interval_ms: int = 41_250
    message_interval_ms: int = 200
    target_bytes: int | None = None
    end_with_close: bool = True

    def __post_init__(self) -> None:
        minimums = {
            "guilds": 0,
            "channels_per_guild": 1,
            "roles_per_guild": 1,
            "members_per_guild": 0,
            "messages": 0,
            "presence_updates": 0,
            "typing": 0,
            "shards": 1,
            "member_chunk_requests": 0,
            "heartbeat_interval_ms": 1,
            "message_interval_ms": 0,
        }
        for name, least in minimums.items():
            value = getattr(self, name)
            if type(value) is not int or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.encoding not in ("json", "etf"):
            raise ValueError(f"encoding must be 'json' or 'etf', got {self.encoding!r}")
        if self.compress not in (None, "zlib-stream", "zstd-stream"):
            raise ValueError(
                f"compress must be None, 'zlib-stream' or 'zstd-stream', got {self.compress!r}"
            )
        if not 0 < self.bot_id < 1 << 63:
            raise ValueError(f"bot_id must be a snowflake (1 .. 2**63-1), got {self.bot_id!r}")
        if self.target_bytes is not None:
            if type(self.target_bytes) is not int or self.target_bytes < 0:
                raise ValueError(f"target_bytes must be >= 0, got {self.target_bytes!r}")
            if self.target_bytes > 0 and self.guilds == 0:
                raise ValueError("target_bytes needs at least one guild to send events in")


# --- helpers ---------------------------------------------------------------------------


def snowflake(ms: int, worker: int, process: int, increment: int) -> int:
    """A snowflake for Unix time ``ms`` (Reference > Snowflakes)."""
    return ((ms - DISCORD_EPOCH_MS) << 22) | (worker << 17) | (process << 12) | (increment & 0xFFF)


def iso_time(ms: int) -> str:
    """ISO 8601 as Discord writes it: ``2025-06-01T12:00:00.123000+00:00``."""
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}000+00:00"


@lru_cache(maxsize=256)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


def _dispatch(t: str, s: int, d: Any) -> JSON:
    # Discord sends the keys in this order.
    return {"t": t, "s": s, "op": int(Opcode.DISPATCH), "d": d}


def _server(op: int, d: Any) -> JSON:
    return {"t": None, "s": None, "op": op, "d": d}


def _client(op: int, d: Any) -> JSON:
    return {"op": op, "d": d}


@dataclass
class _Guild:
    index: int
    id: int
    shard: int
    name: str
    created_ms: int
    joined_ms: int  # when the bot joined
    owner: int  # member index of the owner
    roles: list[JSON]
    custom_role_ids: list[str]
    bot_role_id: str | None
    channels: list[JSON]
    text_channel_ids: list[str]
    voice_channel_id: str | None
    emojis: list[JSON]
    features: list[str]
    voice_member: int | None  # member index of the one member in voice, if any


@dataclass
class _Shard:
    index: int
    conn_id: int
    guilds: list[_Guild]
    session_id: str
    compressor: Callable[[bytes], bytes] | None
    s: int = 0
    ready_ns: int = 0  # when its start-up (READY, GUILD_CREATEs, member chunks) is over

    def next_s(self) -> int:
        self.s += 1
        return self.s


# --- the generator ---------------------------------------------------------------------

Action = Callable[[int], Iterable[Record]]


class _Synth:
    """One synthetic session; :meth:`records` runs it. Not reusable."""

    def __init__(self, options: SynthOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.encoding = Encoding.parse(options.encoding)
        self.compression = Compression.parse(options.compress)
        self.json_frames = self.encoding is Encoding.JSON
        self.worker = self.rng.randrange(32)
        self.process = self.rng.randrange(32)
        self._increment = 0
        self.payload_bytes = 0
        self._heap: list[tuple[int, int, Action]] = []
        self._order = itertools.count()
        self._done = False
        self.bot_user = self._bot_user()
        self.guilds = [self._guild(g) for g in range(options.guilds)]
        self.shards = [
            _Shard(
                index=i,
                conn_id=i + 1,
                guilds=[g for g in self.guilds if g.shard == i],
                session_id=hashlib.blake2b(
                    f"{options.seed}:{i}".encode(), digest_size=16
                ).hexdigest(),
                compressor=self._compressor(),
            )
            for i in range(options.shards)
        ]
        self._member = lru_cache(maxsize=4096)(self._build_member)
        # Message texts are drawn from a pool: cheaper than composing each one.
        self._contents = [self._content() for _ in range(CONTENT_POOL)]
        # Events left to send, per kind (in target mode: the kinds' weights).
        self._left = {
            "MESSAGE_CREATE": options.messages,
            "PRESENCE_UPDATE": options.presence_updates,
            "TYPING_START": options.typing,
        }
        if options.target_bytes is not None and not any(self._left.values()):
            self._left["MESSAGE_CREATE"] = 1
        self._kinds = list(self._left)
        self._cum_weights = list(itertools.accumulate(self._left.values()))
        self._ready_shards: list[_Shard] = []
        self._shards_with_guilds = sum(1 for shard in self.shards if shard.guilds)

    def _compressor(self) -> Callable[[bytes], bytes] | None:
        if self.compression is Compression.NONE:
            return None
        return make_compressor(self.compression).compress

    # --- ids and world ---------------------------------------------------------------

    def flake(self, ms: int) -> int:
        self._increment = (self._increment + 1) & 0xFFF
        return snowflake(ms, self.worker, self.process, self._increment)

    def _past_ms(self, rng: random.Random, earliest_ms: int, latest_ms: int) -> int:
        return rng.randrange(earliest_ms, max(latest_ms, earliest_ms + 1))

    def _bot_user(self) -> JSON:
        # Resources > User > User Object, as READY and /users/@me carry it.
        return {
            "id": str(self.o.bot_id),
            "username": "synthbot",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "public_flags": 0,
        }

    def _guild(self, g: int) -> _Guild:
        rng = self.rng
        n = self.o.shards
        shard = g % n
        # The guild's creation time picks its shard: (id >> 22) % num_shards == shard.
        created_ms = self._past_ms(
            rng, DISCORD_EPOCH_MS + 86_400_000 * 365, SESSION_START_MS - 86_400_000 * 60
        )
        created_ms += (shard - (created_ms - DISCORD_EPOCH_MS)) % n
        guild_id = self.flake(created_ms)
        gid = str(guild_id)
        joined_ms = self._past_ms(rng, created_ms + 3_600_000, SESSION_START_MS - 86_400_000)
        base = _GUILD_WORDS[g % len(_GUILD_WORDS)]
        name = base if g < len(_GUILD_WORDS) else f"{base} {g // len(_GUILD_WORDS) + 1}"

        # Topics > Permissions > Role Object.
        roles: list[JSON] = [self._role(gid, "@everyone", 0, _PERM_EVERYONE, 0)]
        bot_role_id: str | None = None
        custom: list[str] = []
        for r in range(1, self.o.roles_per_guild):
            rid = str(self.flake(self._past_ms(rng, created_ms, joined_ms + 1)))
            if r == 1:
                bot_role_id = rid
                role = self._role(rid, "synthbot", r, _PERM_BOT, 0, managed=True)
                role["tags"] = {"bot_id": str(self.o.bot_id)}
            else:
                role_name = _ROLE_NAMES[(r - 2) % len(_ROLE_NAMES)]
                perms = {"Admin": _PERM_ADMIN, "Moderator": _PERM_MODERATOR}.get(
                    role_name, _PERM_MEMBER
                )
                color = rng.choice([0x3498DB, 0xE91E63, 0x2ECC71, 0xF1C40F, 0x9B59B6, 0])
                role = self._role(rid, role_name, r, perms, color, hoist=r == 2)
                custom.append(rid)
            roles.append(role)

        channels, text_ids, voice_id = self._channels(gid, created_ms)
        emojis: list[JSON] = []
        for e in range(rng.randrange(0, 3)):
            emojis.append(
                {
                    "id": str(self.flake(self._past_ms(rng, created_ms, SESSION_START_MS))),
                    "name": f"{rng.choice(_NOUNS)}_{e}",
                    "roles": [],
                    "require_colons": True,
                    "managed": False,
                    "animated": rng.random() < 0.2,
                    "available": True,
                }
            )
        features = sorted(rng.sample(_FEATURES, rng.randrange(0, 3)))
        members = self.o.members_per_guild
        voice_member = (
            rng.randrange(members)
            if voice_id is not None and members and rng.random() < 0.5
            else None
        )
        return _Guild(
            index=g,
            id=guild_id,
            shard=shard,
            name=name,
            created_ms=created_ms,
            joined_ms=joined_ms,
            owner=rng.randrange(members) if members else -1,
            roles=roles,
            custom_role_ids=custom,
            bot_role_id=bot_role_id,
            channels=channels,
            text_channel_ids=text_ids,
            voice_channel_id=voice_id,
            emojis=emojis,
            features=features,
            voice_member=voice_member,
        )

    @staticmethod
    def _role(
        rid: str,
        name: str,
        position: int,
        permissions: str,
        color: int,
        *,
        hoist: bool = False,
        managed: bool = False,
    ) -> JSON:
        return {
            "id": rid,
            "name": name,
            "description": None,
            "color": color,
            "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
            "hoist": hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": permissions,
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }

    def _channels(self, gid: str, created_ms: int) -> tuple[list[JSON], list[str], str | None]:
        """Resources > Channel > Channel Object: a category, text channels, a voice channel.

        GUILD_CREATE's channels carry no ``guild_id`` (the guild is implied), as Discord
        sends them."""
        rng = self.rng
        count = self.o.channels_per_guild
        n_text = count if count < 3 else count - 2
        category_id: str | None = None
        out: list[JSON] = []

        def new_id() -> str:
            return str(self.flake(self._past_ms(rng, created_ms, SESSION_START_MS - 3_600_000)))

        if count >= 2:
            category_id = new_id()
            out.append(
                {
                    "id": category_id,
                    "type": 4,
                    "name": "Text Channels",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                    "flags": 0,
                }
            )
        text_ids: list[str] = []
        for c in range(n_text):
            cid = new_id()
            text_ids.append(cid)
            name = _TEXT_CHANNELS[c % len(_TEXT_CHANNELS)]
            if c >= len(_TEXT_CHANNELS):
                name = f"{name}-{c // len(_TEXT_CHANNELS) + 1}"
            overwrites: list[JSON] = []
            if name == "announcements":  # Resources > Channel > Overwrite Object
                overwrites.append({"id": gid, "type": 0, "allow": "0", "deny": "2048"})
            last_ms = self._past_ms(rng, created_ms, SESSION_START_MS - 60_000)
            out.append(
                {
                    "id": cid,
                    "type": 0,
                    "name": name,
                    "position": c,
                    "permission_overwrites": overwrites,
                    "topic": None if c else "Say hi!",
                    "nsfw": False,
                    "last_message_id": str(self.flake(last_ms)),
                    "last_pin_timestamp": None,
                    "rate_limit_per_user": 0,
                    "parent_id": category_id,
                    "default_auto_archive_duration": 1440,
                    "flags": 0,
                }
            )
        voice_id: str | None = None
        if count >= 3:
            voice_id = new_id()
            out.append(
                {
                    "id": voice_id,
                    "type": 2,
                    "name": "General",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                    "parent_id": category_id,
                    "bitrate": 64000,
                    "user_limit": 0,
                    "rtc_region": None,
                    "video_quality_mode": 1,
                    "flags": 0,
                }
            )
        return out, text_ids, voice_id

    # --- members (built on demand from their own seed: a million members cost nothing) --

    def _build_member(self, g: int, k: int) -> tuple[JSON, JSON, str]:
        """Member ``k`` of guild ``g``: (user, partial member without user, status)."""
        guild = self.guilds[g]
        rng = random.Random((self.o.seed * 1_000_003 + g) * 4_000_037 + k)
        created_ms = self._past_ms(rng, DISCORD_EPOCH_MS + 86_400_000 * 30, guild.joined_ms)
        low = ((g & 0x3FF) << 12) | (k & 0xFFF)
        user_id = ((created_ms - DISCORD_EPOCH_MS) << 22) | low
        is_bot = rng.random() < 0.05
        adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
        username = f"{adjective}{noun}" + (str(rng.randrange(100)) if rng.random() < 0.6 else "")
        user: JSON = {
            "id": str(user_id),
            "username": username + ("bot" if is_bot else ""),
            "discriminator": f"{rng.randrange(1, 10000):04d}" if is_bot else "0",
            "global_name": None if is_bot or rng.random() < 0.2 else f"{adjective} {noun}".title(),
            "avatar": _hex(rng, 32) if rng.random() < 0.7 else None,
            "avatar_decoration_data": None,
            "public_flags": 0 if is_bot else rng.choice(_PUBLIC_FLAGS),
        }
        if is_bot:
            user["bot"] = True
        joined_ms = self._past_ms(rng, max(created_ms, guild.created_ms), SESSION_START_MS)
        custom = guild.custom_role_ids
        roles = sorted(rng.sample(custom, rng.randrange(0, min(len(custom), 2) + 1)))
        member: JSON = {
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
            "deaf": False,
            "flags": 0,
            "joined_at": iso_time(joined_ms),
            "mute": False,
            "nick": f"{noun}{rng.randrange(10)}" if rng.random() < 0.2 else None,
            "pending": False,
            "premium_since": iso_time(joined_ms + 86_400_000) if rng.random() < 0.05 else None,
            "roles": roles,
        }
        status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
        return user, member, status

    def member_with_user(self, g: int, k: int) -> JSON:
        """Resources > Guild > Guild Member Object, with its user."""
        if k < 0:
            return self._bot_member(self.guilds[g])
        user, member, _ = self._member(g, k)
        return {"user": user, **member}

    def _bot_member(self, guild: _Guild) -> JSON:
        return {
            "user": self.bot_user,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
            "deaf": False,
            "flags": 0,
            "joined_at": iso_time(guild.joined_ms),
            "mute": False,
            "nick": None,
            "pending": False,
            "premium_since": None,
            "roles": [guild.bot_role_id] if guild.bot_role_id else [],
        }

    def _activities(self, rng: random.Random, status: str, now_ms: int) -> list[JSON]:
        """Events > Gateway Events > Activity Object."""
        if status == "offline":
            return []
        roll = rng.random()
        started = now_ms - rng.randrange(60_000, 7_200_000)
        if roll < 0.35:
            return [
                {
                    "type": 0,
                    "name": rng.choice(_GAMES),
                    "id": _hex(rng, 16),
                    "created_at": started,
                    "timestamps": {"start": started},
                }
            ]
        if roll < 0.55:
            return [
                {
                    "type": 4,
                    "name": "Custom Status",
                    "state": rng.choice(_CUSTOM_STATUSES),
                    "id": "custom",
                    "created_at": started,
                }
            ]
        return []

    def _presence(self, g: int, k: int, status: str, now_ms: int, rng: random.Random) -> JSON:
        """Events > Gateway Events > Presence Update (``guild_id`` added by the caller)."""
        platform = rng.choice(("desktop", "desktop", "mobile", "web"))
        return {
            "user": {"id": self._member(g, k)[0]["id"]},
            "status": status,
            "client_status": {} if status == "offline" else {platform: status},
            "activities": self._activities(rng, status, now_ms),
        }

    # --- frames ------------------------------------------------------------------------

    def _frame(self, shard: _Shard, t_ns: int, direction: Direction, obj: JSON) -> FrameRecord:
        try:
            payload = encode_payload(obj, self.encoding)
        except CodecError as exc:  # a bug in this module, not the user's fault
            raise AssertionError(f"synthetic payload does not encode: {exc}") from exc
        self.payload_bytes += len(payload)
        wire_size = len(payload)
        if direction is Direction.SERVER and shard.compressor is not None:
            # Exact: the size this message takes in the connection's compression stream.
            wire_size = len(shard.compressor(payload))
        binary = not self.json_frames or (
            direction is Direction.SERVER and shard.compressor is not None
        )
        op = obj["op"]
        return FrameRecord(
            conn_id=shard.conn_id,
            t_ns=t_ns,
            direction=direction,
            frame_type=FrameType.BINARY if binary else FrameType.TEXT,
            payload=payload,
            op=op,
            s=obj.get("s"),
            t=obj.get("t"),
            wire_size=wire_size,
        )

    def _send_dispatch(self, shard: _Shard, t_ns: int, event: str, d: JSON) -> FrameRecord:
        return self._frame(shard, t_ns, Direction.SERVER, _dispatch(event, shard.next_s(), d))

    # --- scheduling ----------------------------------------------------------------------

    def _at(self, t_ns: int, action: Action) -> None:
        heapq.heappush(self._heap, (t_ns, next(self._order), action))

    def _ms(self, low: float, high: float) -> int:
        return round(self.rng.uniform(low, high) * _MS_NS)

    def records(self) -> Iterator[Record]:
        t = self._ms(2, 8)
        for record in self._http(t):
            yield record
            t = record.t_ns
        connect_ns = t + self._ms(20, 60)
        for shard in self.shards:
            start = connect_ns + shard.index * IDENTIFY_SPACING_MS * _MS_NS + self._ms(0, 40)
            self._schedule_setup(shard, start)
        self._at(min(s.ready_ns for s in self.shards) + self._ms(50, 500), self._event)
        while self._heap and not self._done:
            t_ns, _, action = heapq.heappop(self._heap)
            yield from action(t_ns)

    # --- REST --------------------------------------------------------------------------

    def _http(self, t_ns: int) -> Iterator[HttpRecord]:
        """What the client GETs before connecting: Resources > User > Get Current User,
        Resources > Application > Get Current Application, Topics > Gateway > Get Gateway Bot.
        """
        o = self.o
        rng = self.rng
        me = {
            **self.bot_user,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "banner_color": None,
            "clan": None,
            "primary_guild": None,
            "mfa_enabled": False,
            "locale": "en-US",
            "premium_type": 0,
            "email": None,
            "verified": True,
        }
        owner = {
            "id": str(snowflake(1_500_000_000_000, 1, 0, 1)),
            "username": "synthowner",
            "discriminator": "0",
            "avatar": None,
            "global_name": "Synth Owner",
            "public_flags": 0,
            "avatar_decoration_data": None,
        }
        application: JSON = {
            "id": str(o.bot_id),
            "name": "synthbot",
            "icon": None,
            "description": "A synthetic bot (replayer synth).",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": _hex(rng, 64),
            "flags": 565248,
            "owner": owner,
            "team": None,
            "hook": True,
            "guild_id": None,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "approximate_guild_count": o.guilds,
            "approximate_user_install_count": 0,
            "integration_types_config": {
                "0": {
                    "oauth2_install_params": {
                        "scopes": ["applications.commands", "bot"],
                        "permissions": "8",
                    }
                },
                "1": {},
            },
        }
        total = max(1000, 2 * o.shards)
        gateway = {
            "url": GATEWAY_URL,
            "shards": o.shards,
            "session_start_limit": {  # hikari refuses to start with fewer left than shards
                "total": total,
                "remaining": max(o.shards, total - rng.randrange(0, 20)),
                "reset_after": rng.randrange(1, 86_400_000),
                "max_concurrency": 1,
            },
        }
        for path, body in (
            ("/users/@me", me),
            ("/oauth2/applications/@me", application),
            ("/gateway/bot", gateway),
        ):
            yield HttpRecord(
                t_ns=t_ns,
                method="GET",
                host=REST_HOST,
                path=API + path,
                status=200,
                request_headers=(
                    ("Authorization", f"Bot {SYNTH_TOKEN}"),
                    ("User-Agent", USER_AGENT),
                ),
                response_headers=_response_headers(),
                response_body=json.dumps(body, separators=(",", ":")).encode(),
            )
            t_ns += self._ms(30, 90)

    # --- a shard's connection up to the end of its start-up -------------------------------

    def _schedule_setup(self, shard: _Shard, t: int) -> None:
        o = self.o
        n = o.shards
        i = shard.index
        query = Query(v=10, encoding=o.encoding, compress=o.compress)
        url = f"{GATEWAY_URL}/?v=10&encoding={o.encoding}"
        if o.compress:
            url += f"&compress={o.compress}"

        def one(record_of: Callable[[int], Record]) -> Action:
            return lambda t_ns: (record_of(t_ns),)

        self._at(
            t,
            one(
                lambda t_ns: ConnectionRecord(
                    conn_id=shard.conn_id,
                    t_ns=t_ns,
                    url=url,
                    query=query,
                    headers=(("User-Agent", "Python/3.12 aiohttp/3.14.5"),),
                    shard=None,
                )
            ),
        )
        hello_t = t + self._ms(30, 60)
        trace = f'["gateway-prd-us-east1-b-{_hex(self.rng, 4)}",{{"micros":0.0}}]'
        hello = {"heartbeat_interval": o.heartbeat_interval_ms, "_trace": [trace]}
        self._at(hello_t, self._server_action(shard, _server(Opcode.HELLO, hello)))
        heartbeat_t = hello_t + self._ms(0.5, 3)
        self._at(heartbeat_t, self._client_action(shard, lambda: _client(Opcode.HEARTBEAT, None)))
        identify_t = heartbeat_t + self._ms(0.2, 2)
        identify = {
            "token": SYNTH_TOKEN,
            "properties": {"os": "linux", "browser": "discord.py", "device": "discord.py"},
            "compress": False,
            "large_threshold": LARGE_THRESHOLD,
            "shard": [i, n],
            "intents": INTENTS,
        }
        self._at(identify_t, self._client_action(shard, lambda: _client(Opcode.IDENTIFY, identify)))
        self._at(
            identify_t,
            one(lambda t_ns: ConnectionInfoRecord(shard.conn_id, t_ns, shard=(i, n))),
        )
        ack_t = heartbeat_t + self._ms(20, 60)
        self._at(ack_t, self._server_action(shard, _server(Opcode.HEARTBEAT_ACK, None)))
        # discord.py and hikari beat at once after HELLO, then every interval from there.
        self._at(
            heartbeat_t + o.heartbeat_interval_ms * _MS_NS + self._ms(0, 3),
            self._heartbeat(shard),
        )
        ready_t = max(ack_t, identify_t + self._ms(80, 200)) + self._ms(0.5, 2)
        self._at(
            ready_t, lambda t_ns: (self._send_dispatch(shard, t_ns, "READY", self._ready(shard)),)
        )
        t = ready_t
        for guild in shard.guilds:
            # Bigger payloads take longer to arrive.
            t += self._ms(2, 15) + self._member_count(guild) * 2_000
            self._at(t, self._guild_create_action(shard, guild))
        for request in range(o.member_chunk_requests):
            if not self.guilds or self.guilds[request % len(self.guilds)].shard != i:
                continue
            guild = self.guilds[request % len(self.guilds)]
            t += self._ms(2, 10)
            nonce = _hex(self.rng, 32)
            d: JSON = {
                "guild_id": str(guild.id),
                "query": "",
                "limit": 0,
                "presences": False,
                "nonce": nonce,
            }
            self._at(t, self._client_action(shard, partial(_client, Opcode.REQUEST_MEMBERS, d)))
            t += self._ms(20, 60)
            total = self._member_count(guild)
            count = max(1, -(-total // MAX_CHUNK_MEMBERS))
            for index in range(count):
                self._at(t, self._chunk_action(shard, guild, index, count, nonce))
                size = min(MAX_CHUNK_MEMBERS, total - index * MAX_CHUNK_MEMBERS)
                t += self._ms(3, 15) + size * 5_000
        shard.ready_ns = t

    def _server_action(self, shard: _Shard, obj: JSON) -> Action:
        return lambda t_ns: (self._frame(shard, t_ns, Direction.SERVER, obj),)

    def _client_action(self, shard: _Shard, build: Callable[[], JSON]) -> Action:
        return lambda t_ns: (self._frame(shard, t_ns, Direction.CLIENT, build()),)

    def _heartbeat(self, shard: _Shard) -> Action:
        """``{"op": 1, "d": last s}`` every interval; the ACK comes one round trip later."""

        def beat(t_ns: int) -> Iterator[Record]:
            yield self._frame(shard, t_ns, Direction.CLIENT, _client(Opcode.HEARTBEAT, shard.s))
            ack = _server(Opcode.HEARTBEAT_ACK, None)
            self._at(t_ns + self._ms(20, 60), self._server_action(shard, ack))
            self._at(t_ns + self.o.heartbeat_interval_ms * _MS_NS + self._ms(0, 3), beat)

        return beat

    def _member_count(self, guild: _Guild) -> int:
        return self.o.members_per_guild + 1  # and the bot

    # --- dispatch payloads -------------------------------------------------------------

    def _ready(self, shard: _Shard) -> JSON:
        """Events > Gateway Events > Ready."""
        user = {**self.bot_user, "verified": True, "flags": 0, "mfa_enabled": False}
        return {
            "v": 10,
            "user_settings": {},
            "user": user,
            "session_type": "normal",
            "session_id": shard.session_id,
            "resume_gateway_url": RESUME_GATEWAY_URL,
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guilds": [{"id": str(g.id), "unavailable": True} for g in shard.guilds],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": GEO_REGIONS,
            "shard": [shard.index, self.o.shards],
            "application": {"id": str(self.o.bot_id), "flags": 565248},
            "_trace": [f'["gateway-prd-us-east1-b-{shard.index:04x}",{{"micros":108367}}]'],
        }

    def _guild_create_action(self, shard: _Shard, guild: _Guild) -> Action:
        return lambda t_ns: (
            self._send_dispatch(shard, t_ns, "GUILD_CREATE", self._guild_create(guild, t_ns)),
        )

    def _now_ms(self, t_ns: int) -> int:
        return SESSION_START_MS + t_ns // _MS_NS

    def _guild_create(self, guild: _Guild, t_ns: int) -> JSON:
        """Resources > Guild > Guild Object plus the Guild Create extra fields."""
        o = self.o
        g = guild.index
        now_ms = self._now_ms(t_ns)
        total = self._member_count(guild)
        large = total > LARGE_THRESHOLD
        rng = random.Random((o.seed * 7_919 + g) * 104_729 + t_ns)
        members: list[JSON] = [self._bot_member(guild)]
        presences: list[JSON] = []
        for k in range(o.members_per_guild):
            status = self._member(g, k)[2]
            online = status != "offline"
            in_voice = k == guild.voice_member
            # A large guild's GUILD_CREATE carries the online members and those in voice.
            if not large or in_voice or (online and len(presences) < MAX_ONLINE_IN_GUILD_CREATE):
                members.append(self.member_with_user(g, k))
                if online:
                    presences.append(self._presence(g, k, status, now_ms, rng))
        presences.append(
            {
                "user": {"id": self.bot_user["id"]},
                "status": "online",
                "client_status": {"web": "online"},
                "activities": [],
            }
        )
        voice_states: list[JSON] = []
        if guild.voice_member is not None and guild.voice_channel_id is not None:
            # Resources > Voice > Voice State Object (no guild_id/member inside GUILD_CREATE).
            voice_states.append(
                {
                    "channel_id": guild.voice_channel_id,
                    "user_id": self._member(g, guild.voice_member)[0]["id"],
                    "session_id": _hex(rng, 32),
                    "deaf": False,
                    "mute": False,
                    "self_deaf": False,
                    "self_mute": rng.random() < 0.3,
                    "self_stream": False,
                    "self_video": False,
                    "suppress": False,
                    "request_to_speak_timestamp": None,
                }
            )
        community = "COMMUNITY" in guild.features
        text = guild.text_channel_ids
        owner_id = self._member(g, guild.owner)[0]["id"] if guild.owner >= 0 else str(o.bot_id)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": _hex(rng, 32) if g % 3 else None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": owner_id,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2 if community else 0,
            "roles": guild.roles,
            "emojis": guild.emojis,
            "features": guild.features,
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": text[0] if text else None,
            "system_channel_flags": 0,
            "rules_channel_id": text[0] if community and text else None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": text[-1] if community and text else None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "incidents_data": None,
            "stickers": [],
            "lazy": True,
            "joined_at": iso_time(guild.joined_ms),
            "large": large,
            "unavailable": False,
            "member_count": total,
            "voice_states": voice_states,
            "members": members,
            "channels": guild.channels,
            "threads": [],
            "presences": presences,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _chunk_action(
        self, shard: _Shard, guild: _Guild, index: int, count: int, nonce: str
    ) -> Action:
        def chunk(t_ns: int) -> tuple[Record]:
            # Member -1 is the bot; members come in join order, 1000 per chunk at most.
            first = index * MAX_CHUNK_MEMBERS - 1
            last = min(first + MAX_CHUNK_MEMBERS, self.o.members_per_guild)
            d: JSON = {
                "guild_id": str(guild.id),
                "members": [self.member_with_user(guild.index, k) for k in range(first, last)],
                "chunk_index": index,
                "chunk_count": count,
                "nonce": nonce,
            }
            return (self._send_dispatch(shard, t_ns, "GUILD_MEMBERS_CHUNK", d),)

        return chunk

    # --- the event stream --------------------------------------------------------------

    def _event(self, t_ns: int) -> Iterator[Record]:
        o = self.o
        rng = self.rng
        target = o.target_bytes
        finished = not any(self._left.values()) if target is None else self.payload_bytes >= target
        if finished or not self.guilds:
            end = max(t_ns, *(s.ready_ns for s in self.shards)) + self._ms(500, 1500)
            self._at(end, self._finish)
            return
        ready = self._ready_shards
        if len(ready) < self._shards_with_guilds:
            ready = [s for s in self.shards if s.ready_ns < t_ns and s.guilds]
            if not ready:
                self._at(min(s.ready_ns for s in self.shards if s.guilds) + 1, self._event)
                return
            self._ready_shards = ready
        left = self._left
        if target is None:
            kind = rng.choices(self._kinds, list(left.values()))[0]
            left[kind] -= 1
        else:
            kind = rng.choices(self._kinds, cum_weights=self._cum_weights)[0]
        shard = rng.choice(ready)
        guild = rng.choice(shard.guilds)
        if kind == "MESSAGE_CREATE":
            d = self._message(guild, t_ns)
        elif kind == "PRESENCE_UPDATE":
            d = self._presence_update(guild, t_ns)
        else:
            d = self._typing(guild, t_ns)
        yield self._send_dispatch(shard, t_ns, kind, d)
        gap = rng.expovariate(1 / o.message_interval_ms) if o.message_interval_ms else 0.0
        self._at(t_ns + round(gap * _MS_NS), self._event)

    def _content(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.02:
            words = rng.randrange(150, 330)  # a wall of text, near the 2000-character limit
        elif roll < 0.25:
            words = rng.randrange(12, 40)
        else:
            words = rng.randrange(1, 12)
        return " ".join(rng.choices(_WORDS, k=words))[:2000]

    def _author(self, guild: _Guild) -> int:
        """A member index; a few members do most of the talking."""
        members = self.o.members_per_guild
        if not members:
            return -1
        return int(members * self.rng.random() ** 2)

    def _user_of(self, guild: _Guild, k: int) -> JSON:
        return self.bot_user if k < 0 else self._member(guild.index, k)[0]

    def _partial_member(self, guild: _Guild, k: int) -> JSON:
        if k < 0:
            member = dict(self._bot_member(guild))
            del member["user"]
            return member
        return self._member(guild.index, k)[1]

    def _channel(self, guild: _Guild) -> str:
        text = guild.text_channel_ids
        return text[0] if self.rng.random() < 0.5 else self.rng.choice(text)

    def _message(self, guild: _Guild, t_ns: int) -> JSON:
        """Resources > Message > Message Object, as MESSAGE_CREATE carries it."""
        rng = self.rng
        now_ms = self._now_ms(t_ns)
        channel_id = self._channel(guild)
        k = self._author(guild)
        message_id = str(self.flake(now_ms))
        content = self._contents[rng.randrange(len(self._contents))]
        mentions: list[JSON] = []
        if rng.random() < 0.1 and self.o.members_per_guild:
            other = rng.randrange(self.o.members_per_guild)
            user = self._member(guild.index, other)[0]
            content = f"<@{user['id']}> {content}"[:2000]
            mentions.append({**user, "member": self._partial_member(guild, other)})
        attachments: list[JSON] = []
        if rng.random() < 0.04:
            attachment_id = str(self.flake(now_ms))
            name = rng.choice(("image.png", "screenshot.png", "clip.mp4", "log.txt"))
            path = f"attachments/{channel_id}/{attachment_id}/{name}"
            expiry = f"?ex={now_ms // 1000 + 86400:x}&is={now_ms // 1000:x}&hm={_hex(rng, 64)}&"
            attachment: JSON = {
                "id": attachment_id,
                "filename": name,
                "size": rng.randrange(2_000, 8_000_000),
                "url": f"https://cdn.discordapp.com/{path}{expiry}",
                "proxy_url": f"https://media.discordapp.net/{path}{expiry}",
                "content_type": {"png": "image/png", "mp4": "video/mp4"}.get(
                    name.rsplit(".", 1)[1], "text/plain; charset=utf-8"
                ),
            }
            if name.endswith(".png"):
                attachment.update(
                    width=rng.choice((1920, 1280, 800)), height=rng.choice((1080, 720))
                )
            attachments.append(attachment)
        message: JSON = {
            "type": 0,
            "tts": False,
            "timestamp": iso_time(now_ms),
            "pinned": False,
            "mentions": mentions,
            "mention_roles": [],
            "mention_everyone": False,
            "member": self._partial_member(guild, k),
            "id": message_id,
            "flags": 0,
            "embeds": [],
            "edited_timestamp": None,
            "content": content,
            "components": [],
            "channel_id": channel_id,
            "author": self._user_of(guild, k),
            "attachments": attachments,
            "guild_id": str(guild.id),
        }
        if rng.random() < 0.8:  # sent from a client: it carries the client's nonce
            message["nonce"] = str(self.flake(now_ms - rng.randrange(50, 400)))
        return message

    def _presence_update(self, guild: _Guild, t_ns: int) -> JSON:
        """Events > Gateway Events > Presence Update."""
        rng = self.rng
        members = self.o.members_per_guild
        status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
        if not members:  # only the bot: its own presence
            return {
                "user": {"id": self.bot_user["id"]},
                "status": "online",
                "guild_id": str(guild.id),
                "client_status": {"web": "online"},
                "activities": [],
            }
        presence = self._presence(
            guild.index, rng.randrange(members), status, self._now_ms(t_ns), rng
        )
        return {
            "user": presence["user"],
            "status": presence["status"],
            "guild_id": str(guild.id),
            "client_status": presence["client_status"],
            "activities": presence["activities"],
        }

    def _typing(self, guild: _Guild, t_ns: int) -> JSON:
        """Events > Gateway Events > Typing Start (``timestamp`` in Unix seconds)."""
        k = self._author(guild)
        return {
            "user_id": self._user_of(guild, k)["id"],
            "timestamp": self._now_ms(t_ns) // 1000,
            "member": self.member_with_user(guild.index, k),
            "channel_id": self._channel(guild),
            "guild_id": str(guild.id),
        }

    # --- the end -----------------------------------------------------------------------

    def _finish(self, t_ns: int) -> Iterator[Record]:
        """The client shuts down: every shard closes with 1000 (unless told otherwise)."""
        self._done = True
        if not self.o.end_with_close:
            return
        for shard in self.shards:
            yield CloseRecord(shard.conn_id, t_ns, 1000, "", Closer.CLIENT, True)
            t_ns += self._ms(0.1, 2)


def _response_headers() -> Headers:
    return (
        ("Content-Type", "application/json"),
        ("Via", "1.1 google"),
        ("X-RateLimit-Limit", "5"),
        ("X-RateLimit-Remaining", "4"),
    )


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b?)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``500``, ``64KB``, ``200MB``, ``1.5GB``, ``1GiB`` -> bytes. Units are binary: 1 KB is
    1024 bytes (as ``replayer inspect --stats`` shows sizes); ``KiB`` is accepted too."""
    m = _SIZE.fullmatch(text)
    if not m or (m.group(3)[:1].lower() == "i" and not m.group(2)):
        raise ValueError(f"{text!r} is not a size like 200MB, 1GB or 1048576")
    scale = 1 << (10 * " kmgt".index(m.group(2).lower() or " "))
    return int(float(m.group(1)) * scale)


def synth_records(options: SynthOptions) -> Iterator[Record]:
    """The records of a synthetic session, in file order (``t_ns`` never goes back)."""
    return _Synth(options).records()


def write_synth(
    path: str | os.PathLike[str],
    options: SynthOptions,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a synthetic session to ``path``; return the number of records written.

    ``progress`` is called now and then, and once at the end, with the frame payload
    bytes written so far (what ``target_bytes`` counts). The archive is written to
    ``<path>.partial`` and renamed at the end, so an interrupted run leaves no half file.
    """
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    payload_bytes = 0
    try:
        with ArchiveWriter(tmp, metadata={"synthetic": True, "options": asdict(options)}) as writer:
            for count, record in enumerate(synth_records(options), start=1):
                writer.write(record)
                if type(record) is FrameRecord:
                    payload_bytes += len(record.payload)
                if progress is not None and count % 2048 == 0:
                    progress(payload_bytes)
            written = writer.records_written
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(payload_bytes)
    return written
