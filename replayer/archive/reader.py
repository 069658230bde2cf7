"""Streaming archive reader: flat memory whatever the file size.

Records come one at a time from a ``msgpack.Unpacker`` reading the file in chunks, so
memory holds one chunk and one record. Problems are ``ArchiveError`` naming the file, the
record index (the header is record 0) and the field. A file that ends inside a record
raises ``TruncatedArchiveError`` after every complete record before it has been yielded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import msgpack

from replayer.archive import header as header_module
from replayer.archive.header import Header, header_from_map
from replayer.archive.migrations import upgrader
from replayer.archive.records import Record, fast_frame_from_row, from_row
from replayer.errors import ArchiveError, TruncatedArchiveError

READ_CHUNK_BYTES = 1 << 20
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
        self._unpacker = msgpack.Unpacker(
            self._file,
            read_size=READ_CHUNK_BYTES,
            max_buffer_size=MAX_RECORD_BYTES,
            raw=False,
            use_list=True,
            strict_map_key=False,
        )
        self.header = self._read_header()
        self._upgrade = upgrader(self.header.format_version, header_module.FORMAT_VERSION)

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
        except _DECODE_ERRORS:
            raise ArchiveError(
                "not a replayer archive (no archive header)", path=str(self.path), index=0
            ) from None
        self._end = self._unpacker.tell()
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
        """The next raw row, or None at a clean end of file."""
        try:
            row: list[Any] = self._unpacker.unpack()
        except msgpack.OutOfData:
            if self._end < self._size:
                raise self._truncated(index) from None
            return None
        except _DECODE_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            raise ArchiveError(
                f"corrupt data after byte {self._end}: {reason}",
                path=str(self.path),
                index=index,
            ) from None
        self._end = self._unpacker.tell()
        if self._upgrade is not None:
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
        unpacker = self._unpacker
        tell = unpacker.tell
        upgrade = self._upgrade
        parse, fast = from_row, fast_frame_from_row
        index = self.records_read
        try:
            for unpacked in unpacker:
                # Kept current per record: end_offset tells callers where each record ends.
                self._end = tell()
                self.records_read = index = index + 1
                row = unpacked if upgrade is None else upgrade(unpacked)
                record: Record | None = fast(row)
                if record is None:
                    try:
                        record = parse(row)
                    except ArchiveError as exc:
                        raise self._fail(exc, index) from None
                yield record
        except ArchiveError:
            raise
        except _DECODE_ERRORS as exc:
            reason = str(exc) or type(exc).__name__
            raise ArchiveError(
                f"corrupt data after byte {self._end}: {reason}",
                path=str(self.path),
                index=index + 1,
            ) from None
        if self._end < self._size:
            raise self._truncated(index + 1)

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
