"""Streaming archive writer: appends one record at a time and hands it to the OS at once.

Each record goes to the file descriptor in one ``write`` as soon as it is added (no
user-space buffer), so a process killed at any moment leaves every completed record
readable; only the record being written can be cut short, and the reader reports such a
tail as truncated. ``fsync`` (against power loss, not process death) is opt-in.

Nothing is overwritten by accident: a new archive is opened with ``O_EXCL`` unless the
caller says ``overwrite=True``, and :func:`publish` moves a finished ``.partial`` file
into place without replacing one that appeared meanwhile. A write that fails (a full
disk: ``ENOSPC``, a file size limit: ``EFBIG``) cuts the file back to the end of the last
complete record, so the archive stays readable, and the writer writes nothing more.

A caller that already holds a batch of records somewhere safe (the recorder worker: they
wait in a pipe that outlives the proxy) can :meth:`~ArchiveWriter.hold` them and
:meth:`~ArchiveWriter.flush` the batch in one ``writev``: one system call per batch
instead of one per record.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgpack

from replayer.archive.header import Header
from replayer.archive.reader import MAX_RECORD_BYTES
from replayer.archive.records import FrameRecord, Record, fitted, to_row
from replayer.archive.redaction import Redactor
from replayer.errors import ArchiveError

# Frames with payloads from this size on are written with writev (no packed copy).
WRITEV_BYTES = 64 << 10
# Held records are flushed once they add up to this much, whatever the caller does.
HOLD_LIMIT_BYTES = 4 << 20
_IOV_MAX = 1024  # POSIX guarantees at least 16; Linux and the BSDs have 1024


def write_all(fd: int, pieces: Sequence[bytes | memoryview], skip: int = 0) -> None:
    """Write ``pieces`` to ``fd`` in order, with as few ``writev`` calls as it takes;
    the first ``skip`` bytes are already written (a write that was cut short)."""
    rest = _after(list(pieces), skip)
    while rest:
        group = rest[:_IOV_MAX]
        written = os.writev(fd, group)
        if not written and any(group):
            raise OSError(f"writev to fd {fd} wrote nothing")
        rest = _after(rest, written)


def _after(pieces: list[bytes | memoryview], written: int) -> list[bytes | memoryview]:
    """What of ``pieces`` is left once their first ``written`` bytes are written."""
    done = 0
    for piece in pieces:
        if written < len(piece):
            break
        written -= len(piece)
        done += 1
    rest = pieces[done:]
    if written:  # a piece cut short: its beginning is written
        rest[0] = memoryview(rest[0])[written:]
    return rest


def publish(partial: Path, target: Path, *, overwrite: bool = False) -> None:
    """Move the finished ``partial`` file to ``target``. Unless ``overwrite``, a file
    already at ``target`` is kept and :class:`FileExistsError` raised (a hard link is
    made and the partial name removed: the check and the move are one step)."""
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and FAT file systems)
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(partial, target)
        return
    os.unlink(partial)


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
        transform: Callable[[Record], Record] | None = None,
        overwrite: bool = False,
    ) -> None:
        """``continue_fd``: append records to this open file descriptor of ``path``, whose
        header another writer has already written (it is not written again).
        ``transform``: applied to each record after redaction (e.g. a
        :class:`~replayer.archive.scrub.Scrubber`'s ``scrub``).
        ``overwrite``: replace a file already at ``path`` (else :class:`FileExistsError`)."""
        self.path = Path(path)
        self.header = header or Header(metadata=dict(metadata or {}))
        self.redactor: Redactor | None = Redactor() if redact else None
        self.transform = transform
        self.records_written = 0
        self._fsync = fsync
        self._packer = msgpack.Packer(use_bin_type=True)
        self._held: list[bytes] | None = None  # records packed but not yet written
        self._held_bytes = 0
        self._held_sizes: list[int] = []
        # Where the last complete record ends: a failed write cuts the file back to it.
        self._end = 0
        #: The write that failed (then nothing more is written), or None.
        self.failure: OSError | None = None
        if continue_fd is not None:
            self._fd: int | None = continue_fd
            self._end = os.lseek(continue_fd, 0, os.SEEK_CUR)
            return
        replace = os.O_TRUNC if overwrite else os.O_EXCL
        self._fd = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | replace | getattr(os, "O_BINARY", 0), 0o644
        )
        try:
            self._put((self._pack(self.header.to_map(), "header"),))
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

    def _put(self, pieces: Sequence[bytes | memoryview], skip: int = 0) -> None:
        """Write one record's ``pieces`` (the first ``skip`` bytes are written)."""
        fd = self._fd
        if fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        self._check()
        try:
            write_all(fd, pieces, skip)
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            self._fail(fd, exc, ())
            raise
        self._end += sum(map(len, pieces))

    def _check(self) -> None:
        """Nothing is written after a failed write: it would leave a gap."""
        failure = self.failure
        if failure is not None:
            raise OSError(
                failure.errno, f"{failure.strerror} (nothing written since)", str(self.path)
            )

    def _fail(self, fd: int, exc: OSError, sizes: Sequence[int]) -> None:
        """A write failed: remember it, and cut the file back to the end of the last
        complete record (of those that ended at ``self._end + sizes[0] + ...``)."""
        self.failure = exc
        try:
            reached = os.lseek(fd, 0, os.SEEK_CUR)
            keep = self._end
            for size in sizes:
                if keep + size > reached:
                    break
                keep += size
            os.ftruncate(fd, keep)
            os.lseek(fd, keep, os.SEEK_SET)
            self._end = keep
        except OSError:
            pass  # the reader reports the cut record as a truncated tail

    def write(self, record: Record) -> None:
        """Redact (unless disabled), transform (if given), encode and append one record."""
        if self.redactor is not None:
            record = self.redactor.redact(record)
        self.write_trusted(record)

    def write_trusted(self, record: Record) -> None:
        """:meth:`write` without the redaction: for a producer that made ``record`` itself
        and knows it holds no secret (``replayer synth``'s events: their every byte is
        drawn by synth). Never for what came from a peer: the recorders call :meth:`write`
        (tests/unit/archive/test_writer_trusted.py holds every other caller to that)."""
        if self.transform is not None:
            record = self.transform(record)
        held = self._held
        if (
            held is not None
            and type(record) is FrameRecord
            and len(record.payload) < WRITEV_BYTES
            and self.failure is None
            and self._fd is not None
        ):  # the common case of a held batch (synth's), in short
            try:
                data = self._packer.pack(to_row(record))
            except (OverflowError, TypeError, ValueError):
                self._packer.reset()  # the general path below says what does not fit
            else:
                if len(data) <= MAX_RECORD_BYTES:
                    held.append(data)
                    self._held_sizes.append(len(data))
                    self._held_bytes += len(data)
                    self.records_written += 1
                    if self._held_bytes >= HOLD_LIMIT_BYTES:
                        self.flush()
                    return
        if type(record) is FrameRecord and len(record.payload) >= WRITEV_BYTES:
            self._write_frame_vectored(record)
            return
        try:
            data = self._packer.pack(to_row(record))
        except (OverflowError, TypeError, ValueError) as exc:
            # msgpack holds integers of 64 bits at most, and only plain data types.
            self._packer.reset()
            fit = fitted(record)
            if fit is None:
                raise ArchiveError(
                    f"cannot encode record {self.records_written + 1}: {exc}",
                    path=str(self.path),
                ) from None
            data = self._pack(to_row(fit), f"record {self.records_written + 1}")
        if len(data) > MAX_RECORD_BYTES:
            raise ArchiveError(
                f"cannot write record {self.records_written + 1}: {len(data)} bytes is over "
                f"the {MAX_RECORD_BYTES >> 20} MiB a reader accepts",
                path=str(self.path),
            )
        fd = self._fd
        if fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        if self._held is not None:
            self._hold((data,), len(data))
            return
        if self.failure is not None:
            self._check()
        try:
            written = os.write(fd, data)  # one system call per record, as a rule
        except OSError as exc:
            self._fail(fd, exc, ())
            raise
        if written < len(data) or self._fsync:
            self._put((data,), written)  # the rest (a full disk fails here), and fsync
        else:
            self._end += written
        self.records_written += 1

    def _write_frame_vectored(self, record: FrameRecord) -> None:
        """A frame with a large payload: its row in three pieces and one ``writev``,
        so that the payload is not copied into a packed buffer first."""
        fit = fitted(record)  # a peer's integer over 64 bits
        if isinstance(fit, FrameRecord):
            record = fit
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
        if self._fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        total = len(pieces[0]) + size + len(tail)
        if self._held is not None:
            self._hold(pieces, total)
            return
        self._put(pieces)
        self.records_written += 1

    def hold(self) -> None:
        """From now on keep records in memory until :meth:`flush` or :meth:`close` (or
        until they add up to ``HOLD_LIMIT_BYTES``): a process killed meanwhile loses
        them. For a caller whose records are safe elsewhere until it flushes."""
        if self._held is None:
            self._held = []
            self._held_bytes = 0
            self._held_sizes = []

    def _hold(self, pieces: Sequence[bytes], size: int) -> None:
        assert self._held is not None
        self._check()
        self._held.extend(pieces)
        self._held_sizes.append(size)
        self._held_bytes += size
        self.records_written += 1
        if self._held_bytes >= HOLD_LIMIT_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the held records, if any, with as few system calls as it takes."""
        held, fd = self._held, self._fd
        if not held or fd is None:
            return
        sizes, size = self._held_sizes, self._held_bytes
        self._held, self._held_bytes, self._held_sizes = [], 0, []
        self._check()
        try:
            write_all(fd, held)
            if self._fsync:
                os.fsync(fd)
        except OSError as exc:
            self._fail(fd, exc, sizes)
            raise
        self._end += size

    def close(self) -> None:
        if self._fd is not None:
            if self.failure is not None:
                self._held, self._held_bytes, self._held_sizes = None, 0, []
            try:
                self.flush()
            finally:
                fd, self._fd = self._fd, None
                os.close(fd)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: archive writer is closed")
        return self._fd

    def detach(self) -> int:
        """Give up the file descriptor without closing it (another process writes on)."""
        self.flush()
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
