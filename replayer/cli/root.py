"""The typer app, its root options and the console entry point. Errors a user can cause
print one line and exit 1; anything else is a bug and keeps its traceback. The commands
register themselves from their modules (``replayer.cli`` imports them all)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from replayer import __version__
from replayer.cli.output import err, out
from replayer.errors import ReplayerError

app = typer.Typer(
    name="replayer",
    help="Record, replay and break Discord gateway sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"replayer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Record, replay and break Discord gateway sessions."""


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ReplayerError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except BrokenPipeError:  # `replayer export x | head`
        sys.stderr.close()
        sys.exit(0)
