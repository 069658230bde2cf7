"""glibc malloc tuning for our own processes."""

from __future__ import annotations

import platform
import sys

import pytest

from replayer.malloc import tune_malloc_for_large_messages


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_glibc_accepts_the_thresholds() -> None:
    assert tune_malloc_for_large_messages() is True
