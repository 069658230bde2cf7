"""What the archive knows of each guild, for answering requests from state (issue #15,
item 9): members, presences, soundboard sounds and voice channel info.

Fed the recorded dispatches that carry such state, in recorded order (``feed``); each
item ends as last seen (a GUILD_MEMBER_REMOVE drops the member, a sound delete the sound).
Memory is proportional to what is indexed (members, sounds, channels), not to the archive.
Discord docs: Events > Gateway Events > Guilds (Guild Create, Guild Member Add / Update /
Remove, Guild Members Chunk), Presence > Presence Update, Soundboard, Channels (Channel
Info, Voice Channel Status Update, Voice Channel Start Time Update).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Dispatches that carry guild state; the script notes where they are (script.state_items).
STATE_EVENTS = frozenset(
    {
        "GUILD_CREATE",
        "GUILD_MEMBERS_CHUNK",
        "GUILD_MEMBER_ADD",
        "GUILD_MEMBER_UPDATE",
        "GUILD_MEMBER_REMOVE",
        "PRESENCE_UPDATE",
        "SOUNDBOARD_SOUNDS",
        "GUILD_SOUNDBOARD_SOUND_CREATE",
        "GUILD_SOUNDBOARD_SOUND_UPDATE",
        "GUILD_SOUNDBOARD_SOUND_DELETE",
        "GUILD_SOUNDBOARD_SOUNDS_UPDATE",
        "CHANNEL_CREATE",
        "CHANNEL_INFO",
        "VOICE_CHANNEL_STATUS_UPDATE",
        "VOICE_CHANNEL_START_TIME_UPDATE",
    }
)
# Channel Object > Channel Types: GUILD_VOICE and GUILD_STAGE_VOICE have voice sessions.
VOICE_CHANNEL_TYPES = frozenset({2, 13})


def snowflake_key(value: object) -> str | None:
    """A snowflake as a dict key (clients send strings or integers)."""
    if type(value) is int:
        return str(value)
    return value if isinstance(value, str) and value else None


@dataclass
class Guild:
    """One guild as the archive knows it."""

    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> member
    presences: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> presence
    sounds: dict[str, dict[str, Any]] = field(default_factory=dict)  # sound id -> sound
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # voice channel id -> info


@dataclass
class GuildState:
    """Every guild the archive knows, by id."""

    guilds: dict[str, Guild] = field(default_factory=dict)

    def guild(self, guild_id: object) -> Guild | None:
        key = snowflake_key(guild_id)
        return None if key is None else self.guilds.get(key)

    def _guild(self, guild_id: object) -> Guild | None:
        key = snowflake_key(guild_id)
        if key is None:
            return None
        return self.guilds.setdefault(key, Guild())

    def feed(self, event: str, d: Any) -> None:
        """One recorded dispatch (any other event, or a malformed one, is ignored)."""
        if not isinstance(d, dict):
            return
        if event == "GUILD_CREATE":
            self._guild_create(d)
            return
        guild = self._guild(d.get("guild_id"))
        if guild is None:
            return
        match event:
            case "GUILD_MEMBERS_CHUNK":
                _add_members(guild, d.get("members"))
                _add_presences(guild, d.get("presences"))
            case "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE":
                member = {k: v for k, v in d.items() if k != "guild_id"}
                user_id = _user_id(member)
                if user_id is not None:
                    # An update may carry only some fields: merge into what is known.
                    known = guild.members.get(user_id, {})
                    merged = {**known, **member}
                    if isinstance(known.get("user"), dict):
                        merged["user"] = {**known["user"], **member["user"]}
                    guild.members[user_id] = merged
            case "GUILD_MEMBER_REMOVE":
                user_id = _user_id(d)
                if user_id is not None:
                    guild.members.pop(user_id, None)
                    guild.presences.pop(user_id, None)
            case "PRESENCE_UPDATE":
                _add_presences(guild, [d])
            case "SOUNDBOARD_SOUNDS":  # the guild's whole list
                guild.sounds.clear()
                _add_sounds(guild, d.get("soundboard_sounds"))
            case "GUILD_SOUNDBOARD_SOUNDS_UPDATE":  # several sounds updated
                _add_sounds(guild, d.get("soundboard_sounds"))
            case "GUILD_SOUNDBOARD_SOUND_CREATE" | "GUILD_SOUNDBOARD_SOUND_UPDATE":
                _add_sounds(guild, [d])
            case "GUILD_SOUNDBOARD_SOUND_DELETE":
                key = snowflake_key(d.get("sound_id"))
                if key is not None:
                    guild.sounds.pop(key, None)
            case "CHANNEL_CREATE":
                _add_channels(guild, [d])
            case "CHANNEL_INFO":
                for info in d.get("channels") or ():
                    _channel_info(guild, info)
            case "VOICE_CHANNEL_STATUS_UPDATE" | "VOICE_CHANNEL_START_TIME_UPDATE":
                _channel_info(guild, d)

    def _guild_create(self, d: dict[str, Any]) -> None:
        if d.get("unavailable") is True:
            return  # an outage notice: no state in it
        guild = self._guild(d.get("id"))
        if guild is None:
            return
        _add_members(guild, d.get("members"))
        _add_presences(guild, d.get("presences"))
        _add_sounds(guild, d.get("soundboard_sounds"))
        _add_channels(guild, d.get("channels"))


def _user_id(obj: dict[str, Any]) -> str | None:
    user = obj.get("user")
    return snowflake_key(user.get("id")) if isinstance(user, dict) else None


def _add_members(guild: Guild, members: object) -> None:
    if not isinstance(members, list):
        return
    for member in members:
        if isinstance(member, dict):
            user_id = _user_id(member)
            if user_id is not None:
                guild.members[user_id] = member


def _add_presences(guild: Guild, presences: object) -> None:
    if not isinstance(presences, list):
        return
    for presence in presences:
        if isinstance(presence, dict):
            user_id = _user_id(presence)
            if user_id is not None:
                guild.presences[user_id] = {k: v for k, v in presence.items() if k != "guild_id"}


def _add_sounds(guild: Guild, sounds: object) -> None:
    if not isinstance(sounds, list):
        return
    for sound in sounds:
        if isinstance(sound, dict):
            key = snowflake_key(sound.get("sound_id"))
            if key is not None:
                guild.sounds[key] = sound


def _add_channels(guild: Guild, channels: object) -> None:
    if not isinstance(channels, list):
        return
    for channel in channels:
        if isinstance(channel, dict) and channel.get("type") in VOICE_CHANNEL_TYPES:
            key = snowflake_key(channel.get("id"))
            if key is not None:
                info = guild.channels.setdefault(key, {})
                if "status" in channel:
                    info["status"] = channel["status"]
                if "voice_start_time" in channel:
                    info["voice_start_time"] = channel["voice_start_time"]


def _channel_info(guild: Guild, obj: object) -> None:
    if not isinstance(obj, dict):
        return
    key = snowflake_key(obj.get("id"))
    if key is None:
        return
    info = guild.channels.setdefault(key, {})
    for name in ("status", "voice_start_time"):
        if name in obj:
            info[name] = obj[name]
