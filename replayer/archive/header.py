"""The archive header: the first msgpack object of every archive file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from replayer import __version__
from replayer.errors import ArchiveError, ArchiveVersionError

MAGIC = "replayer-archive"
FORMAT_VERSION = 2


@dataclass(frozen=True, slots=True)
class Header:
    format_version: int = FORMAT_VERSION
    created_unix_ns: int = field(default_factory=time.time_ns)
    tool: str = f"replayer {__version__}"
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_map(self) -> dict[str, Any]:
        # "magic" first: every archive starts with the same bytes.
        return {
            "magic": MAGIC,
            "format_version": self.format_version,
            "created_unix_ns": self.created_unix_ns,
            "tool": self.tool,
            "metadata": self.metadata,
        }


def header_from_map(obj: object) -> Header:
    """Validate the header object; a newer version is an ``ArchiveVersionError``."""
    if not isinstance(obj, dict) or obj.get("magic") != MAGIC:
        raise ArchiveError("not a replayer archive (no archive header)", index=0, field="magic")
    version = obj.get("format_version")
    if type(version) is not int or version < 1:
        raise ArchiveError(f"bad format version {version!r}", index=0, field="format_version")
    if version > FORMAT_VERSION:
        raise ArchiveVersionError(
            f"archive format version {version} is newer than this replayer supports "
            f"({FORMAT_VERSION}); upgrade replayer (pip install -U replayer)",
            index=0,
            field="format_version",
        )
    created = obj.get("created_unix_ns")
    if type(created) is not int:
        raise ArchiveError(
            f"expected an integer, got {created!r}", index=0, field="created_unix_ns"
        )
    tool = obj.get("tool")
    if type(tool) is not str:
        raise ArchiveError(f"expected a string, got {tool!r}", index=0, field="tool")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ArchiveError(f"expected a map, got {metadata!r}", index=0, field="metadata")
    return Header(format_version=version, created_unix_ns=created, tool=tool, metadata=metadata)
