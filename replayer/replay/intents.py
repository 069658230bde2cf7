"""Gateway intents, sans-I/O: which IDENTIFY intents are valid and allowed, and which
recorded dispatches (and which of their fields) a session with those intents gets.

Discord docs, Events > Gateway > Gateway Intents: "List of Intents" (the events of each
intent; events not listed are always sent), "Caveats", "Privileged Intents" (4014 for a
privileged intent the app is not granted) and "Message Content Intent" (the emptied
fields and their exceptions); Events > Gateway Events > Guild Create (members and
presences without GUILD_PRESENCES); Topics > Opcodes and Status Codes (4013, 4014);
Resources > Application > Application Flags (the GATEWAY_* grants).

The per-frame cost is one dict look-up per event name: :meth:`IntentFilter.decide` is
computed once per name and session, and only a dispatch whose verdict is ``INSPECT``
(a guild/DM split the session has only one side of, or fields to empty) is decoded.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any

from replayer.archive.records import HttpRecord
from replayer.errors import ReplayerError

# Events > Gateway > List of Intents.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MODERATION = 1 << 2
GUILD_EXPRESSIONS = 1 << 3
GUILD_INTEGRATIONS = 1 << 4
GUILD_WEBHOOKS = 1 << 5
GUILD_INVITES = 1 << 6
GUILD_VOICE_STATES = 1 << 7
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
GUILD_MESSAGE_TYPING = 1 << 11
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
DIRECT_MESSAGE_TYPING = 1 << 14
MESSAGE_CONTENT = 1 << 15
GUILD_SCHEDULED_EVENTS = 1 << 16
AUTO_MODERATION_CONFIGURATION = 1 << 20
AUTO_MODERATION_EXECUTION = 1 << 21
GUILD_MESSAGE_POLLS = 1 << 24
DIRECT_MESSAGE_POLLS = 1 << 25

INTENT_NAMES: dict[str, int] = {
    "GUILDS": GUILDS,
    "GUILD_MEMBERS": GUILD_MEMBERS,
    "GUILD_MODERATION": GUILD_MODERATION,
    "GUILD_EXPRESSIONS": GUILD_EXPRESSIONS,
    "GUILD_INTEGRATIONS": GUILD_INTEGRATIONS,
    "GUILD_WEBHOOKS": GUILD_WEBHOOKS,
    "GUILD_INVITES": GUILD_INVITES,
    "GUILD_VOICE_STATES": GUILD_VOICE_STATES,
    "GUILD_PRESENCES": GUILD_PRESENCES,
    "GUILD_MESSAGES": GUILD_MESSAGES,
    "GUILD_MESSAGE_REACTIONS": GUILD_MESSAGE_REACTIONS,
    "GUILD_MESSAGE_TYPING": GUILD_MESSAGE_TYPING,
    "DIRECT_MESSAGES": DIRECT_MESSAGES,
    "DIRECT_MESSAGE_REACTIONS": DIRECT_MESSAGE_REACTIONS,
    "DIRECT_MESSAGE_TYPING": DIRECT_MESSAGE_TYPING,
    "MESSAGE_CONTENT": MESSAGE_CONTENT,
    "GUILD_SCHEDULED_EVENTS": GUILD_SCHEDULED_EVENTS,
    "AUTO_MODERATION_CONFIGURATION": AUTO_MODERATION_CONFIGURATION,
    "AUTO_MODERATION_EXECUTION": AUTO_MODERATION_EXECUTION,
    "GUILD_MESSAGE_POLLS": GUILD_MESSAGE_POLLS,
    "DIRECT_MESSAGE_POLLS": DIRECT_MESSAGE_POLLS,
}
VALID_INTENTS = sum(INTENT_NAMES.values())  # any other bit gets 4013
# Events > Gateway > Privileged Intents.
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
# Resources > Application > Application Flags: the flags that grant each privileged
# intent (GATEWAY_* for apps in 100+ servers, GATEWAY_*_LIMITED below that).
GRANTING_FLAGS: dict[int, int] = {
    GUILD_PRESENCES: (1 << 12) | (1 << 13),
    GUILD_MEMBERS: (1 << 14) | (1 << 15),
    MESSAGE_CONTENT: (1 << 18) | (1 << 19),
}
# Short names that ``--grant-intents`` accepts besides the intents' own.
GRANT_ALIASES: dict[str, int] = {
    "MEMBERS": GUILD_MEMBERS,
    "PRESENCES": GUILD_PRESENCES,
    "PRESENCE": GUILD_PRESENCES,
}

# Events > Gateway > List of Intents: event -> (its intent in a guild, its intent in a DM).
# 0 on one side: the event does not exist there. Events not listed are always sent.
_GUILD_ONLY = {
    GUILDS: (
        "GUILD_CREATE GUILD_UPDATE GUILD_DELETE GUILD_ROLE_CREATE GUILD_ROLE_UPDATE "
        "GUILD_ROLE_DELETE CHANNEL_CREATE CHANNEL_UPDATE CHANNEL_DELETE THREAD_CREATE "
        "THREAD_UPDATE THREAD_DELETE THREAD_LIST_SYNC THREAD_MEMBER_UPDATE "
        "THREAD_MEMBERS_UPDATE STAGE_INSTANCE_CREATE STAGE_INSTANCE_UPDATE "
        "STAGE_INSTANCE_DELETE VOICE_CHANNEL_STATUS_UPDATE VOICE_CHANNEL_START_TIME_UPDATE"
    ),
    GUILD_MEMBERS: "GUILD_MEMBER_ADD GUILD_MEMBER_UPDATE GUILD_MEMBER_REMOVE",
    GUILD_MODERATION: "GUILD_AUDIT_LOG_ENTRY_CREATE GUILD_BAN_ADD GUILD_BAN_REMOVE",
    GUILD_EXPRESSIONS: (
        "GUILD_EMOJIS_UPDATE GUILD_STICKERS_UPDATE GUILD_SOUNDBOARD_SOUND_CREATE "
        "GUILD_SOUNDBOARD_SOUND_UPDATE GUILD_SOUNDBOARD_SOUND_DELETE "
        "GUILD_SOUNDBOARD_SOUNDS_UPDATE"
    ),
    GUILD_INTEGRATIONS: (
        "GUILD_INTEGRATIONS_UPDATE INTEGRATION_CREATE INTEGRATION_UPDATE INTEGRATION_DELETE"
    ),
    GUILD_WEBHOOKS: "WEBHOOKS_UPDATE",
    GUILD_INVITES: "INVITE_CREATE INVITE_DELETE",
    GUILD_VOICE_STATES: "VOICE_CHANNEL_EFFECT_SEND VOICE_STATE_UPDATE",
    GUILD_PRESENCES: "PRESENCE_UPDATE",
    GUILD_MESSAGES: "MESSAGE_DELETE_BULK",
    GUILD_SCHEDULED_EVENTS: (
        "GUILD_SCHEDULED_EVENT_CREATE GUILD_SCHEDULED_EVENT_UPDATE "
        "GUILD_SCHEDULED_EVENT_DELETE GUILD_SCHEDULED_EVENT_USER_ADD "
        "GUILD_SCHEDULED_EVENT_USER_REMOVE"
    ),
    AUTO_MODERATION_CONFIGURATION: (
        "AUTO_MODERATION_RULE_CREATE AUTO_MODERATION_RULE_UPDATE AUTO_MODERATION_RULE_DELETE"
    ),
    AUTO_MODERATION_EXECUTION: "AUTO_MODERATION_ACTION_EXECUTION",
}
_SPLIT = {  # (guild intent, DM intent): the payload's guild_id says which applies
    (GUILD_MESSAGES, DIRECT_MESSAGES): "MESSAGE_CREATE MESSAGE_UPDATE MESSAGE_DELETE",
    (GUILDS, DIRECT_MESSAGES): "CHANNEL_PINS_UPDATE",
    (GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS): (
        "MESSAGE_REACTION_ADD MESSAGE_REACTION_REMOVE MESSAGE_REACTION_REMOVE_ALL "
        "MESSAGE_REACTION_REMOVE_EMOJI"
    ),
    (GUILD_MESSAGE_TYPING, DIRECT_MESSAGE_TYPING): "TYPING_START",
    (GUILD_MESSAGE_POLLS, DIRECT_MESSAGE_POLLS): "MESSAGE_POLL_VOTE_ADD MESSAGE_POLL_VOTE_REMOVE",
}
EVENT_INTENTS: dict[str, tuple[int, int]] = {
    **{name: (bit, 0) for bit, names in _GUILD_ONLY.items() for name in names.split()},
    **{name: pair for pair, names in _SPLIT.items() for name in names.split()},
}
# Events > Gateway > Message Content Intent: the message fields emptied without it.
MESSAGE_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE"})
# ``content`` becomes "", these become [], ``poll`` goes.
LIST_CONTENT_FIELDS = ("embeds", "attachments", "components")


class IntentsError(ReplayerError):
    """A ``--grant-intents`` value that names no intents."""


class Decision(enum.Enum):
    SEND = "send"  # as recorded
    DROP = "drop"  # the session did not ask for it
    INSPECT = "inspect"  # decode: guild or DM, or fields to empty


def invalid_bits(intents: int) -> int:
    """The bits of ``intents`` that name no intent (4013: Invalid intent(s))."""
    return intents & ~VALID_INTENTS if intents >= 0 else -1


def names(intents: int) -> str:
    """``GUILD_MEMBERS|MESSAGE_CONTENT``: the intents of a bit set, by name."""
    return "|".join(n for n, bit in INTENT_NAMES.items() if intents & bit) or "none"


def granted_by_flags(flags: int) -> int:
    """The privileged intents that application ``flags`` grant."""
    return sum(intent for intent, grant in GRANTING_FLAGS.items() if flags & grant)


def parse_grant(text: str) -> int:
    """``--grant-intents``: ``all``, ``none``, a number, or names joined by ``,`` or ``|``
    (``GUILD_MEMBERS``, ``members``, ``presences``, ``message_content``). Only privileged
    intents need a grant; others given are ignored."""
    value = text.strip()
    if value.lower() == "all":
        return PRIVILEGED_INTENTS
    if value.lower() in ("none", ""):
        return 0
    if value.isdigit():
        return int(value) & PRIVILEGED_INTENTS
    out = 0
    for part in value.replace("|", ",").split(","):
        name = part.strip().upper()
        bit = INTENT_NAMES.get(name) or GRANT_ALIASES.get(name)
        if bit is None:
            known = "all, none, members, presences, message_content or a number"
            raise IntentsError(f"--grant-intents: unknown intent {part.strip()!r} ({known})")
        out |= bit
    return out & PRIVILEGED_INTENTS


APPLICATION_PATHS = ("/oauth2/applications/@me", "/applications/@me")


def recorded_grants(
    identify_intents: Iterable[int], application: Mapping[str, Any] | None, http: list[HttpRecord]
) -> int:
    """The privileged intents the recording shows the application has.

    Application flags (a recorded ``GET /oauth2/applications/@me`` or
    ``/applications/@me``, or READY's ``application.flags``) say what it is granted; a
    recorded IDENTIFY that got READY proves its privileged intents were granted too.
    Without any recorded flags the recording cannot show a refusal: all are granted."""
    flags: list[int] = []
    if application is not None and type(application.get("flags")) is int:
        flags.append(application["flags"])
    for record in http:
        path = record.path.split("?", 1)[0]
        if record.method != "GET" or record.status != 200 or not path.endswith(APPLICATION_PATHS):
            continue
        try:
            body = json.loads(record.response_body)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(body, dict) and type(body.get("flags")) is int:
            flags.append(body["flags"])
    if not flags:
        return PRIVILEGED_INTENTS
    granted = 0
    for value in flags:
        granted |= granted_by_flags(value)
    for intents in identify_intents:
        granted |= intents & PRIVILEGED_INTENTS
    return granted


def _id(obj: Any) -> str | None:
    value = obj.get("id") if isinstance(obj, dict) else None
    return str(value) if value is not None else None


class IntentFilter:
    """What one session with ``intents`` gets of the recorded dispatches."""

    def __init__(self, intents: int, bot_id: str | None) -> None:
        self.intents = intents
        self.bot_id = bot_id
        self.decisions: dict[str, Decision] = {}  # the hot path reads this first

    @staticmethod
    def needed(intents: int) -> bool:
        """False when every recorded dispatch goes out as recorded (every intent): the
        session then needs no filter, and costs nothing per dispatch."""
        return intents & VALID_INTENTS != VALID_INTENTS

    def decide(self, event: str) -> Decision:
        """Once per event name: send it as recorded, drop it, or inspect its payload."""
        decision = self.decisions.get(event)
        if decision is None:
            decision = self.decisions[event] = self._decide(event)
        return decision

    def _decide(self, event: str) -> Decision:
        intents = self.intents
        if event in MESSAGE_EVENTS and not intents & MESSAGE_CONTENT:
            return (
                Decision.INSPECT if intents & (GUILD_MESSAGES | DIRECT_MESSAGES) else Decision.DROP
            )
        if event == "GUILD_CREATE" and intents & GUILDS and not intents & GUILD_PRESENCES:
            return Decision.INSPECT
        if event == "GUILD_MEMBER_UPDATE" and not intents & GUILD_MEMBERS:
            return Decision.INSPECT  # Caveats: the bot's own member updates still come
        pair = EVENT_INTENTS.get(event)
        if pair is None:
            return Decision.SEND
        guild, dm = pair
        wants_guild = bool(intents & guild)
        wants_dm = bool(dm and intents & dm)
        if wants_guild and (wants_dm or not dm):
            return Decision.SEND
        if not wants_guild and not wants_dm:
            return Decision.DROP
        return Decision.INSPECT

    def apply(self, event: str, d: Any) -> Any | None:
        """An ``INSPECT`` dispatch's ``d`` as this session gets it; None: not sent."""
        if not isinstance(d, dict):
            return d
        if event == "GUILD_CREATE":
            return self._guild_create(d)
        if event == "GUILD_MEMBER_UPDATE":
            return d if _id(d.get("user")) == self.bot_id else None
        pair = EVENT_INTENTS.get(event)
        if pair is not None:
            in_guild = d.get("guild_id") is not None
            if not self.intents & (pair[0] if in_guild else pair[1]):
                return None
        if event in MESSAGE_EVENTS and not self.intents & MESSAGE_CONTENT:
            return self._message(d)
        return d

    def _message(self, d: dict[str, Any]) -> dict[str, Any]:
        """Message Content Intent: empty values except in DMs, the bot's own messages and
        messages that mention it."""
        if d.get("guild_id") is None or self.bot_id is None:
            return d
        if _id(d.get("author")) == self.bot_id:
            return d
        mentions = d.get("mentions")
        if isinstance(mentions, list) and any(_id(u) == self.bot_id for u in mentions):
            return d
        out = dict(d)
        if "content" in out:
            out["content"] = ""
        for key in LIST_CONTENT_FIELDS:
            if key in out:
                out[key] = []
        out.pop("poll", None)
        return out

    def _guild_create(self, d: dict[str, Any]) -> dict[str, Any]:
        """Guild Create: without GUILD_PRESENCES, members and presences hold only the bot
        and the users in voice channels."""
        voice = d.get("voice_states")
        keep = (
            {self.bot_id} | {str(v.get("user_id")) for v in voice if isinstance(v, dict)}
            if isinstance(voice, list)
            else {self.bot_id}
        )
        out = dict(d)
        members = d.get("members")
        if isinstance(members, list):
            out["members"] = [
                m for m in members if isinstance(m, dict) and _id(m.get("user")) in keep
            ]
        presences = d.get("presences")
        if isinstance(presences, list):
            out["presences"] = [
                p for p in presences if isinstance(p, dict) and _id(p.get("user")) in keep
            ]
        return out


def missing_from_recording(client: int, recorded: Iterable[int]) -> int:
    """Intents the client asks for that no recorded session had: the archive cannot hold
    their events (said once at start)."""
    values = list(recorded)
    if not values:
        return 0  # the recording does not say: nothing to warn about
    had = 0
    for value in values:
        had |= value
    return client & ~had & VALID_INTENTS


def intents_refusal(intents: Any, granted: int) -> tuple[int, str] | None:
    """IDENTIFY's ``intents`` refused: (close code, reason), or None. An IDENTIFY without
    intents is item 4's rule (4013 from v8 on), not this one."""
    if intents is None:
        return None
    if type(intents) is not int or invalid_bits(intents):
        bits = invalid_bits(intents) if type(intents) is int else intents
        return 4013, f"invalid intent(s): {bits!r}"[:120]
    denied = intents & PRIVILEGED_INTENTS & ~granted
    if denied:
        return 4014, f"disallowed intent(s): {names(denied)} (see --grant-intents)"
    return None


def intents_notice(client: int, recorded: Iterable[int]) -> str | None:
    """The start-up notice for a client asking for intents no recorded session had."""
    missing = missing_from_recording(client, recorded)
    if not missing:
        return None
    return (
        f"the client asks for intents the recording was made without ({names(missing)}): "
        "the archive cannot hold their events"
        + (" nor message content" if missing & MESSAGE_CONTENT else "")
    )
