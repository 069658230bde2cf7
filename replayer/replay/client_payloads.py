"""What a client sends, checked against its documented structure (issue #15, item 8).

Discord docs, Events > Gateway Events > Send Events: Update Presence (op 3), Update Voice
State (op 4), Request Guild Members (op 8), Request Soundboard Sounds (op 31), Request
Channel Info (op 43), and Identify's ``compress``, ``large_threshold`` and ``presence``.
An invalid payload closes the connection with 4001 ("You sent an invalid Gateway opcode
or an invalid payload for an opcode", Topics > Opcodes and Status Codes > Gateway Close
Event Codes). Each check returns why the payload is invalid, or None; fields the docs do
not list are let through, as Discord does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replayer.gateway.opcodes import Opcode

# Update Presence > Status Types.
STATUSES = frozenset({"online", "dnd", "idle", "invisible", "offline"})
# Activity Object > Activity Types: Playing, Streaming, Listening, Watching, Custom, Competing.
ACTIVITY_TYPES = range(6)
# Identify Structure: large_threshold is a "value between 50 and 250".
LARGE_THRESHOLD_MIN = 50
LARGE_THRESHOLD_MAX = 250
# Request Channel Info Structure: "The current available fields are status and voice_start_time".
CHANNEL_INFO_FIELDS = frozenset({"status", "voice_start_time"})
MAX_SNOWFLAKE = (1 << 64) - 1


def is_snowflake(value: object) -> bool:
    """A snowflake as clients send it: a string of digits, or an integer (ETF, discord.py)."""
    if type(value) is int:
        return 0 <= value <= MAX_SNOWFLAKE
    return isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit()


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_bool(value: object) -> bool:
    return type(value) is bool


def payload_problem(op: int, d: Any) -> str | None:
    """Why the payload of client opcode ``op`` breaks its documented structure, or None
    (opcodes without a structure here are not checked)."""
    check = _CHECKS.get(op)
    return None if check is None else check(d)


def identify_problem(d: dict[str, Any]) -> str | None:
    """Identify Structure: ``compress`` a boolean, ``large_threshold`` 50-250, ``presence``
    an Update Presence object (the other fields are other rules' business)."""
    if "compress" in d and not _is_bool(d["compress"]):
        return "IDENTIFY compress is not a boolean"
    if "large_threshold" in d:
        threshold = d["large_threshold"]
        if not _is_int(threshold) or not LARGE_THRESHOLD_MIN <= threshold <= LARGE_THRESHOLD_MAX:
            return (
                f"IDENTIFY large_threshold {threshold!r} is not an integer "
                f"{LARGE_THRESHOLD_MIN}-{LARGE_THRESHOLD_MAX}"
            )
    if d.get("presence") is not None:
        problem = presence_problem(d["presence"])
        if problem is not None:
            return f"IDENTIFY presence: {problem}"
    return None


def presence_problem(d: Any) -> str | None:
    """Gateway Presence Update Structure: since ?integer, activities (array of activity
    objects), status (a Status Type), afk boolean. Instead of ``activities`` a client may
    send the legacy ``game`` (one activity or null), which Discord still takes: hikari
    does, in IDENTIFY and op 3."""
    if not isinstance(d, dict):
        return "PRESENCE_UPDATE d is not an object"
    for name in ("since", "status", "afk"):
        if name not in d:
            return f"PRESENCE_UPDATE without {name}"
    if "activities" not in d:
        if "game" not in d:
            return "PRESENCE_UPDATE without activities"
        game = d["game"]
        return None if game is None else _activities_problem([game], "game")
    if d["since"] is not None and not _is_int(d["since"]):
        return "PRESENCE_UPDATE since is not an integer or null"
    if not isinstance(d["status"], str) or d["status"] not in STATUSES:
        return f"PRESENCE_UPDATE status {d['status']!r} is not one of {', '.join(sorted(STATUSES))}"
    if not _is_bool(d["afk"]):
        return "PRESENCE_UPDATE afk is not a boolean"
    activities = d["activities"]
    if not isinstance(activities, list):
        return "PRESENCE_UPDATE activities is not an array"
    return _activities_problem(activities, "activities")


def _activities_problem(activities: list[Any], field: str) -> str | None:
    """Activity Object: name (string) and type (integer) are required."""
    for i, activity in enumerate(activities):
        where = field if field == "game" else f"{field}[{i}]"
        if not isinstance(activity, dict):
            return f"PRESENCE_UPDATE {where} is not an object"
        if not isinstance(activity.get("name"), str):
            return f"PRESENCE_UPDATE {where} has no name string"
        if not _is_int(activity.get("type")) or activity["type"] not in ACTIVITY_TYPES:
            return f"PRESENCE_UPDATE {where} type {activity.get('type')!r} is unknown"
    return None


def voice_state_problem(d: Any) -> str | None:
    """Gateway Voice State Update Structure: guild_id, channel_id (null to leave),
    self_mute and self_deaf booleans. Those two may be left out, as Discord takes it:
    hikari's ``update_voice_state`` omits the ones not given."""
    if not isinstance(d, dict):
        return "VOICE_STATE_UPDATE d is not an object"
    if not is_snowflake(d.get("guild_id")):
        return "VOICE_STATE_UPDATE guild_id is not a snowflake"
    if "channel_id" not in d:
        return "VOICE_STATE_UPDATE without channel_id"
    if d["channel_id"] is not None and not is_snowflake(d["channel_id"]):
        return "VOICE_STATE_UPDATE channel_id is not a snowflake or null"
    for name in ("self_mute", "self_deaf"):
        if name in d and not _is_bool(d[name]):
            return f"VOICE_STATE_UPDATE {name} is not a boolean"
    return None


def request_members_problem(d: Any) -> str | None:
    """Request Guild Members Structure: guild_id (one guild), one of query or user_ids,
    limit with query, presences a boolean. An invalid nonce is not an error: "it will be
    ignored" (the note under the structure)."""
    if not isinstance(d, dict):
        return "REQUEST_GUILD_MEMBERS d is not an object"
    if not is_snowflake(d.get("guild_id")):
        return "REQUEST_GUILD_MEMBERS guild_id is not one snowflake"
    query, user_ids = d.get("query"), d.get("user_ids")
    if query is None and user_ids is None:
        return "REQUEST_GUILD_MEMBERS has neither query nor user_ids"
    if query is not None:
        if not isinstance(query, str):
            return "REQUEST_GUILD_MEMBERS query is not a string"
        if not _is_int(d.get("limit")) or d["limit"] < 0:
            return "REQUEST_GUILD_MEMBERS query without a limit (an integer >= 0)"
    elif "limit" in d and (not _is_int(d["limit"]) or d["limit"] < 0):
        return "REQUEST_GUILD_MEMBERS limit is not an integer >= 0"
    if user_ids is not None and not (
        is_snowflake(user_ids)
        or (isinstance(user_ids, list) and all(is_snowflake(u) for u in user_ids))
    ):
        return "REQUEST_GUILD_MEMBERS user_ids is not a snowflake or an array of snowflakes"
    if d.get("presences") is not None and not _is_bool(d["presences"]):
        return "REQUEST_GUILD_MEMBERS presences is not a boolean"
    return None


def request_soundboard_problem(d: Any) -> str | None:
    """Request Soundboard Sounds Structure: guild_ids, an array of snowflakes."""
    if not isinstance(d, dict):
        return "REQUEST_SOUNDBOARD_SOUNDS d is not an object"
    guild_ids = d.get("guild_ids")
    if not isinstance(guild_ids, list) or not all(is_snowflake(g) for g in guild_ids):
        return "REQUEST_SOUNDBOARD_SOUNDS guild_ids is not an array of snowflakes"
    return None


def request_channel_info_problem(d: Any) -> str | None:
    """Request Channel Info Structure: guild_id, and fields among status and
    voice_start_time."""
    if not isinstance(d, dict):
        return "REQUEST_CHANNEL_INFO d is not an object"
    if not is_snowflake(d.get("guild_id")):
        return "REQUEST_CHANNEL_INFO guild_id is not a snowflake"
    fields = d.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        return "REQUEST_CHANNEL_INFO fields is not an array of strings"
    unknown = [f for f in fields if f not in CHANNEL_INFO_FIELDS]
    if unknown:
        return f"REQUEST_CHANNEL_INFO asks for unknown field {unknown[0]!r}"
    return None


_CHECKS: dict[int, Callable[[Any], str | None]] = {
    Opcode.PRESENCE_UPDATE: presence_problem,
    Opcode.VOICE_STATE_UPDATE: voice_state_problem,
    Opcode.REQUEST_GUILD_MEMBERS: request_members_problem,
    Opcode.REQUEST_SOUNDBOARD_SOUNDS: request_soundboard_problem,
    Opcode.REQUEST_CHANNEL_INFO: request_channel_info_problem,
}
