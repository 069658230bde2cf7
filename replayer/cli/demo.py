"""``replayer demo``: the whole tool in one offline run.

A bundled archive is replayed as the upstream gateway, with a RECONNECT and an
INVALID_SESSION planned; the recorder (mitmproxy, reverse mode) sits in front of it; a
real discord.py bot connects through the recorder. At the end: the summary of the archive
just recorded, and the verdicts on how the bot handled the faults.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from replayer.archive.inspection import ArchiveStats
from replayer.archive.reader import ArchiveReader
from replayer.cli.archives import print_stats
from replayer.cli.output import (
    ForceOption,
    complete_records,
    err,
    out,
    output_file,
    print_verdicts,
)
from replayer.cli.root import app
from replayer.errors import ReplayerError
from replayer.replay.faults import FaultPlan, parse_fault
from replayer.replay.verdicts import Verdict, all_ok
from replayer.resources import sample_archive

DEFAULT_ARCHIVE = sample_archive("small-bot.rpl")
DEFAULT_FAULTS = (
    "reconnect@event=MESSAGE_CREATE#3",
    "invalid-session:false@event=MESSAGE_CREATE#6",
)
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.demo.token-that-never-reaches-the-disk"
TIMEOUT_S = 60.0


class DemoError(ReplayerError, RuntimeError):
    """The demo could not run (missing archive, missing discord.py, a stuck bot)."""


@dataclass
class DemoResult:
    archive: Path
    verdicts: list[Verdict]
    messages_seen: int


async def run_demo(
    output: Path | None,
    archive: Path = DEFAULT_ARCHIVE,
    faults: tuple[str, ...] = DEFAULT_FAULTS,
    say: Callable[[str], None] = print,
    overwrite: bool = False,
) -> DemoResult:
    # mitmproxy and aiohttp load only when the demo runs, not at every command's start-up.
    from replayer.record.proxy import RecordingProxy, RecordSettings
    from replayer.replay.engine import ReplayOptions
    from replayer.replay.script import load_script
    from replayer.replay.server import ReplayServer

    try:
        import discord
        import yarl
    except ImportError:
        raise DemoError(
            "the demo runs a real discord.py bot: install it with pip install 'replayer[demo]'"
        ) from None
    if not archive.exists():
        raise DemoError(f"{archive}: no such file (the bundled sample archive)")
    script = load_script(archive)
    plan = FaultPlan(tuple(parse_fault(f) for f in faults))
    workdir = Path(tempfile.mkdtemp(prefix="replayer-demo-"))
    recorded = output or workdir / "demo.rpl"
    logging.getLogger("discord").setLevel(logging.ERROR)

    async with ReplayServer(
        script, ReplayOptions(speed=1.0, verdict_window_ms=20_000), plan=plan
    ) as upstream:
        say(f"upstream: replaying {archive.name} at {upstream.gateway_url} with faults: "
            + "; ".join(f.describe() for f in plan.faults))  # fmt: skip
        settings = RecordSettings(
            recorded, upstream=f"http://127.0.0.1:{upstream.port}", confdir=workdir / "mitmproxy",
            overwrite=overwrite,
        )  # fmt: skip
        async with RecordingProxy(settings) as proxy:
            say(f"recorder: mitmproxy on {proxy.gateway_url}, writing {recorded}")
            discord.http.Route.BASE = proxy.rest_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(proxy.gateway_url)
            intents = discord.Intents.default()
            intents.message_content = True
            client = discord.Client(intents=intents)
            seen: list[int] = []
            replay = upstream.replay
            assert replay is not None

            @client.event
            async def on_connect() -> None:
                say("bot: connected (IDENTIFY)")

            @client.event
            async def on_resumed() -> None:
                say("bot: resumed")

            @client.event
            async def on_message(message: discord.Message) -> None:
                seen.append(message.id)
                say(f"bot: message {len(seen)}: {message.content[:60]!r}")

            async with client:
                runner = asyncio.create_task(client.start(TOKEN))
                try:
                    async with asyncio.timeout(TIMEOUT_S):
                        # Until every fault has fired and been judged.
                        while replay.injector.pending or replay.judge.open_expectations:
                            if runner.done():
                                runner.result()
                                break
                            await asyncio.sleep(0.1)
                except TimeoutError:
                    raise DemoError(
                        f"the bot did not react to every fault within {TIMEOUT_S:g} s"
                    ) from None
                finally:
                    await client.close()
                    await runner
        verdicts = upstream.verdicts()
    return DemoResult(recorded, verdicts, len(seen))


@app.command()
def demo(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Keep the recorded archive here (a directory: a new file in it)."
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Offline, no token: replay a bundled session, record a real discord.py bot through
    mitmproxy while a RECONNECT and an INVALID_SESSION hit it, and judge its reactions."""
    import asyncio

    if output is not None:
        output = output_file(output, force=force)
    result = asyncio.run(
        run_demo(output, say=lambda line: err.print(line, markup=False), overwrite=force)
    )
    out.print()
    with ArchiveReader(result.archive) as reader:
        summary = ArchiveStats()
        for record in complete_records(reader):
            summary.add(record)
        print_stats(result.archive, reader, summary)
    print_verdicts(result.verdicts, out)
    if not result.verdicts or not all_ok(result.verdicts):
        raise typer.Exit(1)
