"""``replayer diff A B``: what differs between two archives or replay transcripts, frame by
frame per connection (:mod:`replayer.archive.diff` says what is ignored). Exit 0: the same;
1: they differ; 2: a file could not be read (one line)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from replayer.archive.diff import IGNORED_KEYS, diff_records
from replayer.archive.reader import read_records
from replayer.archive.records import Record
from replayer.cli.output import err, out
from replayer.cli.root import app
from replayer.errors import ReplayerError

BAD_INPUT = 2


def _records(path: Path) -> list[Record]:
    try:
        return read_records(path)[1]
    except (ReplayerError, OSError) as exc:
        text = str(exc) if isinstance(exc, ReplayerError) else f"{path}: {exc.strerror or exc}"
        err.print(f"[bold red]error:[/] {escape(text)}")
        raise typer.Exit(BAD_INPUT) from None


@app.command(
    epilog="Ignored: record times, hosts and ports in URLs, the heartbeat's and its ACK's d, "
    f"and the values of {', '.join(sorted(IGNORED_KEYS))}."
)
def diff(
    a: Annotated[Path, typer.Argument(help="An archive or transcript (.rpl).", show_default=False)],
    b: Annotated[Path, typer.Argument(help="The one to compare it with.", show_default=False)],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Show at most N differences.")
    ] = 10,
    skip_heartbeats: Annotated[
        bool,
        typer.Option(
            "--skip-heartbeats", help="Leave heartbeats and their ACKs out (their number varies)."
        ),
    ] = False,
) -> None:
    """Compare two archives or replay transcripts frame by frame: exit 0 if the same, 1 if
    they differ (the first differences printed), 2 if one cannot be read.

    Connections pair in the order they opened; in each, the frames of each direction pair in
    order and their decoded payloads are compared, so encoding and compression never count.
    Each difference names the record index in A and B, the connection, direction and frame,
    its opcode or event, the JSON path and both values.
    """
    records_a, records_b = _records(a), _records(b)
    differences = diff_records(records_a, records_b, skip_heartbeats=skip_heartbeats)
    shown = list(itertools.islice(differences, limit + 1))
    if not shown:
        out.print(f"{a} and {b}: the same", markup=False)
        return
    for difference in shown[:limit]:
        out.print(difference.describe(), markup=False, soft_wrap=True)
    more = " (and more)" if len(shown) > limit else ""
    out.print(f"{a} and {b} differ: {min(len(shown), limit)} shown{more}", markup=False)
    raise typer.Exit(1)
