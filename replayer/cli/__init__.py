"""The ``replayer`` command line (typer): ``root`` holds the app and the entry point,
``output`` what every command shares, and one module per command family registers its
commands on the app: ``archives`` (inspect, export, import, import-mitm, verify), ``diff``,
``scrub``, ``replay``, ``record``, ``synth``, ``demo``, ``conform``. The top layer: may import every
other package."""

from __future__ import annotations

# Importing a command module registers its commands, in the order ``--help`` lists them.
# isort: off
from replayer.cli import archives, diff, scrub, replay, record, synth, demo, conform

# isort: on
from replayer.cli.root import app, main

__all__ = [
    "app",
    "archives",
    "conform",
    "demo",
    "diff",
    "main",
    "record",
    "replay",
    "scrub",
    "synth",
]
