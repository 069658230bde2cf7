"""``replayer replay``'s intents and sharding switches (issue 15 items 5 and 7), with a raw
websockets client per rule: the close code it gets, and each switch turning its rule off.
Discord docs: Events > Gateway > Gateway Intents, Sharding; close codes 4010-4014."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from replayer.replay.intents import GUILD_MEMBERS, GUILDS, VALID_INTENTS
from tests.integration.replay.test_replay_cli import FAST, replayer, send, until_op


def client(identify: dict[str, Any], got: dict[str, Any]) -> Any:
    """IDENTIFY with ``identify``; ``got``: the close code, or READY and every dispatch
    name until the server closes (``--at-end close``)."""

    async def run(url: str) -> None:
        async with connect(
            url + "?v=10&encoding=json", compression=None, max_size=None, max_queue=None
        ) as ws:
            await until_op(ws, 10, {})
            await send(ws, 2, {"token": "t", "properties": {}, **identify})
            events: list[str] = got.setdefault("events", [])
            try:
                while True:
                    payload = json.loads(await ws.recv())
                    if payload["op"] == 0:
                        events.append(payload["t"])
            except ConnectionClosed as closed:
                got["code"] = closed.rcvd.code if closed.rcvd else None
                got["reason"] = closed.rcvd.reason if closed.rcvd else None

    return run


AT_END = ["--at-end", "close:4000"]


@pytest.mark.parametrize(
    ("args", "identify", "code"),
    [
        ([], {"intents": 1 << 17 | GUILDS}, 4013),
        (["--no-check-intents"], {"intents": 1 << 17 | GUILDS}, 4000),
        (["--grant-intents", "none"], {"intents": GUILD_MEMBERS}, 4014),
        (["--grant-intents", "members"], {"intents": GUILD_MEMBERS}, 4000),
        ([], {"intents": GUILD_MEMBERS}, 4000),  # small-bot's flags grant all three
        ([], {"intents": GUILDS, "shard": [1, 1]}, 4010),
        (["--require-sharding"], {"intents": GUILDS}, 4011),
        (["--require-sharding"], {"intents": GUILDS, "shard": [0, 2]}, 4000),
        ([], {"intents": GUILDS}, 4000),
    ],
)
async def test_each_rule_and_its_switch(
    args: list[str], identify: dict[str, Any], code: int
) -> None:
    """4000 is the end of the stream (--at-end close:4000): the client got its session."""
    got: dict[str, Any] = {}
    status, _, err = await replayer(*FAST, *AT_END, *args, client=client(identify, got))
    assert status == 0, err
    assert got["code"] == code, got
    if code == 4000:
        assert got["events"][0] == "READY"
    else:
        assert got["events"] == []


async def test_filtering_and_its_switch() -> None:
    """GUILDS only: small-bot's MESSAGE_CREATEs, presences and typing are not sent;
    --no-filter-intents sends the whole recording."""
    filtered: dict[str, Any] = {}
    await replayer(*FAST, *AT_END, client=client({"intents": GUILDS}, filtered))
    everything: dict[str, Any] = {}
    await replayer(
        *FAST, *AT_END, "--no-filter-intents", client=client({"intents": GUILDS}, everything)
    )
    assert set(filtered["events"]) == {"READY", "GUILD_CREATE"}
    assert {"MESSAGE_CREATE", "PRESENCE_UPDATE", "TYPING_START"} <= set(everything["events"])
    assert everything["events"][: len(filtered["events"])] == filtered["events"]


async def test_intents_beyond_the_recording_are_said_once_on_stderr() -> None:
    """small-bot was recorded without GUILD_MEMBERS: asking for it is noticed once."""
    got: dict[str, Any] = {}
    _, _, err = await replayer(*FAST, *AT_END, client=client({"intents": VALID_INTENTS}, got))
    notice = (
        "the client asks for intents the recording was made without (GUILD_MEMBERS): "
        "the archive cannot hold their events"
    )
    assert err.count(notice) == 1, err


async def test_a_bad_grant_is_one_line_before_anything_starts() -> None:
    status, out, err = await replayer("--grant-intents", "members,bogus")
    assert status == 1
    assert "gateway URL" not in out
    assert err.strip().splitlines() == [
        "error: --grant-intents: unknown intent 'bogus' (all, none, members, presences, "
        "message_content or a number)"
    ]
