"""Example: testing a hikari bot with the replayer_gateway fixture."""

from __future__ import annotations

import asyncio
import os

import hikari
import pytest

from replayer.pytest_plugin import ReplayerGateway

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.example.token"  # hikari reads the bot id from it
TIMEOUT = 30 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))


@pytest.mark.replayer(
    archive="replayer/data/recordings/small-bot.rpl",
    faults=["invalid-session:true@event=MESSAGE_CREATE#2"],
)
async def test_hikari_resumes_after_invalid_session_true(replayer_gateway: ReplayerGateway) -> None:
    bot = hikari.GatewayBot(TOKEN, rest_url=replayer_gateway.rest_base, banner=None)
    resumed = asyncio.Event()
    messages: list[str] = []

    @bot.listen(hikari.ShardResumedEvent)
    async def on_resumed(event: hikari.ShardResumedEvent) -> None:
        resumed.set()

    @bot.listen(hikari.GuildMessageCreateEvent)
    async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
        messages.append(event.content or "")

    await bot.start(check_for_updates=False)
    try:
        await asyncio.wait_for(resumed.wait(), TIMEOUT)
    finally:
        await bot.close()
    assert len(messages) >= 2
    verdicts = replayer_gateway.wait_for_verdicts(timeout=TIMEOUT)
    assert verdicts[0].name == "invalid-session d=true after MESSAGE_CREATE #2"
    assert replayer_gateway.passed, replayer_gateway.report()


@pytest.mark.replayer(archive="replayer/data/recordings/small-bot.rpl")
def test_the_fixture_works_in_sync_tests_too(replayer_gateway: ReplayerGateway) -> None:
    assert replayer_gateway.gateway_url.startswith("ws://127.0.0.1:")
    assert replayer_gateway.rest_base.endswith("/api/v10")
    assert replayer_gateway.transcript() == []
