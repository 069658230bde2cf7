"""Synthetic gateway sessions: a realistic, deterministic archive without a Discord at hand.

``synth_records(options)`` simulates one bot session as the recorder would have captured
it: the REST calls a client makes first, then per shard a gateway connection (HELLO,
HEARTBEAT, IDENTIFY, READY, one GUILD_CREATE per guild, member chunks), a stream of
MESSAGE_CREATE / PRESENCE_UPDATE / TYPING_START dispatches, heartbeats every interval and
a clean close; with ``voice``, the bot also joins a voice channel and holds a voice
connection (``synth/voice.py``). Everything comes from ``random.Random(seed)``: the same
options give the same records. Shards run concurrently: a small discrete-event scheduler
interleaves their frames by time, so ``t_ns`` never goes back across the whole file.
Records are produced one at a time (``target_bytes`` archives of gigabytes stream in
constant memory).

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
(tests/unit/synth/test_synth.py feeds the payloads to both libraries' real parsers).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import random
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
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
from replayer.archive.writer import ArchiveWriter, publish
from replayer.errors import CodecError
from replayer.gateway.compression import Compression, make_compressor
from replayer.gateway.encoding import Encoding, encode_payload
from replayer.gateway.opcodes import Direction, Opcode
from replayer.synth.activity import Activity
from replayer.synth.guilds import LARGE_THRESHOLD, Guild, World
from replayer.synth.ids import JSON, MS_NS, Mint, below, encode_json, random_hex, snowflake
from replayer.synth.options import SynthOptions
from replayer.synth.voice import VoiceSession

# What the client authenticates with; the archive writer redacts it (docs/archive-format.md §5).
SYNTH_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.synthetic.token"
API = "/api/v10"
REST_HOST = "discord.com"
GATEWAY_URL = "wss://gateway.discord.gg"
RESUME_GATEWAY_URL = "wss://gateway-us-east1-b.discord.gg"
INTENTS = 3276799  # every intent, privileged ones included
MAX_CHUNK_MEMBERS = 1000  # Events > Gateway Events > Guild Members Chunk
IDENTIFY_SPACING_MS = 5000  # Session Start Limit: max_concurrency (1) IDENTIFY per 5 s
USER_AGENT = "DiscordBot (https://github.com/Rapptz/discord.py 2.7.1) Python/3.12 aiohttp/3.14.5"
GEO_REGIONS = ["us-east", "us-central", "atlanta", "us-south", "newark", "us-west"]


def _encode_json(obj: JSON) -> bytes:
    return encode_json(obj).encode("utf-8")


def _dispatch(t: str, s: int, d: Any) -> JSON:
    # Discord sends the keys in this order.
    return {"t": t, "s": s, "op": int(Opcode.DISPATCH), "d": d}


def _server(op: int, d: Any) -> JSON:
    return {"t": None, "s": None, "op": op, "d": d}


def _client(op: int, d: Any) -> JSON:
    return {"op": op, "d": d}


@dataclass
class Shard:
    index: int
    conn_id: int
    guilds: list[Guild]
    session_id: str
    compressor: Callable[[bytes], bytes] | None
    s: int = 0
    ready_ns: int = 0  # when its start-up (READY, GUILD_CREATEs, member chunks) is over

    def next_s(self) -> int:
        self.s += 1
        return self.s


Action = Callable[[int], Iterable[Record]]


class _Session:
    """One synthetic session; :meth:`records` runs it. Not reusable."""

    def __init__(self, options: SynthOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.encoding = Encoding.parse(options.encoding)
        self.compression = Compression.parse(options.compress)
        self.json_frames = self.encoding is Encoding.JSON
        # The order of the draws from ``rng`` is the session: mint, guilds, message pool.
        mint = Mint(self.rng)
        self.payload_bytes = 0
        self._heap: list[tuple[int, int, Action]] = []
        self._order = itertools.count()
        self._done = False
        self.world = World(options, self.rng, mint)
        self.shards = [
            Shard(
                index=i,
                conn_id=i + 1,
                guilds=[g for g in self.world.guilds if g.shard == i],
                session_id=hashlib.blake2b(
                    f"{options.seed}:{i}".encode(), digest_size=16
                ).hexdigest(),
                compressor=self._compressor(),
            )
            for i in range(options.shards)
        ]
        self.activity = Activity(options, self.rng, mint, self.world)
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
        self._ready_shards: list[Shard] = []
        self._shards_with_guilds = sum(1 for shard in self.shards if shard.guilds)
        self.voice = self._voice_session() if options.voice else None

    def _voice_session(self) -> tuple[Shard, VoiceSession]:
        """The first guild with a voice channel, its shard, and the bot's voice session there
        (drawn from a random.Random of its own: every other draw stays as without voice)."""
        guild = next((g for g in self.world.guilds if g.voice_channel_id is not None), None)
        if guild is None:  # SynthOptions refuses this
            raise AssertionError("voice needs a guild with a voice channel")
        shard = self.shards[guild.shard]
        session = VoiceSession(
            conn_id=self.o.shards + 1,
            guild_id=str(guild.id),
            channel_id=str(guild.voice_channel_id),
            user_id=str(self.o.bot_id),
            rng=random.Random(f"voice:{self.o.seed}"),
        )
        return shard, session

    def _compressor(self) -> Callable[[bytes], bytes] | None:
        if self.compression is Compression.NONE:
            return None
        return make_compressor(self.compression).compress

    def _frame(self, shard: Shard, t_ns: int, direction: Direction, obj: JSON) -> FrameRecord:
        if self.json_frames:
            payload = _encode_json(obj)
        else:
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

    def _server_frame(self, shard: Shard, t_ns: int, payload: bytes, s: int, t: str) -> FrameRecord:
        """A dispatch whose JSON ``payload`` is made already: what :meth:`_frame` makes
        of the same object."""
        self.payload_bytes += len(payload)
        compressor = shard.compressor
        if compressor is None:
            return FrameRecord(
                shard.conn_id,
                t_ns,
                Direction.SERVER,
                FrameType.TEXT,
                payload,
                0,
                s,
                t,
                len(payload),
            )
        wire_size = len(compressor(payload))
        return FrameRecord(
            shard.conn_id, t_ns, Direction.SERVER, FrameType.BINARY, payload, 0, s, t, wire_size
        )

    def _send_dispatch(self, shard: Shard, t_ns: int, event: str, d: JSON) -> FrameRecord:
        return self._frame(shard, t_ns, Direction.SERVER, _dispatch(event, shard.next_s(), d))

    def _at(self, t_ns: int, action: Action) -> None:
        heapq.heappush(self._heap, (t_ns, next(self._order), action))

    def _ms(self, low: float, high: float) -> int:
        return round(self.rng.uniform(low, high) * MS_NS)

    def records(self) -> Iterator[Record]:
        t = self._ms(2, 8)
        for record in self._http(t):
            yield record
            t = record.t_ns
        connect_ns = t + self._ms(20, 60)
        for shard in self.shards:
            start = connect_ns + shard.index * IDENTIFY_SPACING_MS * MS_NS + self._ms(0, 40)
            self._schedule_setup(shard, start)
        self._at(min(s.ready_ns for s in self.shards) + self._ms(50, 500), self._event)
        if self.voice is not None:
            shard, voice = self.voice
            self._at(shard.ready_ns + round(voice.rng.uniform(100, 400) * MS_NS), self._voice_join)
        while self._heap and not self._done:
            t_ns, _, action = heapq.heappop(self._heap)
            yield from action(t_ns)

    def _http(self, t_ns: int) -> Iterator[HttpRecord]:
        """What the client GETs before connecting: Resources > User > Get Current User,
        Resources > Application > Get Current Application, Topics > Gateway > Get Gateway Bot.
        """
        o = self.o
        rng = self.rng
        me = {
            **self.world.bot_user,
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
            "verify_key": random_hex(rng, 64),
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

    def _schedule_setup(self, shard: Shard, t: int) -> None:
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
        trace = f'["gateway-prd-us-east1-b-{random_hex(self.rng, 4)}",{{"micros":0.0}}]'
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
            heartbeat_t + o.heartbeat_interval_ms * MS_NS + self._ms(0, 3),
            self._heartbeat(shard),
        )
        ready_t = max(ack_t, identify_t + self._ms(80, 200)) + self._ms(0.5, 2)
        self._at(
            ready_t, lambda t_ns: (self._send_dispatch(shard, t_ns, "READY", self._ready(shard)),)
        )
        t = ready_t
        for guild in shard.guilds:
            # Bigger payloads take longer to arrive.
            t += self._ms(2, 15) + self.world.member_count(guild) * 2_000
            self._at(t, self._guild_create_action(shard, guild))
        for request in range(o.member_chunk_requests):
            if (
                not self.world.guilds
                or self.world.guilds[request % len(self.world.guilds)].shard != i
            ):
                continue
            guild = self.world.guilds[request % len(self.world.guilds)]
            t += self._ms(2, 10)
            nonce = random_hex(self.rng, 32)
            d: JSON = {
                "guild_id": str(guild.id),
                "query": "",
                "limit": 0,
                "presences": False,
                "nonce": nonce,
            }
            self._at(t, self._client_action(shard, partial(_client, Opcode.REQUEST_MEMBERS, d)))
            t += self._ms(20, 60)
            total = self.world.member_count(guild)
            count = max(1, -(-total // MAX_CHUNK_MEMBERS))
            for index in range(count):
                self._at(t, self._chunk_action(shard, guild, index, count, nonce))
                size = min(MAX_CHUNK_MEMBERS, total - index * MAX_CHUNK_MEMBERS)
                t += self._ms(3, 15) + size * 5_000
        shard.ready_ns = t

    def _server_action(self, shard: Shard, obj: JSON) -> Action:
        return lambda t_ns: (self._frame(shard, t_ns, Direction.SERVER, obj),)

    def _client_action(self, shard: Shard, build: Callable[[], JSON]) -> Action:
        return lambda t_ns: (self._frame(shard, t_ns, Direction.CLIENT, build()),)

    def _heartbeat(self, shard: Shard) -> Action:
        """``{"op": 1, "d": last s}`` every interval; the ACK comes one round trip later."""

        def beat(t_ns: int) -> Iterator[Record]:
            yield self._frame(shard, t_ns, Direction.CLIENT, _client(Opcode.HEARTBEAT, shard.s))
            ack = _server(Opcode.HEARTBEAT_ACK, None)
            self._at(t_ns + self._ms(20, 60), self._server_action(shard, ack))
            self._at(t_ns + self.o.heartbeat_interval_ms * MS_NS + self._ms(0, 3), beat)

        return beat

    def _ready(self, shard: Shard) -> JSON:
        """Events > Gateway Events > Ready."""
        user = {**self.world.bot_user, "verified": True, "flags": 0, "mfa_enabled": False}
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

    def _guild_create_action(self, shard: Shard, guild: Guild) -> Action:
        return lambda t_ns: (
            self._send_dispatch(shard, t_ns, "GUILD_CREATE", self.world.guild_create(guild, t_ns)),
        )

    def _chunk_action(
        self, shard: Shard, guild: Guild, index: int, count: int, nonce: str
    ) -> Action:
        def chunk(t_ns: int) -> tuple[Record]:
            # Member -1 is the bot; members come in join order, 1000 per chunk at most.
            first = index * MAX_CHUNK_MEMBERS - 1
            last = min(first + MAX_CHUNK_MEMBERS, self.o.members_per_guild)
            d: JSON = {
                "guild_id": str(guild.id),
                "members": [
                    self.world.member_with_user(guild.index, k) for k in range(first, last)
                ],
                "chunk_index": index,
                "chunk_count": count,
                "nonce": nonce,
            }
            return (self._send_dispatch(shard, t_ns, "GUILD_MEMBERS_CHUNK", d),)

        return chunk

    def _event(self, t_ns: int) -> Iterator[Record]:
        """The event stream: one dispatch, then the next one a gap later. While the next
        one comes before anything else scheduled it follows at once, without a round
        trip through the scheduler (the same order: it would be popped next)."""
        o = self.o
        rng = self.rng
        random_, bits = rng.random, rng.getrandbits
        target = o.target_bytes
        heap = self._heap
        left = self._left
        kinds = self._kinds
        cum_weights = self._cum_weights
        total_weight = cum_weights[-1] + 0.0
        last_kind = len(kinds) - 1
        activity = self.activity
        json_frames = self.json_frames
        interval_ms = o.message_interval_ms
        while True:
            finished = not any(left.values()) if target is None else self.payload_bytes >= target
            if finished or not self.world.guilds:
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
            if target is None:
                kind = rng.choices(kinds, list(left.values()))[0]
                left[kind] -= 1
            else:  # rng.choices(kinds, cum_weights=cum_weights)[0], without its checks
                kind = kinds[bisect_right(cum_weights, random_() * total_weight, 0, last_kind)]
            shard = ready[below(bits, len(ready))]  # rng.choice(ready)
            guild = shard.guilds[below(bits, len(shard.guilds))]
            if not json_frames:
                if kind == "MESSAGE_CREATE":
                    d = activity.message(guild, t_ns)
                elif kind == "PRESENCE_UPDATE":
                    d = activity.presence_update(guild, t_ns)
                else:
                    d = activity.typing(guild, t_ns)
                yield self._send_dispatch(shard, t_ns, kind, d)
            else:  # the same payloads, as JSON text made without building them first
                if kind == "MESSAGE_CREATE":
                    d_json = activity.message_json(guild, t_ns)
                elif kind == "PRESENCE_UPDATE":
                    d_json = activity.presence_update_json(guild, t_ns)
                else:
                    d_json = activity.typing_json(guild, t_ns)
                s = shard.next_s()
                payload = f'{{"t":"{kind}","s":{s},"op":0,"d":{d_json}}}'.encode()
                yield self._server_frame(shard, t_ns, payload, s, kind)
            gap = rng.expovariate(1 / interval_ms) if interval_ms else 0.0
            t_ns += round(gap * MS_NS)
            if heap and heap[0][0] <= t_ns:
                self._at(t_ns, self._event)
                return

    def _voice_join(self, t_ns: int) -> Iterator[Record]:
        """op 4 VOICE_STATE_UPDATE, Discord's two answers, then the voice connection."""
        assert self.voice is not None
        shard, voice = self.voice
        yield self._frame(
            shard, t_ns, Direction.CLIENT,
            _client(Opcode.VOICE_STATE_UPDATE, voice.state_update_request()),
        )  # fmt: skip
        t_ns += round(voice.rng.uniform(20, 60) * MS_NS)
        yield self._send_dispatch(shard, t_ns, "VOICE_STATE_UPDATE", voice.voice_state())
        t_ns += round(voice.rng.uniform(1, 10) * MS_NS)
        yield self._send_dispatch(shard, t_ns, "VOICE_SERVER_UPDATE", voice.server_update())
        records, beat_ns = voice.handshake(t_ns + round(voice.rng.uniform(5, 30) * MS_NS))
        self.payload_bytes += sum(len(r.payload) for r in records if isinstance(r, FrameRecord))
        for record in records:  # in time order, but other frames may fall between
            self._at(record.t_ns, _emit(record))
        self._at(beat_ns, self._voice_heartbeat)

    def _voice_heartbeat(self, t_ns: int) -> Iterator[Record]:
        assert self.voice is not None
        voice = self.voice[1]
        if not voice.open:
            return
        records, next_ns = voice.heartbeat(t_ns)
        yield records[0]
        self.payload_bytes += sum(len(r.payload) for r in records if isinstance(r, FrameRecord))
        self._at(records[1].t_ns, _emit(records[1]))
        self._at(next_ns, self._voice_heartbeat)

    def _finish(self, t_ns: int) -> Iterator[Record]:
        """The client shuts down: every shard closes with 1000 (unless told otherwise), the
        voice connection first."""
        self._done = True
        if not self.o.end_with_close:
            return
        if self.voice is not None:
            close = self.voice[1].close(t_ns)
            if close is not None:
                yield close
                t_ns += self._ms(0.1, 2)
        for shard in self.shards:
            yield CloseRecord(shard.conn_id, t_ns, 1000, "", Closer.CLIENT, True)
            t_ns += self._ms(0.1, 2)


# Dispatches whose every byte synth draws itself, none a secret (no token, no "token"
# key): the archive writer's redaction leaves them as they are, so they skip it. The
# token goes in IDENTIFY and the HTTP headers, the voice token in VOICE_SERVER_UPDATE and
# the voice connection: those are redacted as any recorder's records are.
_OWN_EVENTS = frozenset(
    {"MESSAGE_CREATE", "PRESENCE_UPDATE", "TYPING_START", "GUILD_CREATE", "GUILD_MEMBERS_CHUNK"}
)


def _emit(record: Record) -> Action:
    """An action that yields ``record`` (already timed)."""
    return lambda t_ns: (record,)


def _response_headers() -> Headers:
    return (
        ("Content-Type", "application/json"),
        ("Via", "1.1 google"),
        ("X-RateLimit-Limit", "5"),
        ("X-RateLimit-Remaining", "4"),
    )


def synth_records(options: SynthOptions) -> Iterator[Record]:
    """The records of a synthetic session, in file order (``t_ns`` never goes back)."""
    return _Session(options).records()


def write_synth(
    path: str | os.PathLike[str],
    options: SynthOptions,
    progress: Callable[[int], None] | None = None,
    *,
    overwrite: bool = False,
) -> int:
    """Write a synthetic session to ``path``; return the number of records written. A
    file already at ``path`` is kept (:class:`FileExistsError`) unless ``overwrite``.

    ``progress`` is called now and then, and once at the end, with the frame payload
    bytes written so far (what ``target_bytes`` counts). The archive is written to
    ``<path>.partial`` and renamed at the end, so an interrupted run leaves no half file.
    """
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    payload_bytes = 0
    try:
        shown = asdict(options)
        if not options.voice:  # the metadata of the sessions before --voice existed
            del shown["voice"]
        metadata = {"synthetic": True, "options": shown}
        with ArchiveWriter(tmp, metadata=metadata, overwrite=True) as writer:
            # Records reach the file in big writes, not one system call each: until the
            # rename below nothing depends on the partial file.
            writer.hold()
            write, write_trusted = writer.write, writer.write_trusted
            for count, record in enumerate(synth_records(options), start=1):
                if type(record) is FrameRecord and record.t in _OWN_EVENTS:
                    write_trusted(record)  # redacting them would change nothing
                else:
                    write(record)
                if type(record) is FrameRecord:
                    payload_bytes += len(record.payload)
                if progress is not None and count % 2048 == 0:
                    progress(payload_bytes)
            written = writer.records_written
        publish(tmp, target, overwrite=overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(payload_bytes)
    return written
