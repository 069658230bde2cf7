"""Process-wide memory allocator settings for our own processes."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc_for_large_messages() -> bool:
    """Let glibc reuse heap memory for megabyte messages instead of mapping fresh pages.

    By default glibc serves each buffer over 128 KiB-32 MiB (its dynamic threshold) with
    its own ``mmap`` and unmaps it on free, so every large gateway message (a GUILD_CREATE
    of a big guild) faults in new pages, once per copy. On the VMs we measured, that was
    half of the proxy's CPU for 1 MB frames (bench/README.md, record_bench). Buffers up to
    64 MiB now come from the heap, and up to 256 MiB of free heap is kept for reuse.
    Process-wide, so only for a process that is ours (``replayer record``, the recorder
    worker), never from the addon inside someone's mitmdump. Returns whether it applied
    (glibc Linux only).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 64 << 20) and mallopt(_M_TRIM_THRESHOLD, 256 << 20))
