"""Step-by-step upgrades of older archive versions, applied while reading.

``MIGRATIONS[v]`` turns a version-``v`` row into a version-``v+1`` row; the reader chains
them from the file's version up to ``FORMAT_VERSION``, so old files stay readable without
being rewritten (as mitmproxy's ``io/compat.py`` does for flows). Each format change adds
one entry, bumps ``FORMAT_VERSION`` and adds a golden file under ``tests/golden/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = list[Any]
Migration = Callable[[Row], Row]

_CONNECTION, _CONNECTION_INFO = 1, 5  # record kinds (records.RecordKind)


def _v1_to_v2(row: Row) -> Row:
    """Version 2 adds the connection kind: ``connection`` gets ``kind`` (every version-1
    connection is a main-gateway one) and ``connection_info`` a nil ``kind`` ("not
    learned"). Rows of another shape are left for the reader to report."""
    if type(row) is list and row:
        kind = row[0]
        if kind == _CONNECTION and len(row) == 8:
            return [*row, "gateway"]
        if kind == _CONNECTION_INFO and len(row) == 6:
            return [*row, None]
    return row


MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}
#: The versions whose step leaves frame rows as they are: a file of such a version can
#: have its frames read as runs of rows (``ArchiveReader.runs``), only the others upgraded.
FRAME_ROWS_KEPT: frozenset[int] = frozenset({1})


def frame_rows_current(from_version: int, to_version: int) -> bool:
    """Whether a ``from_version`` file's frame rows are already ``to_version`` rows."""
    return all(v in FRAME_ROWS_KEPT for v in range(from_version, to_version))


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
