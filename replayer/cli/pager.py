"""Long output through a pager, as git does: when stdout is a terminal, lines go to ``$PAGER``
(default ``less -FRX``: quits at once if it all fits, keeps colours, leaves the screen as it
was); piped, or with ``--no-pager``, ``PAGER=`` or ``PAGER=cat``, they go straight to stdout.
A pager that cannot start (none installed, as on a bare Windows) means no pager."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping

DEFAULT_PAGER = "less -FRX"


def pager_command(environ: Mapping[str, str] = os.environ) -> str | None:
    """The pager to run (a shell command, as git runs ``$PAGER``), or None for none:
    ``PAGER`` empty or ``cat``, or its program not found."""
    text = environ.get("PAGER", DEFAULT_PAGER).strip()
    if not text or text == "cat":
        return None
    try:
        program = shlex.split(text)[0]
    except (ValueError, IndexError):
        return None
    return text if shutil.which(program) else None


def line_width() -> int:
    """The width lines are fitted to: the terminal's (or ``COLUMNS``), 80 when piped."""
    return shutil.get_terminal_size((80, 24)).columns


@contextlib.contextmanager
def paged(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A function that writes one line, through the pager when ``enabled`` and stdout is a
    terminal. Quitting the pager early stops the output quietly."""
    command = pager_command() if enabled and sys.stdout.isatty() else None
    if command is None:
        yield lambda line: print(line, flush=False)
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LESSCHARSET", "utf-8")
    proc = subprocess.Popen(
        command, shell=True, stdin=subprocess.PIPE, env=env, text=True, encoding="utf-8"
    )
    assert proc.stdin is not None
    stdin = proc.stdin

    def write(line: str) -> None:
        stdin.write(line + "\n")

    try:
        yield write
    except BrokenPipeError:
        pass  # the pager was quit before the end
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            stdin.close()
        proc.wait()
