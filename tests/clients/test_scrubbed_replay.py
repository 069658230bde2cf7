"""A scrubbed archive still replays: ``replayer/data/recordings/small-bot.rpl`` through ``replayer
scrub`` (the command, in a subprocess), then to real discord.py and hikari, whose
parsers and caches must take the pseudonyms for what they are: ids, names, text. And
no original name, message text or id is left in the scrubbed file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replayer.archive.reader import read_records
from replayer.archive.records import FrameRecord, HttpRecord
from replayer.archive.scrub import SAFE_NAMES, Scrubber, is_snowflake_value
from replayer.replay.engine import ReplayOptions
from replayer.resources import sample_archive
from tests.clients import test_discordpy_replay as dpy
from tests.clients import test_hikari_replay as hik
from tests.clients.conftest import BOT_ID, Scenario, replay, scenario_from_archive

SMALL_BOT = sample_archive("small-bot.rpl")
KEY = "published-fixture-key"
NAME_KEYS = ("username", "global_name", "nick", "name")
TEXT_KEYS = ("content", "description", "state")
MIN_TEXT = 5  # shorter words ("in", "do") may be filler words too


def originals(value: Any, key: str = "", found: set[str] | None = None) -> set[str]:
    """Every id, name and longer text of a decoded payload or body."""
    found = set() if found is None else found
    if isinstance(value, dict):
        for k, v in value.items():
            originals(v, k, found)
    elif isinstance(value, list):
        for item in value:
            originals(item, key, found)
    elif isinstance(value, str) and value not in SAFE_NAMES:  # (Discord's own words)
        is_id = is_snowflake_value(value) and key != "permissions"
        if is_id or key in NAME_KEYS or (key in TEXT_KEYS and len(value) >= MIN_TEXT):
            found.add(value)
    return found


@pytest.fixture(scope="module")
def scrubbed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scrub") / "small-bot-scrubbed.rpl"
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "scrub", str(SMALL_BOT), "-o", str(out), "--key", KEY],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_nothing_original_is_left(scrubbed: Path) -> None:
    _, records = read_records(SMALL_BOT)
    found: set[str] = set()
    for r in records:
        if isinstance(r, FrameRecord):
            originals(json.loads(r.payload), found=found)
        elif isinstance(r, HttpRecord) and r.response_body:
            originals(json.loads(r.response_body), found=found)
    assert {"sleepypuffin", "Gaming Lounge", "407082463766003713", "again"} <= found
    assert len(found) > 60
    raw = scrubbed.read_bytes()
    # Ids anywhere (paths too); names and texts as JSON strings ("coding" is in
    # "Accept-Encoding", a header kept as it was).
    left = sorted(
        s
        for s in found
        if (s.isdigit() and s.encode() in raw) or json.dumps(s, ensure_ascii=False).encode() in raw
    )
    assert left == []


def expectations(scrubbed: Path) -> tuple[Scenario, int]:
    """What a client must see, from the scrubbed archive; and the bot's new id."""
    scenario = scenario_from_archive("small-bot-scrubbed", scrubbed)
    bot_id = Scrubber(KEY.encode()).snowflake(BOT_ID)  # the bot's first id: no collision
    original = scenario_from_archive("small-bot", SMALL_BOT)
    assert len(scenario.messages) == len(original.messages) == 12
    assert scenario.guilds.keys().isdisjoint(original.guilds.keys())
    assert scenario.dispatches == original.dispatches
    return scenario, bot_id


async def test_discordpy_replays_the_scrubbed_archive(
    scrubbed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, bot_id = expectations(scrubbed)
    async with (
        replay(scenario, tmp_path, ReplayOptions(speed=0)) as server,
        dpy.running(server, monkeypatch, len(scenario.messages)) as probe,
    ):
        await probe.wait(probe.ready)
        await probe.wait(probe.all_messages)
        client = probe.client
        assert client.user is not None
        assert client.user.id == bot_id
        assert dpy.cached_guilds(client) == scenario.guilds
        assert dpy.seen(probe.messages) == scenario.messages
        authors = {m.author.name for m in probe.messages}
        assert authors.isdisjoint({"sleepypuffin", "cleverpuffin28", "luckycanyon94"})
    assert probe.task is not None
    assert probe.task.exception() is None


async def test_hikari_replays_the_scrubbed_archive(scrubbed: Path, tmp_path: Path) -> None:
    scenario, bot_id = expectations(scrubbed)
    async with (
        replay(scenario, tmp_path, ReplayOptions(speed=0)) as server,
        hik.running(server, scenario) as probe,
    ):
        await hik.wait(probe.started)
        await hik.wait(probe.all_guilds)
        await hik.wait(probe.all_messages)
        (ready,) = probe.ready
        assert ready.my_user.id == bot_id
        assert probe.guilds == scenario.guilds
        assert hik.seen(probe.messages) == scenario.messages
