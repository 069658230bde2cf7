"""What every command shares: the two consoles, the one-line error exit, where output
files go (never over an existing one without ``--force``), the parsers of durations, the
formatting of sizes and offsets, progress bars, the client snippets and the verdict
table."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, NoReturn, overload

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import Record
from replayer.archive.runs import FrameRun
from replayer.cli import client_settings
from replayer.errors import TruncatedArchiveError
from replayer.replay.verdicts import Result, Verdict, summary

if TYPE_CHECKING:
    import asyncio

# Piped output is not squeezed into 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200
)

ArchivePath = Annotated[Path, typer.Argument(help="Archive file (.rpl).", show_default=False)]


def fail(message: str) -> NoReturn:
    """Print one error line and exit 1."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


ForceOption = Annotated[
    bool, typer.Option("--force", help="Replace an output file that already exists.")
]


def output_file(path: Path, *, force: bool, option: str = "--output", suffix: str = ".rpl") -> Path:
    """Where a command writes ``option``: ``path`` itself, refused (one line, exit 1) if
    something is there and ``force`` is off; or, when ``path`` is a directory, a new
    timestamped file in it (``replayer-20261204-175723.rpl``, ``-2`` etc. if taken), whose
    name is printed. Called before anything starts, so a refusal touches nothing."""
    if path.is_dir():
        target = new_file_in(path, suffix)
        err.print(f"{option}: writing {target}", markup=False)
        return target
    if not force and os.path.lexists(path):
        fail(f"{path}: already exists (--force replaces it; a directory gets a new file)")
    return path


def new_file_in(directory: Path, suffix: str, now_s: float | None = None) -> Path:
    """A name in ``directory`` that nothing holds yet, from the local time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now_s))
    candidate = directory / f"replayer-{stamp}{suffix}"
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = directory / f"replayer-{stamp}-{n}{suffix}"
    return candidate


def open_text_output(path: Path, *, force: bool) -> IO[str]:
    """``path`` opened for writing text, failing (one line) rather than replacing a file
    that appeared since :func:`output_file` looked, unless ``force``."""
    try:
        return open(path, "w" if force else "x", encoding="utf-8")
    except FileExistsError:
        fail(f"{path}: already exists (--force replaces it; a directory gets a new file)")
    except OSError as exc:
        fail(f"{path}: cannot write: {exc.strerror or exc}")


MAX_DURATION_NS = 2**63 - 1  # ~292 years: what fits a signed 64-bit integer


def duration_ns(text: str, option: str) -> int:
    """``1.5``, ``1.5s``, ``250ms``, ``2m`` -> nanoseconds, exactly (no float: 400 digits
    are refused as too long, not overflowed into infinity)."""
    m = re.fullmatch(r"\s*(\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})\s*(ms|s|m)?\s*", text)
    if not m:
        raise typer.BadParameter(
            f"{text[:40]!r} is not a time offset like 1.5s, 250ms or 2m", param_hint=option
        )
    scale = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, None: 10**9}[m.group(2)]
    ns = round(Fraction(m.group(1)) * scale)
    if ns > MAX_DURATION_NS:
        raise typer.BadParameter(
            f"{text[:40]!r} is too long (292 years at most)", param_hint=option
        )
    return ns


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_offset(t_ns: int) -> str:
    return f"{t_ns / 1e9:12.6f}s"


PROGRESS_FROM_BYTES = 64 << 20  # archives smaller than this load without a progress bar


@contextlib.contextmanager
def progress_bar(what: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr (only for big jobs on a terminal)."""
    if total < PROGRESS_FROM_BYTES or not err.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{escape(what)}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@overload
def complete_records(reader: ArchiveReader) -> Iterator[Record]: ...
@overload
def complete_records(reader: ArchiveReader, *, runs: bool) -> Iterator[Record | FrameRun]: ...
def complete_records(reader: ArchiveReader, *, runs: bool = False) -> Iterator[Record | FrameRun]:
    """The records (``runs``: with runs of frames, ``ArchiveReader.runs``), turning a
    truncated tail into an error after the last complete one."""
    try:
        yield from reader.runs() if runs else reader
    except TruncatedArchiveError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


def on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Call ``callback`` on SIGINT and SIGTERM: through the loop's signal handlers where there
    are (POSIX), else (Windows' loops raise NotImplementedError) through ``signal.signal``,
    which hands the call to the loop."""
    for name in ("SIGINT", "SIGTERM"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        try:
            loop.add_signal_handler(number, callback)
        except (NotImplementedError, RuntimeError):
            signal.signal(number, lambda _n, _f: loop.call_soon_threadsafe(callback))


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the reader gives the one-line error


def snippets(rest_base: str, gateway_url: str) -> str:
    """How to point each common client library at ``rest_base`` and ``gateway_url``."""
    return client_settings.render(rest_base, gateway_url)


_RESULT_STYLE = {
    Result.PASS: "green",
    Result.NON_STRICT: "yellow",
    Result.FAIL: "red",
    Result.NOT_FIRED: "magenta",
}


def print_verdicts(verdicts: list[Verdict], console: Console = err) -> None:
    if not verdicts:
        console.print("no verdicts: no fault was planned and no client stayed long enough")
        return
    table = Table(
        "",
        "verdict (docs section)",
        "expected",
        "observed",
        "fault at",
        "reaction",
        title="verdicts",
        title_justify="left",
    )
    for v in verdicts:
        result = v.result or Result.FAIL
        mark = f"[{_RESULT_STYLE[result]}]{result}[/]"
        at = f"{v.t_fault_ms / 1000:.3f}s" if v.t_fault_ms is not None else "-"
        reaction = f"{v.reaction_ms:.0f} ms" if v.reaction_ms is not None else "-"
        observed = v.observed + "".join(f"; {n}" for n in v.notes)
        name = escape(v.name) + (f"\n[dim]{escape(v.docs)}[/]" if v.docs else "")
        table.add_row(mark, name, escape(v.expected), escape(observed), at, reaction)
    console.print(table)
    console.print(summary(verdicts))
