"""The typer app, its root options and the console entry point. Errors a user can cause
print one line and exit 1; anything else is a bug and keeps its traceback. The commands
register themselves from their modules (``replayer.cli`` imports them all)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from replayer import __version__
from replayer.cli.output import err, out
from replayer.errors import ReplayerError

# Help is click's plain formatter (no rich markup): it wraps at the terminal's width without
# cutting an option name, and prints `[[fault]]` as written. The subcommands' contexts inherit
# the settings, so `-h` works everywhere.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 200}


# The click typer runs on (its own copy in typer >= 0.17, hence no `import click`).
class _HelpFormatter(typer.Context.formatter_class):  # type: ignore[misc,valid-type]
    """Click's formatter, but an option's description never breaks inside a word at a hyphen
    (``[default: no-allow-unfired]`` stays whole)."""

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first_col = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        text_width = max(self.width - first_col - self.current_indent, 20)
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = textwrap.wrap(" ".join(second.split()), text_width, break_on_hyphens=False) or [
                ""
            ]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


class _Context(typer.Context):
    formatter_class = _HelpFormatter


class _Group(TyperGroup):
    """The root group: its commands' contexts use the help formatter above too."""

    context_class = _Context

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            command.context_class = _Context
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its first sentence whole (wrapped, not cut with "...")."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="replayer",
    help="Record, replay and break Discord gateway sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings=CONTEXT_SETTINGS,
    cls=_Group,
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
