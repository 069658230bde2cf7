"""The archive reader and ``verify``'s checker on hostile bytes: only ``ArchiveError``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import strategies as st

from replayer.archive.header import Header
from replayer.archive.reader import ArchiveReader
from replayer.archive.verify import ArchiveChecker, check_archive
from replayer.errors import ArchiveError
from tests.archives import session_lines, write_archive

from .conftest import fuzz_pair, fuzz_target

HEADER = msgpack.packb(Header(created_unix_ns=0).to_map())

with tempfile.TemporaryDirectory() as _tmp:
    VALID = write_archive(Path(_tmp) / "a.rpl", session_lines()).read_bytes()

# Any msgpack value, ext types and 64-bit extremes included.
msgpack_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    lambda inner: (
        st.lists(inner, max_size=14)
        | st.dictionaries(st.text(max_size=8) | st.integers(0, 9), inner, max_size=5)
    ),
    max_leaves=30,
)
# Rows shaped like records: a kind, then fields of any type.
record_like = st.builds(
    lambda kind, fields: [kind, *fields],
    st.integers(0, 6),
    st.lists(msgpack_value, min_size=4, max_size=12),
)


def _check(path: str, use_runs: bool) -> ArchiveError | None:
    checker = ArchiveChecker()
    try:
        with ArchiveReader(path) as reader:
            if use_runs:  # verify's way: frames in runs (reader.runs)
                check_archive(reader)
                return None
            for index, record in enumerate(reader, start=1):
                try:
                    checker.check(record)
                except ArchiveError as exc:
                    raise exc.located(path=path, index=index) from None
    except ArchiveError as exc:
        return exc.located(path=path)
    return None


def read_all(data: bytes) -> None:
    """Read and check the bytes record by record, and as verify does (in runs): the two
    must agree, on the error too."""
    with tempfile.NamedTemporaryFile(suffix=".rpl") as f:
        f.write(data)
        f.flush()
        by_record = _check(f.name, use_runs=False)
        by_run = _check(f.name, use_runs=True)
        assert repr(by_run) == repr(by_record)
        assert str(by_run) == str(by_record)
        if by_record is not None:
            raise by_record


@fuzz_target(ArchiveError)
def bytes_after_header(tail: bytes) -> None:
    read_all(HEADER + tail)


@fuzz_target(ArchiveError)
def packed_rows(rows: list[Any]) -> None:
    read_all(HEADER + b"".join(msgpack.packb(r) for r in rows))


@fuzz_target(ArchiveError)
def mutated_archive(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(VALID)
    for pos, byte in edits:
        data[pos % len(data)] = byte
    read_all(bytes(data[: len(data) - cut]))


test_bytes_after_header, test_bytes_after_header_long = fuzz_pair(
    bytes_after_header, tail=st.binary(max_size=300)
)
test_packed_rows, test_packed_rows_long = fuzz_pair(
    packed_rows, rows=st.lists(record_like | msgpack_value, max_size=6)
)
test_mutated_archive, test_mutated_archive_long = fuzz_pair(
    mutated_archive,
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 40),
)


def test_the_targets_tell_good_from_bad() -> None:
    """What the fuzz targets rely on: a valid archive reads whole, and a bad one raises
    the documented error (which the targets allow), not something else."""
    read_all(VALID)
    with pytest.raises(ArchiveError, match="truncated"):
        read_all(VALID[:-3])
    with pytest.raises(ArchiveError):
        read_all(HEADER + msgpack.packb([99, 1, 2, 3]))
