"""Client requests answered from the archive's state (issue #15, item 9), pure.

Discord docs, Events > Gateway Events:
- Request Guild Members (op 8) -> Guild Members Chunk: ``query`` is a username prefix (at
  most 100 members), ``user_ids`` (at most 100, the rest in ``not_found``), ``limit``,
  ``presences`` only with GUILD_PRESENCES, at most 1000 members per chunk with
  ``chunk_index``/``chunk_count``, the nonce echoed only when valid (a string of at most
  32 bytes); the entire member list (``query=""``) needs GUILD_MEMBERS: without it, no
  answer.
- Change Log 2025-08-14, "Introducing Rate Limit When Requesting All Guild Members": one
  all-members request (``query=""``, ``limit=0``) per guild per bot every 30 s; the next
  gets RATE_LIMITED ``{opcode: 8, retry_after, meta: {guild_id, nonce}}`` (Rate Limited).
- Request Soundboard Sounds (op 31) -> one Soundboard Sounds per requested guild.
- Request Channel Info (op 43) -> Channel Info with only the fields asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replayer.gateway.opcodes import Opcode
from replayer.replay.guild_state import GuildState, snowflake_key
from replayer.replay.verdicts import Result, Verdict

# Gateway > List of Intents.
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
MEMBERS_PER_CHUNK = 1000  # Request Guild Members: "up to 1000 members per chunk"
MAX_QUERY_MEMBERS = 100  # "Requesting a prefix ... will return a maximum of 100 members"
MAX_USER_IDS_MEMBERS = 100  # "Requesting user_ids will continue to be limited to ... 100"
MAX_NONCE_BYTES = 32  # "Nonce can only be up to 32 bytes"
MEMBER_RATE_LIMIT_S = 30.0  # Change Log 2025-08-14
NS_PER_S = 1_000_000_000
DOCS_REQUEST_MEMBERS = (
    "Events > Gateway Events > Request Guild Members; Rate Limited; "
    "Change Log 2025-08-14 (Rate Limit When Requesting All Guild Members)"
)


def valid_nonce(d: dict[str, Any]) -> str | None:
    """The request's nonce if Discord would echo it: a string of at most 32 bytes."""
    nonce = d.get("nonce")
    if isinstance(nonce, str) and len(nonce.encode("utf-8")) <= MAX_NONCE_BYTES:
        return nonce
    return None


def is_all_members(d: dict[str, Any]) -> bool:
    """A request for the entire member list: ``query=""`` (any limit; the rate limit is
    for ``limit=0``), no ``user_ids``."""
    return d.get("user_ids") is None and d.get("query") == ""


def _matches(member: dict[str, Any], prefix: str) -> bool:
    user = member.get("user")
    username = user.get("username") if isinstance(user, dict) else None
    names = (username, member.get("nick"))
    return any(isinstance(n, str) and n.casefold().startswith(prefix) for n in names)


def member_chunks(state: GuildState, d: dict[str, Any], intents: int) -> list[dict[str, Any]]:
    """The GUILD_MEMBERS_CHUNK payloads (``d``) that answer a valid op 8 request from a
    session with ``intents``; none for a guild the archive does not know, or an
    all-members request without GUILD_MEMBERS."""
    guild = state.guild(d.get("guild_id"))
    if guild is None or (is_all_members(d) and not intents & GUILD_MEMBERS):
        return []
    not_found: list[str] | None = None
    user_ids = d.get("user_ids")
    if user_ids is not None:
        given = user_ids if isinstance(user_ids, list) else [user_ids]
        wanted = [u for u in dict.fromkeys(map(snowflake_key, given)) if u is not None]
        ids = [u for u in wanted if u in guild.members][:MAX_USER_IDS_MEMBERS]
        not_found = [u for u in wanted if u not in guild.members]
    else:
        query = str(d.get("query", ""))
        limit = int(d.get("limit", 0))
        if query:
            prefix = query.casefold()
            cap = min(limit, MAX_QUERY_MEMBERS) if limit else MAX_QUERY_MEMBERS
            ids = []
            for user_id, member in guild.members.items():
                if len(ids) >= cap:
                    break
                if _matches(member, prefix):
                    ids.append(user_id)
        else:
            ids = list(guild.members)
            if limit:
                ids = ids[:limit]
    presences = d.get("presences") is True and bool(intents & GUILD_PRESENCES)
    nonce = valid_nonce(d)
    guild_id = snowflake_key(d.get("guild_id"))
    count = max(1, -(-len(ids) // MEMBERS_PER_CHUNK))
    chunks: list[dict[str, Any]] = []
    for index in range(count):
        part = ids[index * MEMBERS_PER_CHUNK : (index + 1) * MEMBERS_PER_CHUNK]
        chunk: dict[str, Any] = {
            "guild_id": guild_id,
            "members": [guild.members[u] for u in part],
            "chunk_index": index,
            "chunk_count": count,
        }
        if not_found is not None and index == 0:
            chunk["not_found"] = not_found
        if presences:
            chunk["presences"] = [guild.presences[u] for u in part if u in guild.presences]
        if nonce is not None:
            chunk["nonce"] = nonce
        chunks.append(chunk)
    return chunks


def answer_members(
    state: GuildState, limit: MemberRateLimit, d: dict[str, Any], intents: int, now_ns: int
) -> tuple[str, list[dict[str, Any]]]:
    """What answers a valid op 8 request: ``("GUILD_MEMBERS_CHUNK", chunks)``, or
    ``("RATE_LIMITED", [d])`` past the rate limit. A request that gets no answer anyway
    (no GUILD_MEMBERS) does not count towards the limit."""
    if is_all_members(d) and not intents & GUILD_MEMBERS:
        return "GUILD_MEMBERS_CHUNK", []
    retry_after_s = limit.check(d, now_ns)
    if retry_after_s is not None:
        return "RATE_LIMITED", [rate_limited(Opcode.REQUEST_GUILD_MEMBERS, d, retry_after_s)]
    return "GUILD_MEMBERS_CHUNK", member_chunks(state, d, intents)


def rate_limited(op: int, d: Any, retry_after_s: float) -> dict[str, Any]:
    """RATE_LIMITED's ``d`` for a request (Rate Limited Fields): the metadata names the
    request's guild and its nonce (Request Guild Member Rate Limit Metadata)."""
    meta: dict[str, Any] = {}
    if op == Opcode.REQUEST_GUILD_MEMBERS and isinstance(d, dict):
        meta["guild_id"] = snowflake_key(d.get("guild_id"))
        nonce = d.get("nonce")
        if isinstance(nonce, str):
            meta["nonce"] = nonce
    return {"opcode": int(op), "retry_after": retry_after_s, "meta": meta}


def soundboard_sounds(state: GuildState, d: dict[str, Any]) -> list[dict[str, Any]]:
    """One SOUNDBOARD_SOUNDS ``d`` per requested guild the archive knows, in request order."""
    out = []
    for guild_id in dict.fromkeys(snowflake_key(g) for g in d.get("guild_ids", [])):
        guild = state.guild(guild_id)
        if guild is not None:
            out.append({"soundboard_sounds": list(guild.sounds.values()), "guild_id": guild_id})
    return out


def channel_info(state: GuildState, d: dict[str, Any]) -> dict[str, Any] | None:
    """CHANNEL_INFO's ``d``: each voice channel the archive knows, with only the fields
    asked for (null when the archive does not know the value); None for an unknown guild."""
    guild = state.guild(d.get("guild_id"))
    if guild is None:
        return None
    fields = list(dict.fromkeys(d.get("fields", [])))
    channels = [
        {"id": channel_id, **{name: info.get(name) for name in fields}}
        for channel_id, info in guild.channels.items()
    ]
    return {"guild_id": snowflake_key(d.get("guild_id")), "channels": channels}


@dataclass
class MemberRateLimit:
    """The 2025 rate limit, for one bot (one replay): one all-members request per guild
    per ``window_s``; and what the client did about it, for its verdict."""

    window_s: float = MEMBER_RATE_LIMIT_S
    last_ns: dict[str, int] = field(default_factory=dict)  # guild id -> last request let through
    requests: int = 0  # all-members requests seen
    limited: int = 0  # answered with RATE_LIMITED
    early: int = 0  # repeated before the retry_after they were given
    retry_at_ns: dict[str, int] = field(default_factory=dict)  # guild -> when it may retry

    def check(self, d: dict[str, Any], now_ns: int) -> float | None:
        """None if this all-members request may go through (and counts as this guild's);
        else the seconds until it may."""
        if self.window_s <= 0 or d.get("limit") != 0 or not is_all_members(d):
            return None
        guild_id = snowflake_key(d.get("guild_id")) or ""
        self.requests += 1
        retry_at = self.retry_at_ns.get(guild_id)
        if retry_at is not None and now_ns < retry_at:
            self.early += 1
        last = self.last_ns.get(guild_id)
        window_ns = int(self.window_s * NS_PER_S)
        if last is not None and now_ns - last < window_ns:
            self.limited += 1
            self.retry_at_ns[guild_id] = last + window_ns
            return round((last + window_ns - now_ns) / NS_PER_S, 3)
        self.last_ns[guild_id] = now_ns
        return None

    def verdict(self) -> Verdict | None:
        """ "all-members requests within the rate limit"; None when the client made none."""
        if self.requests == 0 or self.window_s <= 0:
            return None
        verdict = Verdict(
            "member requests within the rate limit",
            f"at most one all-members REQUEST_GUILD_MEMBERS per guild per {self.window_s:g} s,"
            " none repeated before retry_after",
            docs=DOCS_REQUEST_MEMBERS,
        )
        if self.early:
            verdict.result = Result.FAIL
            verdict.observed = (
                f"{self.requests} all-members requests, {self.limited} rate-limited, "
                f"{self.early} sent again before retry_after"
            )
        elif self.limited:
            verdict.result = Result.NON_STRICT
            verdict.observed = f"{self.requests} all-members requests, {self.limited} rate-limited"
        else:
            verdict.result = Result.PASS
            verdict.observed = f"{self.requests} all-members requests, none rate-limited"
        return verdict
