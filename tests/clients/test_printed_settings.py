"""The discord.py settings ``replayer replay`` prints, pasted as printed into a real discord.py
bot, bring it to READY and its first guild through the replay (issue 17 item 5): the snippet
is what works, not only what is shown."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap

from replayer.resources import sample_archive
from tests.clients.conftest import TIMEOUT, TOKEN

BOT = """
intents = discord.Intents(guilds=True, guild_messages=True, message_content=True)
client = discord.Client(intents=intents)

@client.event
async def on_ready():
    print("ready as", client.user.name, "in", len(client.guilds), "guild", flush=True)
    await client.close()

client.run({token!r}, log_handler=None)
"""


def discord_py_block(printed: str) -> str:
    """The discord.py lines of what ``replay`` printed, unindented."""
    block = printed.split("discord.py:\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


async def test_the_printed_discord_py_settings_work() -> None:
    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replayer", "replay", str(sample_archive("small-bot.rpl")),
        "--speed", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert replay.stdout is not None
    printed = ""
    try:
        async with asyncio.timeout(TIMEOUT):
            while line := (await replay.stdout.readline()).decode():
                printed += line
                if line.startswith("note:"):  # the last line of the settings
                    break
        code = discord_py_block(printed) + BOT.format(token=TOKEN)
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        out, err = await asyncio.wait_for(bot.communicate(), TIMEOUT)
        assert bot.returncode == 0, err.decode()
        assert out.decode().startswith("ready as "), out.decode() + err.decode()
        assert "in 1 guild" in out.decode()
    finally:
        replay.terminate()
        await replay.wait()
