"""The ``replayer`` command line (typer)."""

from __future__ import annotations

from replayer.cli.root import app, main

__all__ = ["app", "main"]
