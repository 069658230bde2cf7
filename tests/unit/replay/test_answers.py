"""Requests answered from the archive's state (Events > Gateway Events > Request Guild
Members, Request Soundboard Sounds, Request Channel Info; Change Log 2025-08-14)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from replayer.replay.answers import (
    GUILD_MEMBERS,
    GUILD_PRESENCES,
    MemberRateLimit,
    channel_info,
    member_chunks,
    rate_limited,
    soundboard_sounds,
)
from replayer.replay.guild_state import GuildState
from replayer.replay.verdicts import Result

S = 1_000_000_000
ALL = -1


def member(user_id: int, name: str, nick: str | None = None) -> dict[str, Any]:
    return {"user": {"id": str(user_id), "username": name}, "nick": nick, "roles": []}


def state_of(n: int = 3) -> GuildState:
    state = GuildState()
    names = ["alice", "bob", "albert", "carol", "alfred"]
    state.feed(
        "GUILD_CREATE",
        {
            "id": "1",
            "members": [member(10 + i, names[i % 5] + str(i)) for i in range(n)],
            "presences": [{"user": {"id": "10"}, "status": "online"}],
            "channels": [{"id": "50", "type": 2}, {"id": "51", "type": 0}],
            "soundboard_sounds": [{"sound_id": "70", "name": "quack", "guild_id": "1"}],
        },
    )
    return state


def test_members_from_every_source_last_seen_wins() -> None:
    state = state_of(2)
    state.feed("GUILD_MEMBERS_CHUNK", {"guild_id": "1", "members": [member(20, "dave")]})
    state.feed("GUILD_MEMBER_ADD", {"guild_id": "1", **member(21, "erin")})
    state.feed("GUILD_MEMBER_UPDATE", {"guild_id": "1", "user": {"id": "10"}, "nick": "Al"})
    state.feed("GUILD_MEMBER_REMOVE", {"guild_id": "1", "user": {"id": "11"}})
    guild = state.guild("1")
    assert guild is not None
    assert list(guild.members) == ["10", "20", "21"]
    assert guild.members["10"]["nick"] == "Al"
    assert guild.members["10"]["user"]["username"] == "alice0"  # merged, not replaced


def test_all_members_needs_guild_members() -> None:
    state = state_of()
    request = {"guild_id": "1", "query": "", "limit": 0}
    assert member_chunks(state, request, 1) == []  # GUILDS only: no answer
    [chunk] = member_chunks(state, request, GUILD_MEMBERS)
    assert [m["user"]["id"] for m in chunk["members"]] == ["10", "11", "12"]
    assert (chunk["chunk_index"], chunk["chunk_count"]) == (0, 1)
    assert "presences" not in chunk
    assert "nonce" not in chunk


def test_query_is_a_username_or_nick_prefix_with_limit() -> None:
    state = state_of(5)
    [chunk] = member_chunks(state, {"guild_id": 1, "query": "AL", "limit": 0}, 0)
    assert [m["user"]["username"] for m in chunk["members"]] == ["alice0", "albert2", "alfred4"]
    [chunk] = member_chunks(state, {"guild_id": "1", "query": "al", "limit": 2}, 0)
    assert len(chunk["members"]) == 2
    [chunk] = member_chunks(state, {"guild_id": "1", "query": "zz", "limit": 5}, 0)
    assert chunk["members"] == []
    assert chunk["chunk_count"] == 1


def test_user_ids_with_not_found_and_presences_only_with_the_intent() -> None:
    state = state_of()
    request = {"guild_id": "1", "user_ids": ["10", 12, "99"], "presences": True, "nonce": "n"}
    [chunk] = member_chunks(state, request, ALL)
    assert [m["user"]["id"] for m in chunk["members"]] == ["10", "12"]
    assert chunk["not_found"] == ["99"]
    assert chunk["presences"] == [{"user": {"id": "10"}, "status": "online"}]
    assert chunk["nonce"] == "n"
    [chunk] = member_chunks(state, request, ALL & ~GUILD_PRESENCES)
    assert "presences" not in chunk


def test_nonce_echoed_only_up_to_32_bytes() -> None:
    state = state_of()
    base = {"guild_id": "1", "user_ids": "10"}
    assert member_chunks(state, {**base, "nonce": "é" * 16}, ALL)[0]["nonce"] == "é" * 16
    assert "nonce" not in member_chunks(state, {**base, "nonce": "é" * 16 + "x"}, ALL)[0]


@given(st.integers(min_value=0, max_value=3500), st.integers(min_value=0, max_value=4000))
def test_chunks_hold_at_most_1000_and_count_themselves(n: int, limit: int) -> None:
    state = state_of(n)
    chunks = member_chunks(state, {"guild_id": "1", "query": "", "limit": limit}, ALL)
    expected = n if limit == 0 else min(n, limit)
    assert sum(len(c["members"]) for c in chunks) == expected
    assert all(len(c["members"]) <= 1000 for c in chunks)
    assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
    assert {c["chunk_count"] for c in chunks} == {len(chunks)}
    assert len(chunks) == max(1, -(-expected // 1000))


def test_unknown_guild_gets_no_answer() -> None:
    assert member_chunks(state_of(), {"guild_id": "2", "query": "", "limit": 0}, ALL) == []


def test_rate_limit_one_all_members_request_per_guild_per_30s() -> None:
    limit = MemberRateLimit()
    everyone = {"guild_id": "1", "query": "", "limit": 0}
    assert limit.check(everyone, 0) is None
    assert limit.check({"guild_id": "2", "query": "", "limit": 0}, 1 * S) is None  # another guild
    assert limit.check({"guild_id": "1", "query": "a", "limit": 0}, 1 * S) is None  # a query
    assert limit.check(everyone, 10 * S) == 20.0
    assert limit.check(everyone, 30 * S) is None
    verdict = limit.verdict()
    assert verdict is not None
    assert verdict.result is Result.NON_STRICT  # limited once, then waited


def test_rate_limit_verdict() -> None:
    everyone = {"guild_id": "1", "query": "", "limit": 0}
    assert MemberRateLimit().verdict() is None  # nothing to judge
    calm = MemberRateLimit()
    calm.check(everyone, 0)
    assert calm.verdict().result is Result.PASS  # type: ignore[union-attr]
    eager = MemberRateLimit()
    for t in (0, 1, 2):
        eager.check(everyone, t * S)  # the third comes before the retry_after of the second
    assert eager.verdict().result is Result.FAIL  # type: ignore[union-attr]
    off = MemberRateLimit(0)
    assert [off.check(everyone, t) for t in range(3)] == [None, None, None]


def test_rate_limited_meta() -> None:
    assert rate_limited(8, {"guild_id": 5, "nonce": "n", "query": "", "limit": 0}, 2.5) == {
        "opcode": 8,
        "retry_after": 2.5,
        "meta": {"guild_id": "5", "nonce": "n"},
    }
    assert rate_limited(8, {"guild_id": "5"}, 1)["meta"] == {"guild_id": "5"}
    assert rate_limited(3, None, 1)["meta"] == {}


def test_soundboard_one_answer_per_known_guild() -> None:
    state = state_of()
    state.feed("GUILD_CREATE", {"id": "2"})
    state.feed("GUILD_SOUNDBOARD_SOUND_CREATE", {"sound_id": "71", "name": "moo", "guild_id": "2"})
    state.feed("GUILD_SOUNDBOARD_SOUND_DELETE", {"sound_id": "70", "guild_id": "1"})
    answers = soundboard_sounds(state, {"guild_ids": ["1", "2", "3"]})
    assert answers == [
        {"soundboard_sounds": [], "guild_id": "1"},
        {
            "soundboard_sounds": [{"sound_id": "71", "name": "moo", "guild_id": "2"}],
            "guild_id": "2",
        },
    ]


def test_channel_info_only_the_fields_asked_for() -> None:
    state = state_of()
    state.feed("VOICE_CHANNEL_STATUS_UPDATE", {"id": "50", "guild_id": "1", "status": "jam"})
    assert channel_info(state, {"guild_id": "1", "fields": ["status"]}) == {
        "guild_id": "1",
        "channels": [{"id": "50", "status": "jam"}],
    }
    assert channel_info(state, {"guild_id": "1", "fields": ["voice_start_time"]}) == {
        "guild_id": "1",
        "channels": [{"id": "50", "voice_start_time": None}],
    }
    assert channel_info(state, {"guild_id": "9", "fields": []}) is None
