"""Intents and sharding (issue 15 items 5 and 7) with discord.py and hikari: privileged
intents the recording does not grant end with 4014 (each library's own error), message
content is empty without MESSAGE_CONTENT, and a client with another shard count than the
recording gets every guild on the shard the formula names. Each switch turns its rule off.
Raw clients for the rest: tests/unit/replay/test_intents.py, test_sharding.py and
tests/integration/replay/test_intents_wrong_client.py."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import discord
import hikari
import pytest

from replayer.replay.engine import ReplayOptions
from replayer.replay.intents import PRIVILEGED_INTENTS
from replayer.replay.starts import SessionStartLimit
from tests.clients.conftest import (
    TIMEOUT,
    TOKEN,
    closes,
    dispatches,
    frames,
    no_leaks,
    no_lost_task_errors,
    no_pending_tasks,
    payload_json,
    replay,
    rich_scenario,
    sample_scenario,
    transcript,
)
from tests.clients.test_discordpy_replay import NoWaitShardedClient, running, seen
from tests.clients.test_hikari_replay import running as hikari_running
from tests.clients.test_hikari_replay import seen as hikari_seen
from tests.clients.test_hikari_replay import wait

__all__ = ["no_leaks", "no_lost_task_errors", "no_pending_tasks"]
pytestmark = pytest.mark.usefixtures("no_lost_task_errors")

WITHOUT_CONTENT = discord.Intents(guilds=True, guild_messages=True)


def with_intents(intents: discord.Intents, base: type[Any] = discord.Client) -> type[Any]:
    """``base`` with other intents than the tests' usual ones."""

    class Client(base):  # type: ignore[misc,valid-type]
        def __init__(self, **kwargs: Any) -> None:
            kwargs["intents"] = intents
            super().__init__(**kwargs)

    return Client


async def test_discordpy_privileged_intents_not_granted_get_4014(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample recording's application flags are 0 and its IDENTIFY asked for
    MESSAGE_CONTENT only: Intents.all() is closed with 4014, which discord.py raises as
    PrivilegedIntentsRequired."""
    scenario = sample_scenario()
    async with replay(scenario, tmp_path, ReplayOptions(speed=0)) as server:
        client_class = with_intents(discord.Intents.all())
        async with running(server, monkeypatch, client_class=client_class) as probe:
            assert probe.task is not None
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(asyncio.shield(probe.task), TIMEOUT)
            assert not probe.ready.is_set()
    [close] = closes(transcript(server), 1)
    assert (close.code, close.reason) == (
        4014,
        "disallowed intent(s): GUILD_MEMBERS|GUILD_PRESENCES (see --grant-intents)",
    )


async def test_discordpy_grant_intents_lets_them_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = sample_scenario()
    options = ReplayOptions(speed=0, grant_intents=PRIVILEGED_INTENTS, recorded_faults=False)
    async with replay(scenario, tmp_path, options) as server:
        client_class = with_intents(discord.Intents.all())
        async with running(server, monkeypatch, len(scenario.messages), client_class) as probe:
            await probe.wait(probe.ready)
            await probe.wait(probe.all_messages)
            assert seen(probe.messages) == scenario.messages
    # every intent: the whole recorded stream, presences and typing included
    assert [t for _, t in dispatches(transcript(server), 1)] == scenario.dispatches[0]


@pytest.mark.parametrize("filter_intents", [True, False])
async def test_discordpy_message_content_is_empty_without_its_intent(
    filter_intents: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without MESSAGE_CONTENT, on_message sees the recorded messages with empty content
    (none is the bot's or mentions it); --no-filter-intents sends them as recorded."""
    scenario = rich_scenario()
    options = ReplayOptions(speed=0, filter_intents=filter_intents)
    async with replay(scenario, tmp_path, options) as server:
        client_class = with_intents(WITHOUT_CONTENT)
        async with running(server, monkeypatch, len(scenario.messages), client_class) as probe:
            await probe.wait(probe.all_messages)
            await probe.wait(probe.ready)  # its ready task done before close()
            got = seen(probe.messages)
    expected = [
        (g, channel, "" if filter_intents else text) for g, channel, text in scenario.messages
    ]
    assert got == expected


async def test_discordpy_another_shard_count_gets_the_guilds_by_the_formula(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AutoShardedClient(shard_count=3) on a 2-shard recording: every guild arrives, on
    the shard discord.py itself computes for it ((id >> 22) % 3), READY.shard echoed."""
    scenario = rich_scenario(num_shards=2)
    # No wait between IDENTIFYs is right only with max_concurrency 3 (one bucket each).
    options = ReplayOptions(speed=0, session_start_limit=SessionStartLimit(max_concurrency=3))
    async with (
        replay(scenario, tmp_path, options) as server,
        running(
            server,
            monkeypatch,
            len(scenario.messages),
            client_class=NoWaitShardedClient,
            shard_count=3,
        ) as probe,
    ):
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
        client = probe.client
        assert {g.id: g.shard_id for g in client.guilds} == {
            g: (g >> 22) % 3 for g in scenario.guilds
        }
        assert sorted(seen(probe.messages)) == sorted(scenario.messages)
    records = transcript(server)
    for conn_id in (1, 2, 3):
        (identify,) = [f for f in frames(records, conn_id, None) if f.op == 2]
        shard = payload_json(identify)["d"]["shard"]
        ready = next(f for f in frames(records, conn_id, None) if f.t == "READY")
        guilds = [int(g["id"]) for g in payload_json(ready)["d"]["guilds"]]
        assert payload_json(ready)["d"]["shard"] == shard
        assert guilds == [g for g in scenario.guilds if (g >> 22) % 3 == shard[0]]


async def test_hikari_privileged_intents_not_granted_get_4014(tmp_path: Path) -> None:
    """hikari with every intent on the sample (flags 0): start() fails on the 4014."""
    scenario = sample_scenario()
    async with replay(scenario, tmp_path, ReplayOptions(speed=0)) as server:
        bot = hikari.GatewayBot(
            TOKEN, rest_url=server.rest_base, banner=None, intents=hikari.Intents.ALL
        )
        try:
            with pytest.raises(hikari.errors.GatewayServerClosedConnectionError) as caught:
                await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
            assert caught.value.code == 4014
            assert caught.value.can_reconnect is False
        finally:
            # start() failed half-way: close() still stops the shard's heartbeat task.
            with contextlib.suppress(hikari.errors.ComponentStateConflictError):
                await asyncio.wait_for(bot.close(), TIMEOUT)
            # hikari 2.x leaks the connection's heartbeat task when a fatal close comes
            # before READY (GatewayShardImpl._connect spawned it; nothing cancels it).
            leaked = [t for t in asyncio.all_tasks() if t.get_name() == "heartbeat (shard 0)"]
            for task in leaked:
                task.cancel()
            await asyncio.gather(*leaked, return_exceptions=True)


@pytest.mark.parametrize("filter_intents", [True, False])
async def test_hikari_message_content_is_empty_without_its_intent(
    filter_intents: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tests.clients.test_hikari_replay as hikari_tests

    monkeypatch.setattr(
        hikari_tests, "INTENTS", hikari.Intents.GUILDS | hikari.Intents.GUILD_MESSAGES
    )
    scenario = rich_scenario()
    options = ReplayOptions(speed=0, filter_intents=filter_intents)
    async with (
        replay(scenario, tmp_path, options) as server,
        hikari_running(server, scenario) as probe,
    ):
        await wait(probe.all_messages)
        got = hikari_seen(probe.messages)
    expected = [
        (g, channel, "" if filter_intents else text) for g, channel, text in scenario.messages
    ]
    assert got == expected
