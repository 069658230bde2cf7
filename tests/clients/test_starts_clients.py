"""Session starts and identify concurrency with real libraries (#15 item 6): hikari reads
``remaining`` and ``max_concurrency`` from /gateway/bot (and refuses to start without
enough starts); discord.py's AutoShardedClient waits 5 s between IDENTIFYs by default, and
without that wait its second shard gets op 9 until 5 s have passed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.starts import SessionStartLimit
from replayer.replay.verdicts import Result
from tests.clients.conftest import (
    TIMEOUT,
    connections,
    frames,
    make_scenario,
    replay,
    rich_scenario,
    transcript,
)
from tests.clients.test_discordpy_replay import NoWaitShardedClient
from tests.clients.test_discordpy_replay import running as discordpy_running
from tests.clients.test_hikari_replay import running as hikari_running
from tests.clients.test_hikari_replay import wait


async def test_hikari_refuses_to_start_without_session_starts(tmp_path: Path) -> None:
    scenario = rich_scenario()
    options = ReplayOptions(speed=0, session_start_limit=SessionStartLimit(remaining=0))
    async with (
        replay(scenario, tmp_path, options) as server,
        hikari_running(server, scenario, start=False) as probe,
    ):
        with pytest.raises(RuntimeError, match="more sessions than were allowed"):
            await asyncio.wait_for(probe.bot.start(check_for_updates=False), TIMEOUT)
        assert server.connections_total == 0


async def test_hikari_spends_one_start_per_shard(tmp_path: Path) -> None:
    scenario = rich_scenario()
    async with replay(scenario, tmp_path) as server, hikari_running(server, scenario) as probe:
        await wait(probe.started)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.rest_base}/gateway/bot") as r,
        ):
            limit = (await r.json())["session_start_limit"]
        assert (limit["total"], limit["remaining"]) == (1000, 999)
    verdict = {v.name: v for v in server.verdicts()}["session starts"]
    assert (verdict.result, verdict.observed) == (
        Result.PASS,
        "1 session start, 999 of 1000 left",
    )


@pytest.mark.parametrize("max_concurrency", [1, 2])
async def test_hikari_starts_shards_by_bucket(tmp_path: Path, max_concurrency: int) -> None:
    """max_concurrency 2: both shards in one start-up window (no wait); 1: the second after
    hikari's 5 s window. Either way no IDENTIFY is refused."""
    scenario = rich_scenario(num_shards=2)
    limit = SessionStartLimit(max_concurrency=max_concurrency)
    options = ReplayOptions(speed=0, session_start_limit=limit)
    async with (
        replay(scenario, tmp_path, options) as server,
        hikari_running(server, scenario) as probe,
    ):
        await wait(probe.started)
        assert sorted(e.shard.id for e in probe.ready) == [0, 1]
    verdict = {v.name: v for v in server.verdicts()}["identify concurrency"]
    assert (verdict.result, verdict.observed) == (Result.PASS, "2 IDENTIFYs, none refused")
    records = transcript(server)
    identified = []
    for conn in connections(records):
        for frame in frames(records, conn.conn_id, Direction.CLIENT):
            if frame.op == 2:
                identified.append(frame.t_ns)
    gap_s = (max(identified) - min(identified)) / 1e9
    assert (gap_s < 5) is (max_concurrency == 2), gap_s


async def test_discordpy_without_its_5_s_wait_gets_op9_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrong client: AutoShardedClient whose before_identify_hook does not wait, on
    max_concurrency 1. Shard 1's IDENTIFYs get op 9 until 5 s after shard 0's; discord.py
    starts a new session each time, and the verdict says NON-STRICT."""
    scenario = make_scenario("rich", tmp_path, num_shards=2)
    async with (
        replay(scenario, tmp_path) as server,
        discordpy_running(
            server, monkeypatch, len(scenario.messages), client_class=NoWaitShardedClient
        ) as probe,
    ):
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
    verdict = {v.name: v for v in server.verdicts()}["identify concurrency"]
    assert verdict.result is Result.NON_STRICT
    assert "refused with op 9: connection 2 (shard 1, bucket 0" in verdict.observed
