"""The one error hierarchy of replayer.

Every error a user can cause (bad file, bad plan, bad input) is a ``ReplayerError``; the CLI
prints it as one line and exits 1. Anything else is a bug and keeps its traceback. Each
subclass also subclasses the builtin it resembles, so callers may catch either.
"""

from __future__ import annotations


class ReplayerError(Exception):
    """Base of every error replayer reports to a user."""


class GatewayError(ReplayerError, ValueError):
    """A gateway payload or frame that does not follow the protocol."""


class CodecError(GatewayError):
    """Bytes that a codec (JSON, ETF, zlib-stream, zstd-stream) cannot decode."""


class ArchiveError(ReplayerError, ValueError):
    """An archive that cannot be read or written.

    ``path`` names the file, ``index`` the record (0 is the header) and ``field`` the
    part of it at fault; ``str()`` joins them into the one line the CLI prints.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.index = index
        self.field = field

    def located(self, *, path: str | None = None, index: int | None = None) -> ArchiveError:
        """Fill in where the error happened, keeping what is already known."""
        if self.path is None:
            self.path = path
        if self.index is None:
            self.index = index
        return self

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.index is not None:
            where.append(f"record {self.index}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        return ": ".join([*where, self.message])


class TruncatedArchiveError(ArchiveError):
    """The archive ends in the middle of a record; ``records_read`` came before it."""

    def __init__(self, message: str, *, records_read: int, **kwargs: str | int | None) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.records_read = records_read


class ArchiveVersionError(ArchiveError):
    """The archive was written by a newer replayer than this one."""


class ImportFormatError(ReplayerError, ValueError):
    """A JSON Lines file that cannot be turned into an archive (names file and line)."""

    def __init__(self, message: str, *, path: str, line: int) -> None:
        super().__init__(f"{path}: line {line}: {message}")
        self.path = path
        self.line = line
