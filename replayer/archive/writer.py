"""Streaming archive writer: appends one record at a time and hands it to the OS at once.

Each record goes to the file descriptor in one ``write`` as soon as it is added (no
user-space buffer), so a process killed at any moment leaves every completed record
readable; only the record being written can be cut short, and the reader reports such a
tail as truncated. ``fsync`` (against power loss, not process death) is opt-in.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgpack

from replayer.archive.header import Header
from replayer.archive.reader import MAX_RECORD_BYTES
from replayer.archive.records import FrameRecord, Record, to_row
from replayer.archive.redaction import Redactor
from replayer.errors import ArchiveError

# Frames with payloads from this size on are written with writev (no packed copy).
WRITEV_BYTES = 64 << 10


def _bin_header(size: int) -> bytes:
    """The msgpack ``bin`` header for ``size`` bytes, as msgpack.Packer writes it."""
    if size < 1 << 8:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 1 << 16:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


class ArchiveWriter:
    """Write an archive. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metadata: dict[str, Any] | None = None,
        redact: bool = True,
        header: Header | None = None,
        fsync: bool = False,
        continue_fd: int | None = None,
    ) -> None:
        """``continue_fd``: append records to this open file descriptor of ``path``, whose
        header another writer has already written (it is not written again)."""
        self.path = Path(path)
        self.header = header or Header(metadata=dict(metadata or {}))
        self.redactor: Redactor | None = Redactor() if redact else None
        self.records_written = 0
        self._fsync = fsync
        self._packer = msgpack.Packer(use_bin_type=True)
        if continue_fd is not None:
            self._fd: int | None = continue_fd
            return
        self._fd = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644
        )
        try:
            self._put(self._pack(self.header.to_map(), "header"))
        except BaseException:
            self.close()
            raise

    def _pack(self, obj: object, what: str) -> bytes:
        try:
            return self._packer.pack(obj)
        except (OverflowError, TypeError, ValueError) as exc:
            # msgpack holds integers of 64 bits at most, and only plain data types.
            self._packer.reset()
            raise ArchiveError(f"cannot encode {what}: {exc}", path=str(self.path)) from None

    def _put(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self._fsync:
            os.fsync(self._fd)

    def write(self, record: Record) -> None:
        """Redact (unless disabled), encode and append one record."""
        if self.redactor is not None:
            record = self.redactor.redact(record)
        if type(record) is FrameRecord and len(record.payload) >= WRITEV_BYTES:
            self._write_frame_vectored(record)
            return
        try:
            data = self._packer.pack(to_row(record))
        except (OverflowError, TypeError, ValueError) as exc:
            # msgpack holds integers of 64 bits at most, and only plain data types.
            self._packer.reset()
            raise ArchiveError(
                f"cannot encode record {self.records_written + 1}: {exc}", path=str(self.path)
            ) from None
        if len(data) > MAX_RECORD_BYTES:
            raise ArchiveError(
                f"cannot write record {self.records_written + 1}: {len(data)} bytes is over "
                f"the {MAX_RECORD_BYTES >> 20} MiB a reader accepts",
                path=str(self.path),
            )
        fd = self._fd
        if fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        written = os.write(fd, data)  # one system call per record, as a rule
        if written < len(data):
            self._put(data[written:])
        elif self._fsync:
            os.fsync(fd)
        self.records_written += 1

    def _write_frame_vectored(self, record: FrameRecord) -> None:
        """A frame with a large payload: its row in three pieces and one ``writev``,
        so that the payload is not copied into a packed buffer first."""
        row = to_row(record)
        size = len(record.payload)
        if size > MAX_RECORD_BYTES - 4096:
            raise ArchiveError(
                f"cannot write record {self.records_written + 1}: a {size}-byte payload is "
                f"over the {MAX_RECORD_BYTES >> 20} MiB a reader accepts",
                path=str(self.path),
            )
        try:
            head = self._packer.pack_array_header(len(row)) + b"".join(
                map(self._packer.pack, row[:5])
            )
            tail = b"".join(map(self._packer.pack, row[6:]))
        except (OverflowError, TypeError, ValueError) as exc:
            self._packer.reset()
            raise ArchiveError(
                f"cannot encode record {self.records_written + 1}: {exc}", path=str(self.path)
            ) from None
        pieces = [head + _bin_header(size), record.payload, tail]
        fd = self._fd
        if fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        total = len(pieces[0]) + size + len(tail)
        written = os.writev(fd, pieces)
        if written < total:  # rare: finish with plain writes
            self._put(b"".join(pieces)[written:])
        elif self._fsync:
            os.fsync(fd)
        self.records_written += 1

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        return self._fd

    def detach(self) -> int:
        """Give up the file descriptor without closing it (another process writes on)."""
        fd = self.fileno()
        self._fd = None
        return fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
