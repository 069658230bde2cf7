"""The reader's memory bound (archive/bounds.py, docs/archive-format.md section 1): hostile
files are refused with one line, and ``replayer verify`` stays within twice the largest
record plus 32 MiB whatever the file, measured as the peak RSS of the child process."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import msgpack
import pytest

from replayer.archive.bounds import MAX_CONTAINER_LEN, MAX_VALUE_COST_BYTES, check_object_cost
from replayer.archive.header import Header
from replayer.archive.records import ConnectionRecord, FrameFlag, FrameRecord, FrameType
from replayer.archive.writer import ArchiveWriter
from replayer.errors import ArchiveError
from replayer.gateway.opcodes import Direction

MiB = 1 << 20
HEADER = msgpack.packb(Header(created_unix_ns=0).to_map())
GOLDEN = Path(__file__).parents[2] / "golden" / "archive-v1.rpl"


def verify_peak(path: Path) -> tuple[int, str, int]:
    """(exit status, stderr, peak RSS in bytes) of ``replayer verify path``."""
    child = subprocess.Popen(
        [sys.executable, "-m", "replayer", "verify", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, stderr, usage.ru_maxrss * 1024  # Linux: KiB


def write_in_chunks(f: IO[bytes], unit: bytes, count: int) -> None:
    block = unit * max(1, (4 * MiB) // len(unit))
    per_block = len(block) // len(unit)
    while count > 0:
        n = min(count, per_block)
        f.write(block[: n * len(unit)])
        count -= n


def huge_array(f: IO[bytes]) -> int:
    """One array header claiming 250 M elements, and 250 MB of nils (issue #14)."""
    n = 250_000_000
    f.write(b"\xdd" + struct.pack(">I", n))
    write_in_chunks(f, b"\xc0", n)
    return n + 5


def nested_empty_arrays(f: IO[bytes]) -> int:
    """Every container within the length limit, 100 MB of them: ~7 GB as Python lists."""
    leaf = b"\xdc" + struct.pack(">H", 1000) + b"\x90" * 1000
    middle = b"\xdc" + struct.pack(">H", 100) + leaf * 100
    f.write(b"\xdc" + struct.pack(">H", 1000))
    write_in_chunks(f, middle, 1000)
    return 3 + 1000 * len(middle)


def astral_strings(f: IO[bytes]) -> int:
    """100 strings of 1 MiB with one 4-byte character each: 4 bytes per byte as str."""
    s = ("a" * (MiB - 4) + "\U0001f600").encode()
    f.write(b"\xdc" + struct.pack(">H", 100))
    for _ in range(100):
        f.write(b"\xdb" + struct.pack(">I", len(s)) + s)
    return 3 + 100 * (5 + len(s))


HOSTILE: dict[str, Callable[[IO[bytes]], int]] = {
    "huge_array": huge_array,
    "nested_empty_arrays": nested_empty_arrays,
    "astral_strings": astral_strings,
}


@pytest.fixture(scope="module")
def baseline_rss() -> int:
    status, stderr, peak = verify_peak(GOLDEN)
    assert status == 0, stderr
    return peak


@pytest.mark.parametrize("name", HOSTILE)
def test_verify_of_a_hostile_file_is_one_line_and_bounded_memory(
    name: str, tmp_path: Path, baseline_rss: int
) -> None:
    path = tmp_path / f"{name}.rpl"
    with path.open("wb") as f:
        f.write(HEADER)
        record_bytes = HOSTILE[name](f)
    status, stderr, peak = verify_peak(path)
    assert status == 1
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"error: {path}: record 1: "), stderr
    # The bound of the spec; these are refused long before, at a few MiB.
    assert peak - baseline_rss < 2 * record_bytes + 32 * MiB
    assert peak - baseline_rss < 32 * MiB, (name, (peak - baseline_rss) / MiB)


def test_verify_of_a_large_valid_record_stays_within_twice_its_size(
    tmp_path: Path, baseline_rss: int
) -> None:
    path = tmp_path / "big.rpl"
    payload = b"x" * (64 * MiB)
    with ArchiveWriter(path, redact=False) as writer:
        writer.write(ConnectionRecord(conn_id=1, t_ns=0, url="wss://gateway.discord.gg/"))
        writer.write(
            FrameRecord(
                1,
                1,
                Direction.SERVER,
                FrameType.TEXT,
                payload,
                None,
                None,
                None,
                len(payload),
                FrameFlag.UNDECODED,
                "test",
            )
        )
    status, stderr, peak = verify_peak(path)
    assert status == 0, stderr
    assert peak - baseline_rss < 2 * len(payload) + 32 * MiB, (peak - baseline_rss) / MiB


def _walk(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "obj"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        check_object_cost(fd, 0)
    finally:
        os.close(fd)


def test_cost_walk_refuses_a_long_container_and_a_costly_object(tmp_path: Path) -> None:
    too_long = b"\xdc" + struct.pack(">H", MAX_CONTAINER_LEN + 1) + b"\xc0" * 2000
    with pytest.raises(ArchiveError, match="array of 1025 elements"):
        _walk(tmp_path, too_long)
    n_leaves = MAX_VALUE_COST_BYTES // 64 + MAX_CONTAINER_LEN
    branches = n_leaves // 1000 + 1
    costly = (
        b"\xdc"
        + struct.pack(">H", branches)
        + (b"\xdc" + struct.pack(">H", 1000) + b"\x90" * 1000) * branches
    )
    with pytest.raises(ArchiveError, match="over 16 MiB of memory"):
        _walk(tmp_path, costly)


def test_cost_walk_passes_valid_rows_and_leaves_bad_bytes_to_the_unpacker(
    tmp_path: Path,
) -> None:
    row = [2, 1, 5, 1, 1, b"p" * (8 * MiB), 0, 1, "X", 10, 0, None]
    headers = [1, 1, 0, "u", {"v": 10}, [["a" * 100, "b" * 100]] * MAX_CONTAINER_LEN, None, None]
    headers.append("gateway")
    for obj in (row, headers):
        _walk(tmp_path, msgpack.packb(obj))
    for junk in (b"\xc1\x90", b"\xdd\xff", b"\xdc\x00\x05\x90"):  # invalid, cut short
        _walk(tmp_path, junk)
