from __future__ import annotations

import pytest
from hypothesis import given

from replayer.archive.records import Record, from_row, to_row
from replayer.errors import ArchiveError

from .strategies import any_record


@given(any_record)
def test_row_round_trip(record: Record) -> None:
    assert from_row(to_row(record)) == record


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (7, "kind", "non-empty array"),
        ([], "kind", "non-empty array"),
        ([99, 1], "kind", "record kind"),
        (["frame"], "kind", "record kind"),
        ([2, 1, 2], "kind", "has 12 fields, this one 3"),
        ([2, -1, 0, 0, 1, b"{}", 0, None, None, 2, 0, None], "frame.conn_id", "non-negative"),
        ([2, 1, 0, 5, 1, b"{}", 0, None, None, 2, 0, None], "frame.direction", "one of"),
        ([2, 1, 0, 0, 1, "{}", 0, None, None, 2, 0, None], "frame.payload", "binary"),
        ([2, 1, 0, 0, 1, b"{}", "x", None, None, 2, 0, None], "frame.op", "integer"),
        ([3, 1, 0, 1000, "", 0, "yes"], "close.clean", "true or false"),
        ([1, 1, 0, "u", [], [], None, None, "gateway"], "connection.query", "a map"),
        ([1, 1, 0, "u", {}, [], [3, 2], None, "gateway"], "connection.shard", "shard_id"),
        ([1, 1, 0, "u", {}, [], None, None, "rtc"], "connection.kind", "one of"),
        ([1, 1, 0, "u", {}, [], None, None, None], "connection.kind", "one of"),
        ([1, 1, 0, "u", {}, [], None, None], "kind", "has 9 fields, this one 8"),
        ([5, 1, 0, None, None, None, 1], "connection_info.kind", "one of"),
        ([4, 0, "GET", "h", "/", 200, [["a"]], [], b"", b""], "http.request_headers", "pair"),
    ],
)
def test_bad_rows_name_the_field(row: object, field: str, message: str) -> None:
    with pytest.raises(ArchiveError) as info:
        from_row(row)
    assert info.value.field == field
    assert message in str(info.value)
