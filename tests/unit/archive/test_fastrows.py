"""The C accelerator of the reader agrees with the Python path, field for field."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.archive import reader as reader_module
from replayer.archive import records
from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameFlag, FrameRecord, FrameType
from replayer.gateway.opcodes import Direction

try:
    from replayer.archive import _fastrows
except ImportError:  # pragma: no cover - built without a C compiler
    _fastrows = None  # type: ignore[assignment]

GOLDEN = Path(__file__).parents[2] / "golden" / "archive-v1.rpl"
needs_c = pytest.mark.skipif(_fastrows is None, reason="the C accelerator was not built")

# Every type msgpack can hand the reader, valid or not for each field.
anything = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.binary(max_size=5)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)
)
good = [
    st.integers(0, 2**64 - 1),  # conn_id
    st.integers(0, 2**64 - 1),  # t_ns
    st.sampled_from([0, 1]),  # direction
    st.sampled_from([1, 2]),  # frame type
    st.binary(max_size=8),  # payload
    st.none() | st.integers(-(2**63), 2**64 - 1),  # op
    st.none() | st.integers(-(2**63), 2**64 - 1),  # s
    st.none() | st.text(max_size=8),  # t
    st.integers(0, 2**64 - 1),  # wire size
    st.integers(0, 15),  # flags
    st.none() | st.text(max_size=8),  # error
]


@st.composite
def frame_rows(draw: st.DrawFn) -> list[Any]:
    """Mostly well-formed frame rows, with each field now and then anything at all."""
    row: list[Any] = [draw(st.sampled_from([2, 2, 2, 1, True, 2.0]))]
    for field_values in good:
        row.append(draw(anything if draw(st.integers(0, 11)) == 0 else field_values))
    return row


def python_fast(row: Any) -> FrameRecord | None:
    return records._python_fast_frame(row)


@needs_c
@settings(max_examples=2000, deadline=None)
@given(row=frame_rows() | st.lists(anything, max_size=13))
def test_c_and_python_agree_on_every_row(row: list[Any]) -> None:
    expected = python_fast(list(row))
    got = _fastrows.frame_from_row(list(row))
    assert got == expected
    if got is not None:  # same types too: enum members, not ints
        assert [type(getattr(got, f)) for f in records.FRAME_FIELDS] == [
            type(getattr(expected, f)) for f in records.FRAME_FIELDS
        ]


@needs_c
def test_c_records_are_full_records() -> None:
    row = [2, 3, 10**15, 1, 1, b'{"op":0}', 0, 5, "READY", 9, 4, None]
    record = _fastrows.frame_from_row(row)
    assert record == FrameRecord(
        3, 10**15, Direction.SERVER, FrameType.TEXT, b'{"op":0}', 0, 5, "READY", 9,
        FrameFlag.REDACTED,
    )  # fmt: skip
    assert type(record) is FrameRecord
    assert record.direction is Direction.SERVER
    assert record.flags is FrameFlag.REDACTED
    assert repr(record).startswith("FrameRecord(conn_id=3")
    record.op = 1  # a normal, writable dataclass instance
    assert record.op == 1


@needs_c
def test_c_records_hold_and_release_references() -> None:
    payload = os.urandom(32)
    before = sys.getrefcount(payload)
    made = [_fastrows.frame_from_row([2, 1, 2, 0, 2, payload, 1, None, None, 32, 0, None])]
    made *= 100
    assert sys.getrefcount(payload) == before + 1
    made.clear()
    gc.collect()
    assert sys.getrefcount(payload) == before


def test_the_reader_uses_the_accelerator_when_it_was_built() -> None:
    if os.environ.get("REPLAYER_PURE_PYTHON"):
        assert records.fast_frame_from_row is records._python_fast_frame
        return
    assert _fastrows is not None, (
        "replayer/archive/_fastrows.c was not built (no C compiler at install?); "
        "set REPLAYER_PURE_PYTHON=1 to test the Python path alone"
    )
    assert records.fast_frame_from_row is _fastrows.frame_from_row


def test_both_paths_read_the_golden_archive_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    with ArchiveReader(GOLDEN) as reader:
        default = list(reader)
    monkeypatch.setattr(reader_module, "fast_frame_from_row", records._python_fast_frame)
    with ArchiveReader(GOLDEN) as reader:
        pure = list(reader)
    assert default == pure
    assert sum(isinstance(r, FrameRecord) for r in pure) >= 5


def test_pure_python_can_be_forced() -> None:
    code = (
        "from replayer.archive import records as r; "
        "print(r.fast_frame_from_row is r._python_fast_frame)"
    )
    env = {**os.environ, "REPLAYER_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
