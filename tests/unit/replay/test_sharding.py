"""Sharding (issue 15 item 7): 4010 for shard_id >= num_shards, 4011 with
``require_sharding``, another num_shards than the recording's re-routed by
``(guild_id >> 22) % num_shards`` with guild-less events on shard 0, and several sessions
on one shard. Discord docs: Events > Gateway > Sharding."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.gateway.encoding import Encoding, decode_payload
from replayer.replay.engine import Close, Command, GatewayConnection, Send
from replayer.replay.sharding import guild_of, shard_of, shard_refusal

from .conftest import Harness

INTENTS = (1 << 26) - 1 & ~(7 << 17 | 3 << 22)  # every documented intent

# Several IDENTIFYs at one instant here: Discord's identify concurrency (one per 5 s
# per bucket, replay/starts.py, tested in test_starts.py) is off in these tests.


def gid(k: int) -> str:
    """A guild id whose shard is ``k % num_shards`` for any num_shards."""
    return str(k << 22)


def shard_lines(shard_id: int, guilds: list[int], t0_ms: int, dm: bool) -> list[dict[str, Any]]:
    """One recorded shard of 2: READY, a GUILD_CREATE and a message per guild (10 ms
    apart, starting at t0_ms), and a DM message on shard 0."""
    conn = shard_id + 1
    ready = {
        "v": 10,
        "user": {"id": "9", "username": "bot"},
        "guilds": [{"id": gid(k), "unavailable": True} for k in guilds],
        "session_id": f"sess{shard_id}",
        "resume_gateway_url": "wss://elsewhere",
        "shard": [shard_id, 2],
    }
    identify = {"token": "t", "properties": {}, "intents": INTENTS, "shard": [shard_id, 2]}
    out: list[dict[str, Any]] = [
        {"kind": "connection", "conn": conn, "t_ms": t0_ms},
        {"kind": "frame", "conn": conn, "dir": "server", "t_ms": t0_ms,
         "payload": {"op": 10, "d": {"heartbeat_interval": 1000}}},
        {"kind": "frame", "conn": conn, "dir": "client", "t_ms": t0_ms,
         "payload": {"op": 2, "d": identify}},
        {"kind": "frame", "conn": conn, "dir": "server", "t_ms": t0_ms + 1,
         "payload": {"op": 0, "s": 1, "t": "READY", "d": ready}},
    ]  # fmt: skip
    events: list[tuple[str, dict[str, Any]]] = []
    for k in guilds:
        events.append(("GUILD_CREATE", {"id": gid(k), "name": f"g{k}"}))
    for k in guilds:
        events.append(("MESSAGE_CREATE", {"id": str(100 + k), "guild_id": gid(k), "content": "x"}))
    if dm:
        events.append(("MESSAGE_CREATE", {"id": "99", "channel_id": "5", "content": "dm"}))
    for s, (event, d) in enumerate(events, start=2):
        out.append(
            {
                "kind": "frame",
                "conn": conn,
                "dir": "server",
                "t_ms": t0_ms + 10 * s,
                "payload": {"op": 0, "s": s, "t": event, "d": d},
            }
        )
    return out


def two_shards() -> list[dict[str, Any]]:
    """Guilds 1..6 recorded on 2 shards: even k on shard 0, odd on shard 1 (5 ms later)."""
    lines = shard_lines(0, [2, 4, 6], 0, dm=True) + shard_lines(1, [1, 3, 5], 5, dm=False)
    return sorted(lines, key=lambda o: o["t_ms"])


def msg(op: int, d: Any = None) -> bytes:
    return json.dumps({"op": op, "d": d}).encode()


def identify(h: Harness, shard: list[int] | None) -> tuple[GatewayConnection, list[Command]]:
    conn = h.connect()
    conn.start(0)
    d: dict[str, Any] = {"token": "t", "properties": {}, "intents": INTENTS}
    if shard is not None:
        d["shard"] = shard
    out = conn.receive(msg(2, d), 0)
    while (wake := conn.next_wakeup_ns()) is not None and wake <= 0:
        out += conn.tick(0)
    return conn, out


def stream(out: list[Command]) -> list[tuple[int, str, Any]]:
    got = []
    for c in out:
        assert isinstance(c, Send), c
        p = decode_payload(c.raw, Encoding.JSON)
        got.append((p["s"], p["t"], p["d"]))
    return got


def guilds_and_messages(got: list[tuple[int, str, Any]]) -> list[tuple[str, str]]:
    return [(t, d.get("guild_id") or d.get("id")) for _, t, d in got[1:]]


@pytest.mark.parametrize("shard", [[2, 2], [0, 0], [-1, 2], [5, 3]])
def test_shard_id_outside_num_shards_gets_4010(
    shard: list[int], harness: Callable[..., Harness]
) -> None:
    _, out = identify(harness(two_shards(), speed=0, identify_concurrency=False), shard)
    assert out == [Close(4010, f"invalid shard {shard}: shard_id >= num_shards")]


def test_check_shards_off_serves_a_recorded_shard_by_id(harness: Callable[..., Harness]) -> None:
    h = harness(
        two_shards(), speed=0, identify_concurrency=False, check_shards=False, reroute_shards=False
    )
    _, out = identify(h, [1, 1])
    assert stream(out)[0][2]["session_id"] == "sess1"


@pytest.mark.parametrize(("shard", "refused"), [(None, True), ([0, 1], True), ([0, 2], False)])
def test_require_sharding_refuses_an_unsharded_identify(
    shard: list[int] | None, refused: bool, harness: Callable[..., Harness]
) -> None:
    _, out = identify(
        harness(two_shards(), speed=0, identify_concurrency=False, require_sharding=True), shard
    )
    if refused:
        assert out == [Close(4011, "sharding required (--require-sharding)")]
    else:
        assert stream(out)[0][1] == "READY"
    _, out = identify(
        harness(two_shards(), speed=0, identify_concurrency=False), shard
    )  # off by default
    assert stream(out)[0][1] == "READY"


def test_the_recorded_num_shards_gets_the_recorded_streams(
    harness: Callable[..., Harness],
) -> None:
    h = harness(two_shards(), speed=0, identify_concurrency=False)
    _, out = identify(h, [1, 2])
    got = stream(out)
    assert got[0][2]["session_id"] == "sess1"
    assert [g["id"] for g in got[0][2]["guilds"]] == [gid(1), gid(3), gid(5)]
    assert guilds_and_messages(got) == [
        ("GUILD_CREATE", gid(1)), ("GUILD_CREATE", gid(3)), ("GUILD_CREATE", gid(5)),
        ("MESSAGE_CREATE", gid(1)), ("MESSAGE_CREATE", gid(3)), ("MESSAGE_CREATE", gid(5)),
    ]  # fmt: skip


def test_an_unsharded_client_gets_every_recorded_guild(harness: Callable[..., Harness]) -> None:
    """Both recorded shards merged in recorded time order, READY listing all guilds."""
    _, out = identify(harness(two_shards(), speed=0, identify_concurrency=False), None)
    got = stream(out)
    assert [s for s, _, _ in got] == list(range(1, 15))
    assert "shard" not in got[0][2]
    assert sorted(g["id"] for g in got[0][2]["guilds"]) == sorted(gid(k) for k in range(1, 7))
    pairs = guilds_and_messages(got)
    assert sorted(pairs[:-1]) == sorted(
        [("GUILD_CREATE", gid(k)) for k in range(1, 7)]
        + [("MESSAGE_CREATE", gid(k)) for k in range(1, 7)]
    )
    assert pairs[-1] == ("MESSAGE_CREATE", "99")  # the DM, recorded last


@pytest.mark.parametrize("num_shards", [3, 4])
def test_another_num_shards_is_routed_by_the_formula(
    num_shards: int, harness: Callable[..., Harness]
) -> None:
    h = harness(two_shards(), speed=0, identify_concurrency=False)
    seen: list[str] = []
    for shard_id in range(num_shards):
        _, out = identify(h, [shard_id, num_shards])
        got = stream(out)
        assert got[0][2]["shard"] == [shard_id, num_shards]
        mine = [gid(k) for k in range(1, 7) if k % num_shards == shard_id]
        assert sorted(g["id"] for g in got[0][2]["guilds"]) == sorted(mine)
        for event, guild in guilds_and_messages(got):
            if guild == "99":
                assert shard_id == 0  # guild-less events go to shard 0 only
                continue
            assert shard_of(int(guild), num_shards) == shard_id, (event, guild)
            seen.append(guild)
    assert sorted(seen) == sorted(gid(k) for k in range(1, 7) for _ in range(2))


def test_several_sessions_may_hold_one_shard(harness: Callable[..., Harness]) -> None:
    h = harness(two_shards(), speed=0, identify_concurrency=False)
    _, first = identify(h, [0, 2])
    _, second = identify(h, [0, 2])
    a, b = stream(first), stream(second)
    assert [t for _, t, _ in a] == [t for _, t, _ in b]
    assert (a[0][2]["session_id"], b[0][2]["session_id"]) == ("sess0", "sess0-2")


def test_reroute_off_serves_the_recorded_shard(harness: Callable[..., Harness]) -> None:
    _, out = identify(
        harness(two_shards(), speed=0, identify_concurrency=False, reroute_shards=False), None
    )
    got = stream(out)
    assert got[0][2]["session_id"] == "sess0"
    assert {g for _, g in guilds_and_messages(got)} == {gid(2), gid(4), gid(6), "99"}


@given(st.integers(min_value=0, max_value=(1 << 63) - 1), st.integers(min_value=1, max_value=64))
def test_shard_of_is_the_documented_formula(guild_id: int, num_shards: int) -> None:
    assert shard_of(guild_id, num_shards) == (guild_id >> 22) % num_shards
    d = {"guild_id": str(guild_id)}
    assert guild_of("MESSAGE_CREATE", d) == guild_id
    assert guild_of("GUILD_CREATE", {"id": guild_id}) == guild_id
    assert guild_of("MESSAGE_CREATE", {"channel_id": "1"}) is None


@given(
    st.one_of(st.none(), st.lists(st.integers(-5, 10), min_size=2, max_size=2)),
    st.booleans(),
    st.booleans(),
)
def test_shard_refusal(shard: list[int] | None, require: bool, check: bool) -> None:
    got = shard_refusal(shard, require=require, check=check)
    invalid = shard is not None and not 0 <= shard[0] < shard[1]
    if check and invalid:
        assert got is not None
        assert got[0] == 4010
    elif require and (shard is None or shard[1] == 1):
        assert got == (4011, "sharding required (--require-sharding)")
    else:
        assert got is None
