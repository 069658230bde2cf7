"""The migration steps: what a step leaves alone, the reader may read as it is."""

from __future__ import annotations

import pytest

from replayer.archive.migrations import FRAME_ROWS_KEPT, MIGRATIONS, frame_rows_current

FRAME_ROWS = (
    [2, 1, 10, 0, 1, b"{}", 0, None, None, 2],
    [2, 1, 10, 0, 1, b"{}", 0, 5, "X", 9, 1, "e"],
)


@pytest.mark.parametrize("version", sorted(FRAME_ROWS_KEPT))
def test_a_step_said_to_keep_frame_rows_keeps_them(version: int) -> None:
    # ArchiveReader.runs reads such a file's frames as rows of the current version.
    for row in FRAME_ROWS:
        assert MIGRATIONS[version](list(row)) == row
    assert frame_rows_current(version, version + 1)


def test_the_v1_step_changes_connection_rows() -> None:
    connection = [1, 1, 0, "wss://gateway.discord.gg/?v=10", 10, "json", None, None]
    assert MIGRATIONS[1](connection) == [*connection, "gateway"]
