"""Every command's help reads whole at 80 columns and wider (issue 17 item 6): nothing cut with
an ellipsis, no line over the width, no option name or description broken, rich markup not
eaten (`[[fault]]`), and `-h` as well as `--help` everywhere."""

from __future__ import annotations

import click
import pytest
import typer
from typer.testing import CliRunner

from replayer.cli import app

ROOT = typer.main.get_command(app)
COMMANDS = sorted(ROOT.commands)  # type: ignore[attr-defined]


def render(args: list[str], columns: int) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": str(columns)}, terminal_width=columns)
    assert result.exit_code == 0, result.output
    return result.output


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_is_whole_at_the_width(command: str, columns: int) -> None:
    args = [command, "--help"] if command else ["--help"]
    text = render(args, columns)
    assert "…" not in text
    for line in text.splitlines():
        assert len(line) <= columns, line
    cmd: click.Command = ROOT.commands[command] if command else ROOT  # type: ignore[attr-defined]
    if cmd.help:
        first = cmd.help.split("\n\n")[0]
        assert flat(first.replace("\b", "")) in flat(text)
    for param in cmd.params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert f" {name}" in f" {text}".replace("\n", " ").replace(",", " "), name
        help_text = getattr(param, "help", None)
        if help_text:
            assert flat(help_text) in flat(text), help_text


@pytest.mark.parametrize("columns", [80, 120])
def test_the_fault_help_keeps_its_brackets(columns: int) -> None:
    text = render(["replay", "--help"], columns)
    assert "[[fault]]" in text
    assert "reconnect@event=READY" in text


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_dash_h_is_help_everywhere(command: str) -> None:
    args = [command, "-h"] if command else ["-h"]
    assert render(args, 80) == render([*args[:-1], "--help"], 80)


def test_the_root_lists_each_command_with_its_first_sentence() -> None:
    text = flat(render(["--help"], 80))
    for name in COMMANDS:
        command = ROOT.commands[name]  # type: ignore[attr-defined]
        assert flat(command.get_short_help_str(limit=1000)) in text
