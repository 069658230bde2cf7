"""Process-wide memory allocator settings for our own processes."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

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


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``: also the
    free pages inside the heap, not only its top). After many connections have gone, what
    they used is free but stays in the process's RSS otherwise. Returns whether anything
    was released (False off glibc)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


_TRIM: list[Any] = []


def _malloc_trim() -> Any:
    if not _TRIM:
        trim = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                trim = libc.malloc_trim
                trim.argtypes = (ctypes.c_size_t,)
                trim.restype = ctypes.c_int
            except (OSError, AttributeError):
                trim = None  # not glibc
        _TRIM.append(trim)
    return _TRIM[0]
