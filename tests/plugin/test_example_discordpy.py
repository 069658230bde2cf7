"""Example: testing a discord.py bot's reconnect logic with the replayer_gateway fixture
(the pytest plugin replayer registers). Copy this into your own bot's tests."""

from __future__ import annotations

import asyncio
import os

import discord
import pytest
import yarl

from replayer.pytest_plugin import ReplayerGateway

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.example.token"
TIMEOUT = 30 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))


def point_discordpy_at(gateway: ReplayerGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", gateway.rest_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(gateway.gateway_url)
    )


@pytest.mark.replayer(
    archive="replayer/data/recordings/small-bot.rpl", faults=["reconnect@event=MESSAGE_CREATE#2"]
)
async def test_bot_resumes_after_reconnect(
    replayer_gateway: ReplayerGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discordpy_at(replayer_gateway, monkeypatch)
    client = discord.Client(intents=discord.Intents.default())
    resumed = asyncio.Event()

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    async with client:
        runner = asyncio.create_task(client.start(TOKEN))
        await asyncio.wait_for(resumed.wait(), TIMEOUT)
        verdicts = replayer_gateway.wait_for_verdicts(timeout=TIMEOUT)  # every fault judged
        await client.close()
        await runner
    assert verdicts[0].name == "reconnect after MESSAGE_CREATE #2"
    assert replayer_gateway.passed, replayer_gateway.report()


@pytest.mark.replayer(
    archive="replayer/data/recordings/small-bot.rpl", faults=["close:4004@event=READY"]
)
async def test_bot_stops_on_authentication_failed(
    replayer_gateway: ReplayerGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discordpy_at(replayer_gateway, monkeypatch)
    client = discord.Client(intents=discord.Intents.default())
    async with client:
        with pytest.raises(discord.ConnectionClosed) as info:
            await asyncio.wait_for(client.start(TOKEN), TIMEOUT)
    assert info.value.code == 4004
    assert replayer_gateway.connections == 1  # it did not come back
    [verdict, *_] = replayer_gateway.verdicts()
    assert verdict.passed, replayer_gateway.report()
