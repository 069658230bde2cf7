"""The client settings ``replay`` and ``record`` print (issue 17 item 5): every placeholder of
every snippet is filled, the README's table is the module's, the discord.py and hikari snippets
run and set what they say, and the replay prints them all with its own port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from replayer.cli.client_settings import CLIENTS, api_root, filled, readme_row, render
from replayer.resources import sample_archive

REST = "http://127.0.0.1:4321/api/v10"
GATEWAY = "ws://127.0.0.1:4321/"
IDLE = ("--exit-when-idle", "--first-client-grace", "1ms")  # no client comes: it exits at once
README = (Path(__file__).parents[3] / "README.md").read_text()


@pytest.mark.parametrize("settings", CLIENTS, ids=lambda c: c.library)
def test_every_placeholder_is_filled(settings) -> None:
    lines = filled(settings, REST, GATEWAY, "tok")
    text = "\n".join(lines)
    for placeholder in ("{rest_base}", "{api_root}", "{gateway_url}", "{token}"):
        assert placeholder not in text
    assert REST in text or 'http://127.0.0.1:4321/api"' in text
    if settings.library == "discord.py":
        assert GATEWAY in text


@pytest.mark.parametrize("settings", CLIENTS, ids=lambda c: c.library)
def test_the_readme_tables_every_library(settings) -> None:
    assert readme_row(settings) in README


def test_the_readme_says_what_discord_js_does_with_a_burst() -> None:
    assert "discord.js 14" in README
    assert "stale seq" in README
    assert "`--speed 0`" in README


def test_api_root() -> None:
    assert api_root("http://h:1/api/v10") == "http://h:1/api"
    assert api_root("http://h:1/api/v10/") == "http://h:1/api"
    assert api_root("http://h:1/api") == "http://h:1/api"


def _run_python(code: str) -> str:
    return subprocess.check_output([sys.executable, "-c", code], text=True, timeout=60).strip()


def test_the_discord_py_snippet_sets_its_rest_base_and_gateway() -> None:
    [settings] = [c for c in CLIENTS if c.library == "discord.py"]
    code = "\n".join(filled(settings, REST, GATEWAY, "tok"))
    got = _run_python(
        f"{code}\nprint(discord.http.Route('GET', '/gateway').url)\n"
        "print(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)"
    )
    assert got.splitlines() == [f"{REST}/gateway", GATEWAY]


def test_the_hikari_snippet_builds_a_bot_on_the_rest_base() -> None:
    [settings] = [c for c in CLIENTS if c.library == "hikari"]
    lines = filled(settings, REST, GATEWAY, "tok")
    code = "\n".join(line for line in lines if not line.startswith("bot.run"))
    got = _run_python(f"token = 'MTIz.x.y'\n{code}\nprint(bot.rest.__class__.__name__)")
    assert got.splitlines()[-1] == "RESTClientImpl"


def test_the_replay_prints_every_library() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "replayer", "replay", str(sample_archive("small-bot.rpl")), *IDLE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    port = result.stdout.split("REST base:")[1].split()[0].rsplit(":", 1)[1].split("/")[0]
    rest = f"http://127.0.0.1:{port}/api/v10"
    assert render(rest, f"ws://127.0.0.1:{port}/") in result.stdout
