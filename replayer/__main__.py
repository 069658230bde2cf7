"""``python -m replayer``."""

from __future__ import annotations

from replayer.cli import main

main()
