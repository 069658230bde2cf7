"""``replayer demo``: the whole tool in one offline run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from replayer.archive.inspection import ArchiveStats
from replayer.archive.reader import ArchiveReader
from replayer.cli.archives import print_stats
from replayer.cli.output import complete_records, err, out, print_verdicts
from replayer.cli.root import app


@app.command()
def demo(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Keep the recorded archive here.")
    ] = None,
) -> None:
    """Offline, no token: replay a bundled session, record a real discord.py bot through
    mitmproxy while a RECONNECT and an INVALID_SESSION hit it, and judge its reactions."""
    import asyncio

    from replayer.demo import run_demo

    result = asyncio.run(run_demo(output, say=lambda line: err.print(line, markup=False)))
    out.print()
    with ArchiveReader(result.archive) as reader:
        summary = ArchiveStats()
        for record in complete_records(reader):
            summary.add(record)
        print_stats(result.archive, reader, summary)
    print_verdicts(result.verdicts, out)
    if not result.verdicts or not all(v.passed for v in result.verdicts):
        raise typer.Exit(1)
