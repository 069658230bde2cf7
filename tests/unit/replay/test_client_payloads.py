"""Client payloads against their documented structures (Events > Gateway Events > Send Events)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.replay.client_payloads import (
    identify_problem,
    is_snowflake,
    payload_problem,
)

# The docs' own examples, and what discord.py and hikari send: all valid.
VALID: list[tuple[int, Any]] = [
    (3, {"since": 91879201, "activities": [{"name": "Save the Oxford Comma", "type": 0}], "status": "online", "afk": False}),
    (3, {"since": None, "activities": [], "status": "invisible", "afk": False}),
    (3, {"since": 0, "activities": [{"type": 4, "state": "hi", "name": "Custom Status"}], "status": "dnd", "afk": True}),
    (3, {"since": None, "afk": False, "game": None, "status": "online"}),  # hikari's legacy "game"
    (3, {"since": None, "afk": False, "game": {"name": "x", "type": 2}, "status": "idle"}),
    (4, {"guild_id": "41771983423143937", "channel_id": "127121515262115840", "self_mute": False, "self_deaf": False}),
    (4, {"guild_id": 41771983423143937, "channel_id": None, "self_mute": True, "self_deaf": False}),
    (4, {"guild_id": "1", "channel_id": "2"}),  # hikari's update_voice_state without mute flags
    (8, {"guild_id": "41771983444115456", "query": "", "limit": 0}),
    (8, {"guild_id": 1, "presences": False, "limit": 0, "query": "", "nonce": "x" * 40}),  # discord.py
    (8, {"guild_id": "1", "user_ids": ["2", 3], "limit": 2, "presences": True}),
    (8, {"guild_id": "1", "user_ids": "2"}),
    (31, {"guild_ids": ["613425648685547541", "81384788765712384"]}),
    (43, {"guild_id": "613425648685547541", "fields": ["status", "voice_start_time"]}),
    (43, {"guild_id": "1", "fields": []}),
]  # fmt: skip

INVALID: list[tuple[int, Any, str]] = [
    (3, {"status": "online"}, "without since"),
    (3, {"since": None, "activities": [], "status": "away", "afk": False}, "status 'away'"),
    (3, {"since": "now", "activities": [], "status": "idle", "afk": False}, "since is not"),
    (3, {"since": None, "activities": [{"type": 0}], "status": "idle", "afk": False}, "no name"),
    (3, {"since": None, "activities": [{"name": "x", "type": 9}], "status": "idle", "afk": False}, "type 9"),
    (3, {"since": None, "activities": {}, "status": "idle", "afk": False}, "not an array"),
    (3, {"since": None, "activities": [], "status": "idle", "afk": 0}, "afk is not"),
    (3, None, "not an object"),
    (3, {"since": None, "afk": False, "status": "idle"}, "without activities"),
    (3, {"since": None, "afk": False, "game": {"type": 0}, "status": "idle"}, "game has no name"),
    (4, {"guild_id": "1", "self_mute": False, "self_deaf": False}, "without channel_id"),
    (4, {"guild_id": "x", "channel_id": None, "self_mute": False, "self_deaf": False}, "guild_id"),
    (4, {"guild_id": "1", "channel_id": None, "self_mute": "no", "self_deaf": False}, "self_mute"),
    (8, {"guild_id": "1", "nonce": "n"}, "neither query nor user_ids"),
    (8, {"guild_id": ["1", "2"], "query": "", "limit": 0}, "one snowflake"),
    (8, {"guild_id": "1", "query": ""}, "without a limit"),
    (8, {"guild_id": "1", "query": "", "limit": -1}, "without a limit"),
    (8, {"guild_id": "1", "query": 5, "limit": 0}, "query is not"),
    (8, {"guild_id": "1", "user_ids": [True]}, "user_ids"),
    (8, {"guild_id": "1", "query": "", "limit": 0, "presences": "yes"}, "presences"),
    (31, {"guild_ids": "1"}, "guild_ids"),
    (31, {}, "guild_ids"),
    (43, {"guild_id": "1", "fields": ["topic"]}, "'topic'"),
    (43, {"guild_id": "1"}, "fields"),
]  # fmt: skip


@pytest.mark.parametrize(("op", "d"), VALID)
def test_documented_payloads_pass(op: int, d: Any) -> None:
    assert payload_problem(op, d) is None


@pytest.mark.parametrize(("op", "d", "why"), INVALID)
def test_broken_payloads_say_what_is_wrong(op: int, d: Any, why: str) -> None:
    problem = payload_problem(op, d)
    assert problem is not None
    assert why in problem


def test_identify_fields() -> None:
    assert identify_problem({"compress": True, "large_threshold": 250}) is None
    assert identify_problem({"large_threshold": 50}) is None
    assert "large_threshold 251" in str(identify_problem({"large_threshold": 251}))
    assert "large_threshold 49" in str(identify_problem({"large_threshold": 49}))
    assert "compress" in str(identify_problem({"compress": "yes"}))
    assert "presence" in str(identify_problem({"presence": {"status": "online"}}))


@given(st.integers())
def test_large_threshold_range(n: int) -> None:
    assert (identify_problem({"large_threshold": n}) is None) == (50 <= n <= 250)


@given(st.one_of(st.integers(), st.text(max_size=25), st.booleans(), st.none(), st.floats()))
def test_snowflakes(value: object) -> None:
    expected = (type(value) is int and 0 <= value < 1 << 64) or (
        isinstance(value, str) and 0 < len(value) <= 20 and all("0" <= c <= "9" for c in value)
    )
    assert is_snowflake(value) == expected


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)
KEYS = ["since", "activities", "status", "afk", "guild_id", "channel_id", "self_mute", "self_deaf",
        "query", "limit", "user_ids", "presences", "nonce", "guild_ids", "fields"]  # fmt: skip


@given(
    st.sampled_from([3, 4, 8, 31, 43, 1, 6]),
    st.one_of(JSONISH, st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=8)),
)
def test_any_payload_gets_an_answer_never_an_exception(op: int, d: Any) -> None:
    problem = payload_problem(op, d)
    assert problem is None or isinstance(problem, str)
