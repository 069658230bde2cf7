"""Streaming archive reader: flat memory whatever the file size.

Records come one at a time from a ``msgpack.Unpacker`` reading the file in chunks, so
memory holds one chunk and one record. The unpacker's limits (``archive/bounds.py``) cap
each array and map; an object still incomplete after ``SCAN_FROM_BYTES`` is walked on its
bytes before the unpacker reads on, so no record costs much more memory than it weighs.
Problems are ``ArchiveError`` naming the file, the record index (the header is record 0)
and the field. A file that ends inside a record
raises ``TruncatedArchiveError`` after every complete record before it has been yielded.
:meth:`ArchiveReader.runs` is the fast way through a big archive: the same records, with
runs of plain frame rows read as columns by the C accelerator (``archive/runs.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import msgpack

from replayer.archive import header as header_module
from replayer.archive.bounds import MAX_CONTAINER_LEN, SCAN_FROM_BYTES, check_object_cost
from replayer.archive.header import Header, header_from_map
from replayer.archive.migrations import frame_rows_current, upgrader
from replayer.archive.records import Record, fast_frame_from_row, from_row
from replayer.archive.runs import FrameRun, scan
from replayer.errors import ArchiveError, TruncatedArchiveError
from replayer.portable import pread

# This reader's chunks: with SCAN_FROM_BYTES, what may be decoded before a cost walk.
GUARDED_READ_BYTES = 128 << 10
# One record may be as large as a gateway message can be (GUILD_CREATE of a huge guild).
MAX_RECORD_BYTES = 256 << 20
_DECODE_ERRORS = (
    msgpack.BufferFull,  # a length prefix larger than MAX_RECORD_BYTES
    msgpack.ExtraData,
    msgpack.FormatError,
    msgpack.StackError,
    ValueError,
    TypeError,
)


_OVER_LIMIT = re.compile(r"(\d+) exceeds max_(array|map|str|bin|ext)_len\((\d+)\)")


def _reason(exc: Exception) -> str:
    """msgpack's complaint, in the format's words when it is one of our limits."""
    reason = str(exc) or type(exc).__name__
    m = _OVER_LIMIT.search(reason)
    if m is not None:
        n, kind, limit = m.groups()
        what = {"array": "an array", "map": "a map"}.get(kind, f"a {kind}")
        return f"{what} of {n} elements; the format allows {limit} at most"
    return reason


class _GuardedFile:
    """The file as the unpacker reads it, from ``start`` on (positional reads: the file
    has no shared position): before handing it more bytes for an object that is already
    ``SCAN_FROM_BYTES`` long, walk that object (once) for its cost."""

    def __init__(self, fd: int, reader: ArchiveReader, start: int) -> None:
        self._fd = fd
        self._reader = reader
        self._pos = start  # file offset of the next byte to hand to the unpacker
        self._scanned = -1  # start offset of the object last walked

    def read(self, n: int) -> bytes:
        start = self._reader._end
        if self._pos - start >= SCAN_FROM_BYTES and self._scanned != start:
            self._scanned = start
            check_object_cost(self._fd, start)
        data = pread(self._fd, n, self._pos)
        self._pos += len(data)
        return data


# What _next_row returns for a nil object (None is the end of the file).
_NIL_OBJECT: list[Any] = [None]

# What runs() reads at a time: the longest run, and the largest record it can hold.
RUN_CHUNK_BYTES = 1 << 20


class ArchiveReader:
    """Read an archive: ``header`` at once, then iterate for the records."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.records_read = 0
        try:
            self._file: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            raise ArchiveError("no such file", path=str(path)) from None
        except IsADirectoryError:
            raise ArchiveError("is a directory, not an archive", path=str(path)) from None
        except OSError as exc:
            raise ArchiveError(f"cannot open: {exc.strerror}", path=str(path)) from None
        self._size = os.fstat(self._file.fileno()).st_size
        self._end = 0  # file offset just after the last complete record
        self._open_unpacker(0)
        self.header = self._read_header()
        self._upgrade = upgrader(self.header.format_version, header_module.FORMAT_VERSION)
        self._frame_rows_current = frame_rows_current(
            self.header.format_version, header_module.FORMAT_VERSION
        )

    def _open_unpacker(self, offset: int) -> None:
        """Read on with a new unpacker from ``offset`` (where a record starts)."""
        self._base = offset  # file offset where the unpacker started
        self._unpacker = msgpack.Unpacker(
            _GuardedFile(self._file.fileno(), self, offset),
            read_size=GUARDED_READ_BYTES,
            max_buffer_size=MAX_RECORD_BYTES,
            max_array_len=MAX_CONTAINER_LEN,
            max_map_len=MAX_CONTAINER_LEN,
            raw=False,
            use_list=True,
            strict_map_key=False,
        )

    @property
    def size(self) -> int:
        """The file's size in bytes when it was opened."""
        return self._size

    @property
    def end_offset(self) -> int:
        """File offset just after the last complete record read (where the next starts)."""
        return self._end

    def _fail(self, exc: ArchiveError, index: int) -> ArchiveError:
        return exc.located(path=str(self.path), index=index)

    def _read_header(self) -> Header:
        if self._size == 0:
            raise ArchiveError("empty file, not an archive", path=str(self.path))
        try:
            obj = self._unpacker.unpack()
        except msgpack.OutOfData:
            raise self._truncated(0) from None
        except ArchiveError as exc:  # too costly to build (bounds.py)
            raise self._fail(exc, 0) from None
        except _DECODE_ERRORS:
            raise ArchiveError(
                "not a replayer archive (no archive header)", path=str(self.path), index=0
            ) from None
        self._end = self._base + self._unpacker.tell()
        try:
            return header_from_map(obj)
        except ArchiveError as exc:
            raise self._fail(exc, 0) from None

    def _truncated(self, index: int) -> TruncatedArchiveError:
        where = self._end
        return TruncatedArchiveError(
            f"truncated: ends inside record {index} "
            f"({self._size - where} bytes of an incomplete record after byte {where}); "
            f"{self.records_read} complete records before it are readable",
            records_read=self.records_read,
            path=str(self.path),
        )

    def _next_row(self, index: int) -> list[Any] | None:
        """The next raw row, or None at a clean end of file (a nil object is ``[None]``:
        not a row, as from_row says, but not the end either)."""
        try:
            row: list[Any] = self._unpacker.unpack()
        except msgpack.OutOfData:
            if self._end < self._size:
                raise self._truncated(index) from None
            return None
        except ArchiveError as exc:  # too costly to build (bounds.py)
            raise self._fail(exc, index) from None
        except _DECODE_ERRORS as exc:
            reason = _reason(exc)
            raise ArchiveError(
                f"corrupt data after byte {self._end}: {reason}",
                path=str(self.path),
                index=index,
            ) from None
        self._end = self._base + self._unpacker.tell()
        if row is None:
            row = _NIL_OBJECT
        elif self._upgrade is not None:
            row = self._upgrade(row)
        self.records_read = index
        return row

    def rows(self) -> Iterator[list[Any]]:
        """Raw rows (upgraded to the current version), for tools that want speed."""
        index = self.records_read + 1
        while (row := self._next_row(index)) is not None:
            yield row
            index += 1

    def __iter__(self) -> Iterator[Record]:
        # The reader's hot path: one loop iterating the unpacker (no try per record), and
        # frame rows -- nearly all rows -- built by fast_frame_from_row() (in C when it
        # was compiled) without the generic dispatch of from_row().
        if self._base + self._unpacker.tell() != self._end:  # runs() read on
            self._open_unpacker(self._end)
        unpacker = self._unpacker
        tell = unpacker.tell
        base = self._base
        upgrade = self._upgrade
        parse, fast = from_row, fast_frame_from_row
        index = self.records_read
        try:
            for unpacked in unpacker:
                # Kept current per record: end_offset tells callers where each record ends.
                self._end = base + tell()
                self.records_read = index = index + 1
                row = unpacked if upgrade is None else upgrade(unpacked)
                record: Record | None = fast(row)
                if record is None:
                    try:
                        record = parse(row)
                    except ArchiveError as exc:
                        raise self._fail(exc, index) from None
                yield record
        except ArchiveError as exc:  # from parse(), located; or from the guard (bounds.py)
            raise self._fail(exc, index + 1) from None
        except _DECODE_ERRORS as exc:
            reason = _reason(exc)
            raise ArchiveError(
                f"corrupt data after byte {self._end}: {reason}",
                path=str(self.path),
                index=index + 1,
            ) from None
        if self._end < self._size:
            raise self._truncated(index + 1)

    def runs(self, check_json: bool = False) -> Iterator[FrameRun | Record]:
        """The records from here on, with consecutive plain frame rows as
        :class:`~replayer.archive.runs.FrameRun` s (``check_json``: with their payloads'
        JSON checked, ``FrameRun.json_ok``). The same records as iterating, the same
        errors at the same records; only records, without the C accelerator."""
        if scan is None or not self._frame_rows_current:
            yield from self
            return
        fd = self._file.fileno()
        chunk, chunk_base = b"", -1  # the file's bytes from chunk_base on (none yet)
        while True:
            pos = self._end
            if not chunk_base <= pos <= chunk_base + len(chunk):  # msgpack read past it
                chunk, chunk_base = pread(fd, RUN_CHUNK_BYTES, pos), pos
            rows, stop, incomplete, columns = scan(chunk, pos - chunk_base, chunk_base, check_json)
            if rows:
                run = FrameRun.from_scan(self.records_read + 1, columns, chunk, chunk_base)
                self._end = chunk_base + stop
                self.records_read += rows
                yield run
                continue
            if incomplete and chunk_base != pos:  # read on from this record
                chunk, chunk_base = pread(fd, RUN_CHUNK_BYTES, pos), pos
                continue
            # Not a plain frame row, or longer than a chunk, or the end: msgpack reads it.
            if self._base + self._unpacker.tell() != pos:
                self._open_unpacker(pos)
            record = self._next_record()
            if record is None:
                return
            yield record

    def _next_record(self) -> Record | None:
        """The next record by msgpack, or None at a clean end of file."""
        index = self.records_read + 1
        row = self._next_row(index)
        if row is None:
            return None
        record: Record | None = fast_frame_from_row(row)
        if record is None:
            try:
                record = from_row(None if row is _NIL_OBJECT else row)
            except ArchiveError as exc:
                raise self._fail(exc, index) from None
        return record

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_records(path: str | os.PathLike[str]) -> tuple[Header, list[Record]]:
    """Read a whole (small) archive into memory; for tests and fixtures."""
    with ArchiveReader(path) as reader:
        return reader.header, list(reader)
