"""Nothing overwritten by accident, and a full disk leaves a readable archive.

The full disk is real: a forked child lowers its own RLIMIT_FSIZE (with SIGXFSZ
ignored, a write past the limit is cut short, then fails with EFBIG, as on a full file
system), so the writer meets the kernel's own short write and error, and the file it
leaves is read back by the real reader. No root, no tmpfs, and the limit dies with the
child. (/dev/full fails every write at once and cannot be read back.)
"""

from __future__ import annotations

import dataclasses
import errno
import os
import resource
import signal
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord, Record
from replayer.archive.writer import WRITEV_BYTES, ArchiveWriter, publish
from tests.unit.archive.strategies import any_record, frame_records


def test_a_new_archive_never_replaces_a_file(tmp_path: Path) -> None:
    path = tmp_path / "a.rpl"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        ArchiveWriter(path)
    assert path.read_bytes() == b"precious"
    with ArchiveWriter(path, overwrite=True):
        pass
    with ArchiveReader(path) as reader:
        assert list(reader) == []


def test_publish_keeps_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    partial, target = tmp_path / "a.rpl.partial", tmp_path / "a.rpl"
    partial.write_bytes(b"new")
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        publish(partial, target)
    assert target.read_bytes() == b"old"
    assert partial.exists()
    publish(partial, target, overwrite=True)
    assert target.read_bytes() == b"new"
    assert not partial.exists()
    partial.write_bytes(b"newer")
    (tmp_path / "b.rpl").unlink(missing_ok=True)
    publish(partial, tmp_path / "b.rpl")
    assert (tmp_path / "b.rpl").read_bytes() == b"newer"
    assert not partial.exists()


def write_under_limit(path: Path, records: list[Record], limit: int, hold: bool) -> int:
    """In a forked child limited to ``limit`` bytes per file: write ``records`` until a
    write fails. Exit status: how many records ``write`` accepted (at most 250), 254 when
    held (not known), 252 when not even the header fitted."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 255
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
            try:
                writer = ArchiveWriter(path, redact=False)
            except OSError as exc:  # not even the header fits
                os._exit(252 if exc.errno == errno.EFBIG else 253)
            if hold:
                writer.hold()
            done = 0
            try:
                for record in records:
                    writer.write(record)
                    done += 1
                writer.flush()
            except OSError as exc:
                if exc.errno != errno.EFBIG or writer.failure is not exc:
                    raise
                # Later writes fail at once and leave the file alone.
                size = os.fstat(writer.fileno()).st_size
                try:
                    writer.write(records[0])
                except OSError:
                    pass
                else:
                    raise AssertionError("wrote after a failure") from None
                assert os.fstat(writer.fileno()).st_size == size
                done = writer.records_written if not hold else -1
            writer.close()
            status = 254 if done < 0 else min(done, 250)
        except BaseException:
            traceback.print_exc()
            status = 253
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)
    code = os.WEXITSTATUS(status)
    assert code not in (253, 255), "the child failed"
    return code


def _with_payload(frame: FrameRecord, size: int) -> Record:
    return dataclasses.replace(frame, payload=b"x" * size)


# Frames written with writev (no packed copy), which never fit under the limits drawn.
big_frames = st.lists(
    frame_records.map(lambda r: _with_payload(r, WRITEV_BYTES + 7)), min_size=1, max_size=3
)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25, deadline=None
)
@given(
    records=st.lists(any_record, min_size=1, max_size=40),
    large=big_frames,
    limit=st.integers(min_value=60, max_value=4000),
    hold=st.booleans(),
)
def test_a_full_disk_leaves_every_complete_record_readable(
    tmp_path: Path, records: list[Record], large: list[Record], limit: int, hold: bool
) -> None:
    path = tmp_path / "full.rpl"
    path.unlink(missing_ok=True)
    records = records + large  # the vectored path too
    written = write_under_limit(path, records, limit, hold)
    assert path.stat().st_size <= limit
    if written == 252:  # not even the header fitted: the writer could not start
        assert path.stat().st_size == 0
        return
    with ArchiveReader(path) as reader:
        read = list(reader)  # no truncated tail: cut back to the last complete record
    assert read == records[: len(read)]
    assert len(read) < len(records)  # the large frames never fit
    if written != 254:  # unheld: exactly what write() accepted
        assert len(read) == written
