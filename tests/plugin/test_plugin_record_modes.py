"""Record modes (docs/pytest.md), with a replay standing in for Discord as the upstream:
a discord.py test in a pytester project records its missing archive through the plugin
(``once``), then the second run replays it with the upstream gone; ``none`` (and ``CI``
set) never records and says how to; ``all`` records again; a recording without its
token is one clear failure."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import ConnectionRecord, HttpRecord
from replayer.pytest_plugin import BackgroundLoop, ReplayerGateway
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.resources import sample_archive

pytest_plugins = ["pytester"]

SAMPLE = sample_archive("small-bot.rpl")
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.Gx1234.record-mode-secret-token-abcd"

TEST = """
import asyncio
import discord
import pytest
import yarl

from replayer.pytest_plugin import RecordingError

@pytest.mark.replayer(archive="recordings/bot.rpl", token_env="BOT_TOKEN")
async def test_bot_gets_its_guilds(replayer_gateway, monkeypatch):
    monkeypatch.setattr(discord.http.Route, "BASE", replayer_gateway.rest_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(replayer_gateway.gateway_url)
    )
    client = discord.Client(intents=discord.Intents.default())
    async with client:
        runner = asyncio.create_task(client.start(replayer_gateway.token))
        await client.wait_until_ready()
        guild = await replayer_gateway.wait_for(event="GUILD_CREATE", timeout=30)
        if replayer_gateway.recording:  # the real gateway: nothing to inject into
            with pytest.raises(RecordingError, match="inject.. needs a replay: this run records"):
                replayer_gateway.inject("reconnect")
        await client.close()
        await runner
    mode = "recording" if replayer_gateway.recording else "replaying"
    print(f"MODE {mode} token={replayer_gateway.token == 'tok'} guild={guild.d['id']}")
    assert replayer_gateway.passed, replayer_gateway.report()
"""


class Upstream:
    """A replay of the sample on 127.0.0.1:0, in a thread of its own: the "Discord"
    the plugin records from (pytester's runs block this thread)."""

    def __init__(self) -> None:
        self.server = ReplayServer(load_script(SAMPLE), ReplayOptions(speed=0))
        self.background = BackgroundLoop()
        self.background.serve(self.server.start, self.server.stop)

    def args(self) -> list[str]:
        return [
            f"--replayer-upstream=http://127.0.0.1:{self.server.port}",
            f"--replayer-gateway-upstream={self.server.gateway_url}",
        ]

    def close(self) -> None:
        self.background.close()


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_bot=TEST)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "-W", "ignore::DeprecationWarning", *args
    )


def test_once_records_a_missing_archive_then_replays_it(project: pytest.Pytester) -> None:
    archive = project.path / "recordings" / "bot.rpl"
    upstream = Upstream()
    try:
        args = upstream.args()
        first = run(project, *args)
        served = upstream.server.connections_total
    finally:
        upstream.close()
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*MODE recording token=False guild=*"])
    assert served >= 1  # the bot reached "Discord" through the recorder
    records = read_records(archive)[1]
    assert any(isinstance(r, ConnectionRecord) for r in records)
    assert any(isinstance(r, HttpRecord) for r in records)  # the bot's REST calls, too
    assert TOKEN not in archive.read_bytes().decode("latin-1")  # redacted as `replayer record` does
    assert sorted(p.name for p in archive.parent.iterdir()) == ["bot.rpl"]  # no part left
    recorded = archive.read_bytes()

    second = run(project, *args)  # the upstream is gone: this can only be a replay
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*MODE replaying token=False guild=*"])
    assert archive.read_bytes() == recorded  # replayed, not touched


def test_none_never_records_and_says_how_to(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(project, "--replayer-record-mode=none", "--replayer-upstream=http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*replayer: no archive */recordings/bot.rpl, and record mode 'none' (--replayer-record-mode)"
            " never records: record it once, from the real gateway, with `pytest"
            " --replayer-record-mode=once` with $BOT_TOKEN set (or `replayer record -o */recordings/bot.rpl`)",
        ]
    )
    assert not (project.path / "recordings" / "bot.rpl").exists()
    monkeypatch.setenv("CI", "true")  # the default then
    result = run(project)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*record mode 'none' (CI is set) never records*"])
    assert "Traceback" not in result.stdout.str()


def test_all_records_again_over_an_archive_there(project: pytest.Pytester) -> None:
    archive = project.path / "recordings" / "bot.rpl"
    archive.parent.mkdir()
    archive.write_bytes(SAMPLE.read_bytes())
    upstream = Upstream()
    try:
        result = run(project, "--replayer-record-mode=all", *upstream.args())
    finally:
        upstream.close()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*MODE recording*"])
    assert archive.read_bytes() != SAMPLE.read_bytes()
    assert read_records(archive)[1]


def test_a_recording_without_its_token_is_one_clear_failure(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_TOKEN")
    result = run(project, "--replayer-upstream=http://127.0.0.1:9")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*replayer: recording */recordings/bot.rpl from the real gateway needs the bot token in $BOT_TOKEN (the marker's token_env)*"
        ]
    )
    assert not os.path.exists(project.path / "recordings" / "bot.rpl")


def test_the_fixture_never_shows_its_token() -> None:
    # pytest prints the fixture's repr in assertion messages: a recording's real token
    # must not reach a CI log through it.
    gateway = ReplayerGateway(
        "http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/", Path("t.rpl"), None,
        asyncio.new_event_loop(), token="MTIzNDU2Nzg5MDEyMzQ1Njc4.secret.token-in-repr",
    )  # fmt: skip
    try:
        assert "token-in-repr" not in repr(gateway)
        assert gateway.token is not None
    finally:
        gateway._loop.close()
