"""Step-by-step upgrades of older archive versions, applied while reading.

``MIGRATIONS[v]`` turns a version-``v`` row into a version-``v+1`` row; the reader chains
them from the file's version up to ``FORMAT_VERSION``, so old files stay readable without
being rewritten (as mitmproxy's ``io/compat.py`` does for flows). Version 1 is the first
format, so the table is empty; each format change adds one entry, bumps
``FORMAT_VERSION`` and adds a golden file under ``tests/golden/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = list[Any]
Migration = Callable[[Row], Row]

MIGRATIONS: dict[int, Migration] = {}


def upgrader(from_version: int, to_version: int) -> Migration | None:
    """One function taking a ``from_version`` row to ``to_version``; None if no change."""
    steps = [MIGRATIONS[v] for v in range(from_version, to_version)]
    if not steps:
        return None

    def upgrade(row: Row) -> Row:
        for step in steps:
            row = step(row)
        return row

    return upgrade
