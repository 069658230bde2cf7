"""The world of a synthetic session: the bot user, its guilds (roles, channels, emojis,
features) and their members, presences and GUILD_CREATE payloads. Guilds are drawn from
the session's random generator up front; members are built on demand from their own seed,
so a million members cost nothing until they are sent."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from replayer.synth.ids import (
    DISCORD_EPOCH_MS,
    JSON,
    SESSION_START_MS,
    Mint,
    below,
    encode_json,
    iso_time,
    past_ms,
    random_hex,
    session_ms,
)
from replayer.synth.options import SynthOptions

LARGE_THRESHOLD = 250
MAX_ONLINE_IN_GUILD_CREATE = 1000


def words(text: str, sep: str | None = None) -> list[str]:
    return text.split(sep)


_ADJECTIVES = words(
    "quiet brave lucky sleepy clever fuzzy rapid silent cosmic golden crimson mellow "
    "witty frosty sunny stormy gentle hidden little mighty noble odd plain royal shy tiny "
    "wild"
)
_NOUNS = words(
    "otter falcon panda tiger comet pixel wizard badger ferret raven lynx koala gecko "
    "heron maple cedar nebula harbor meadow canyon ember willow quokka walrus puffin "
    "narwhal"
)
_GUILD_WORDS = words(
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
STATUSES = ("online", "idle", "dnd", "offline")
STATUS_WEIGHTS = (40, 15, 10, 35)
_PLATFORMS = ("desktop", "desktop", "mobile", "web")
_FEATURES = ["ANIMATED_ICON", "INVITE_SPLASH", "NEWS", "COMMUNITY", "BANNER"]
_PUBLIC_FLAGS = (0, 0, 0, 0, 0, 0, 0, 0, 64, 128, 256, 4194304)
_PERM_EVERYONE = "2248473465835073"
_PERM_MEMBER = "2251799813685247"
_PERM_MODERATOR = "1099511627775"
_PERM_ADMIN = "8"
_PERM_BOT = "8"


@dataclass
class Guild:
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


class World:
    """The bot and its guilds, drawn from ``rng`` when built; members on demand."""

    def __init__(self, options: SynthOptions, rng: random.Random, mint: Mint) -> None:
        self.o = options
        self.rng = rng
        self.flake = mint.flake
        self.bot_user = self._bot_user()
        self.bot_user_json = encode_json(self.bot_user)
        self.guilds = [self._guild(g) for g in range(options.guilds)]
        self.member = lru_cache(maxsize=4096)(self._build_member)
        self.member_json = lru_cache(maxsize=4096)(self._member_json)
        self._bot_json: dict[int, tuple[str, str]] = {}

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

    def _guild(self, g: int) -> Guild:
        rng = self.rng
        n = self.o.shards
        shard = g % n
        # The guild's creation time picks its shard: (id >> 22) % num_shards == shard.
        created_ms = past_ms(
            rng, DISCORD_EPOCH_MS + 86_400_000 * 365, SESSION_START_MS - 86_400_000 * 60
        )
        created_ms += (shard - (created_ms - DISCORD_EPOCH_MS)) % n
        guild_id = self.flake(created_ms)
        gid = str(guild_id)
        joined_ms = past_ms(rng, created_ms + 3_600_000, SESSION_START_MS - 86_400_000)
        base = _GUILD_WORDS[g % len(_GUILD_WORDS)]
        name = base if g < len(_GUILD_WORDS) else f"{base} {g // len(_GUILD_WORDS) + 1}"

        # Topics > Permissions > Role Object.
        roles: list[JSON] = [self._role(gid, "@everyone", 0, _PERM_EVERYONE, 0)]
        bot_role_id: str | None = None
        custom: list[str] = []
        for r in range(1, self.o.roles_per_guild):
            rid = str(self.flake(past_ms(rng, created_ms, joined_ms + 1)))
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
                    "id": str(self.flake(past_ms(rng, created_ms, SESSION_START_MS))),
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
        return Guild(
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
            return str(self.flake(past_ms(rng, created_ms, SESSION_START_MS - 3_600_000)))

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
            last_ms = past_ms(rng, created_ms, SESSION_START_MS - 60_000)
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

    def _build_member(self, g: int, k: int) -> tuple[JSON, JSON, str]:
        """Member ``k`` of guild ``g``: (user, partial member without user, status)."""
        guild = self.guilds[g]
        rng = random.Random((self.o.seed * 1_000_003 + g) * 4_000_037 + k)
        created_ms = past_ms(rng, DISCORD_EPOCH_MS + 86_400_000 * 30, guild.joined_ms)
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
            "avatar": random_hex(rng, 32) if rng.random() < 0.7 else None,
            "avatar_decoration_data": None,
            "public_flags": 0 if is_bot else rng.choice(_PUBLIC_FLAGS),
        }
        if is_bot:
            user["bot"] = True
        joined_ms = past_ms(rng, max(created_ms, guild.created_ms), SESSION_START_MS)
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
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        return user, member, status

    def _member_json(self, g: int, k: int) -> tuple[str, str, str]:
        """Member ``k`` of guild ``g`` as JSON (``encode_json``'s text): its user, its
        partial member and the member with its user (:meth:`member_with_user`); the bot's
        for ``k < 0``."""
        if k < 0:
            user_json = self.bot_user_json
            partial, with_user = self._bot_member_json(self.guilds[g])
        else:
            user, member, _ = self.member(g, k)
            user_json, partial = encode_json(user), encode_json(member)
            with_user = f'{{"user":{user_json},{partial[1:]}'
        return user_json, partial, with_user

    def _bot_member_json(self, guild: Guild) -> tuple[str, str]:
        """The bot's member of ``guild`` as JSON: without its user, and with it."""
        cached = self._bot_json.get(guild.index)
        if cached is None:
            member = self.bot_member(guild)
            with_user = encode_json(member)
            del member["user"]
            cached = self._bot_json[guild.index] = (encode_json(member), with_user)
        return cached

    def member_with_user(self, g: int, k: int) -> JSON:
        """Resources > Guild > Guild Member Object, with its user."""
        if k < 0:
            return self.bot_member(self.guilds[g])
        user, member, _ = self.member(g, k)
        return {"user": user, **member}

    def bot_member(self, guild: Guild) -> JSON:
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
                    "id": random_hex(rng, 16),
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

    def presence(self, g: int, k: int, status: str, now_ms: int, rng: random.Random) -> JSON:
        """Events > Gateway Events > Presence Update (``guild_id`` added by the caller)."""
        platform = rng.choice(_PLATFORMS)
        return {
            "user": {"id": self.member(g, k)[0]["id"]},
            "status": status,
            "client_status": {} if status == "offline" else {platform: status},
            "activities": self._activities(rng, status, now_ms),
        }

    def presence_json(
        self, g: int, k: int, status: str, now_ms: int, rng: random.Random, guild_id: str
    ) -> str:
        """:meth:`presence` with ``guild_id`` after ``status``, as a Presence Update's
        JSON text (``encode_json``'s), from the same draws."""
        platform = _PLATFORMS[below(rng.getrandbits, 4)]  # rng.choice(_PLATFORMS)
        client_status = "{}" if status == "offline" else f'{{"{platform}":"{status}"}}'
        activities = self._activities(rng, status, now_ms)
        return (
            f'{{"user":{{"id":"{self.member(g, k)[0]["id"]}"}},"status":"{status}",'
            f'"guild_id":"{guild_id}","client_status":{client_status},'
            f'"activities":{encode_json(activities) if activities else "[]"}}}'
        )

    def member_count(self, guild: Guild) -> int:
        return self.o.members_per_guild + 1  # and the bot

    def guild_create(self, guild: Guild, t_ns: int) -> JSON:
        """Resources > Guild > Guild Object plus the Guild Create extra fields."""
        o = self.o
        g = guild.index
        now_ms = session_ms(t_ns)
        total = self.member_count(guild)
        large = total > LARGE_THRESHOLD
        rng = random.Random((o.seed * 7_919 + g) * 104_729 + t_ns)
        members: list[JSON] = [self.bot_member(guild)]
        presences: list[JSON] = []
        for k in range(o.members_per_guild):
            status = self.member(g, k)[2]
            online = status != "offline"
            in_voice = k == guild.voice_member
            # A large guild's GUILD_CREATE carries the online members and those in voice.
            if not large or in_voice or (online and len(presences) < MAX_ONLINE_IN_GUILD_CREATE):
                members.append(self.member_with_user(g, k))
                if online:
                    presences.append(self.presence(g, k, status, now_ms, rng))
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
                    "user_id": self.member(g, guild.voice_member)[0]["id"],
                    "session_id": random_hex(rng, 32),
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
        owner_id = self.member(g, guild.owner)[0]["id"] if guild.owner >= 0 else str(o.bot_id)
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": random_hex(rng, 32) if g % 3 else None,
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
