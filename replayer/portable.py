"""What POSIX has and Windows lacks, in one place, each with its fallback.

- ``pread``: ``os.pread`` (Unix only); elsewhere a seek and a read under a lock that put the
  file position back, so readers sharing a descriptor still see their own positions.
- ``descriptor_limit``: the soft ``RLIMIT_NOFILE`` (``resource`` is Unix only); None where
  there is no such limit or no way to ask.

The POSIX-only pieces elsewhere guard themselves: the signal handlers of ``replay`` and
``record`` (cli/output.py ``on_stop_signals``) and the mitmdump addon's recorder worker
(record/addon.py: without ``fcntl`` it records in mitmdump's own thread).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_seek_lock = threading.Lock()


def _pread_by_seeking(fd: int, size: int, offset: int) -> bytes:
    with _seek_lock:
        position = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.read(fd, size)
        finally:
            os.lseek(fd, position, os.SEEK_SET)


pread: Callable[[int, int, int], bytes] = getattr(os, "pread", _pread_by_seeking)


def descriptor_limit() -> int | None:
    """The soft limit on open file descriptors, or None (unlimited, or not a POSIX system)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft
