from __future__ import annotations

import os
import random
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replayer.archive import header as header_module
from replayer.archive import migrations
from replayer.archive import writer as writer_module
from replayer.archive.header import FORMAT_VERSION, MAGIC, Header
from replayer.archive.reader import ArchiveReader, read_records
from replayer.archive.records import (
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    Query,
    Record,
    RecordKind,
    to_row,
)
from replayer.archive.writer import HOLD_LIMIT_BYTES, WRITEV_BYTES, ArchiveWriter, write_all
from replayer.errors import ArchiveError, ArchiveVersionError, TruncatedArchiveError
from replayer.gateway.opcodes import Direction

from .strategies import any_record

settings_tmp = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60
)


def write(path: Path, records: list[Record], **kwargs: object) -> None:
    # overwrite: hypothesis runs every example in the same tmp_path.
    with ArchiveWriter(path, redact=False, overwrite=True, **kwargs) as writer:  # type: ignore[arg-type]
        for record in records:
            writer.write(record)


@settings_tmp
@given(
    records=st.lists(any_record, max_size=20),
    metadata=st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1)),
)
def test_write_read_round_trip(
    tmp_path: Path, records: list[Record], metadata: dict[str, int]
) -> None:
    path = tmp_path / "a.rpl"
    write(path, records, metadata=metadata)
    header, read = read_records(path)
    assert read == records
    assert header.metadata == metadata
    assert header.format_version == FORMAT_VERSION


def frame(i: int, size: int = 10) -> FrameRecord:
    raw = b'{"op":11,"d":null,"s":null,"t":null}' + b" " * size
    return FrameRecord(1, i, Direction.SERVER, FrameType.TEXT, raw, 11, None, None, len(raw))


def test_file_starts_with_magic_header(tmp_path: Path) -> None:
    path = tmp_path / "a.rpl"
    write(path, [])
    obj = msgpack.unpackb(path.read_bytes())
    assert obj["magic"] == MAGIC
    assert next(iter(obj)) == "magic"


def test_every_truncation_keeps_complete_records(tmp_path: Path) -> None:
    """Cut the file at every byte: all complete records read back, the tail is reported."""
    path = tmp_path / "a.rpl"
    records: list[Record] = [frame(i, size=i) for i in range(5)]
    write(path, records)
    data = path.read_bytes()
    ends = []
    unpacker = msgpack.Unpacker()
    unpacker.feed(data)
    for _ in unpacker:
        ends.append(unpacker.tell())
    assert len(ends) == 6  # header + 5 records
    cut_path = tmp_path / "cut.rpl"
    for cut in range(1, len(data)):
        cut_path.write_bytes(data[:cut])
        complete = sum(1 for end in ends[1:] if end <= cut)
        if cut < ends[0]:
            with pytest.raises(TruncatedArchiveError):
                ArchiveReader(cut_path)
            continue
        got: list[Record] = []
        with ArchiveReader(cut_path) as reader:
            if cut in ends:
                got = list(reader)
            else:
                with pytest.raises(TruncatedArchiveError) as info:
                    got.extend(reader)
                assert info.value.records_read == complete
                assert f"{complete} complete records" in str(info.value)
                assert str(cut_path) in str(info.value)
        assert got == records[:complete]


def test_newer_version_says_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "new.rpl"
    path.write_bytes(msgpack.packb({**Header().to_map(), "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ArchiveVersionError, match="upgrade replayer") as info:
        ArchiveReader(path)
    assert info.value.index == 0
    assert info.value.field == "format_version"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"PK\x03\x04 this is a zip file", "not a replayer archive"),
        (msgpack.packb({"magic": "something-else"}), "not a replayer archive"),
        (msgpack.packb([1, 2, 3]), "not a replayer archive"),
        (msgpack.packb({"magic": MAGIC, "format_version": "1"}), "bad format version"),
    ],
)
def test_not_an_archive(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.rpl"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=message) as info:
        ArchiveReader(path)
    assert str(path) in str(info.value)


def test_random_bytes_never_crash_the_reader(tmp_path: Path) -> None:
    rng = random.Random(1234)
    path = tmp_path / "r.rpl"
    for _ in range(200):
        path.write_bytes(rng.randbytes(rng.randrange(1, 400)))
        with pytest.raises(ArchiveError), ArchiveReader(path) as reader:
            list(reader)


def test_corrupt_record_names_index_and_field(tmp_path: Path) -> None:
    path = tmp_path / "c.rpl"
    write(path, [frame(0), frame(1)])
    with open(path, "ab") as f:
        f.write(
            msgpack.packb([RecordKind.FRAME, 1, 2, 1, 1, "not bytes", 0, None, None, 1, 0, None])
        )
        f.write(msgpack.packb([RecordKind.CLOSE, 1, 3, 1000, "", 0, True]))
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError) as info:
        list(reader)
    assert info.value.index == 3
    assert info.value.field == "frame.payload"
    assert str(info.value).startswith(f"{path}: record 3: field 'frame.payload'")


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no such file"):
        ArchiveReader(tmp_path / "nope.rpl")
    with pytest.raises(ArchiveError, match="is a directory"):
        ArchiveReader(tmp_path)


def test_records_on_disk_before_close(tmp_path: Path) -> None:
    """What a killed process leaves: every record written so far is readable."""
    path = tmp_path / "live.rpl"
    writer = ArchiveWriter(path, redact=False)
    writer.write(frame(0))
    writer.write(frame(1))
    _, got = read_records(path)  # the writer is still open
    assert got == [frame(0), frame(1)]
    writer.close()


def test_migration_chain_is_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the current format is one newer, with a migration that changes rows."""
    path = tmp_path / "old.rpl"
    write(path, [frame(0), frame(5)])

    def shift_offsets(row: list[object]) -> list[object]:
        row = list(row)
        row[2] = int(row[2]) + 1000  # type: ignore[call-overload]
        return row

    monkeypatch.setattr(header_module, "FORMAT_VERSION", FORMAT_VERSION + 1)
    monkeypatch.setitem(migrations.MIGRATIONS, FORMAT_VERSION, shift_offsets)
    header, got = read_records(path)
    assert header.format_version == FORMAT_VERSION
    assert [r.t_ns for r in got] == [1000, 1005]


def test_migrations_cover_every_older_version() -> None:
    assert set(migrations.MIGRATIONS) == set(range(1, FORMAT_VERSION))


def test_writer_writes_whole_records_only(tmp_path: Path) -> None:
    """One os.write per record: the file size is always at a record boundary."""
    path = tmp_path / "w.rpl"
    sizes = []
    with ArchiveWriter(path, redact=False) as writer:
        for i in range(3):
            writer.write(frame(i, size=100_000))
            sizes.append(os.path.getsize(path))
    with ArchiveReader(path) as reader:
        assert len(list(reader)) == 3
    assert sizes == sorted(sizes)


def test_unencodable_values_are_archive_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot encode header"):
        ArchiveWriter(tmp_path / "h.rpl", metadata={"n": 2**70})
    with ArchiveWriter(tmp_path / "f.rpl") as writer:
        writer.write(frame(0))
        with pytest.raises(ArchiveError, match="cannot encode record 2"):
            writer.write(FrameRecord(1, 2**70, Direction.SERVER, FrameType.TEXT, b"", 0, 1, "X", 0))
        writer.write(frame(2))
    assert [r.t_ns for r in read_records(tmp_path / "f.rpl")[1]] == [0, 2]


@pytest.mark.parametrize("size", [10, 70 << 10])  # packed whole, and written vectored
@pytest.mark.parametrize(("op", "s"), [(2**70, None), (0, 2**64), (-(2**64), 1)])
def test_a_peers_integer_over_64_bits_keeps_the_frame_undecoded(
    tmp_path: Path, op: int, s: int | None, size: int
) -> None:
    """What a client sent is never lost for an ``"s": 2**64``: the frame is kept raw."""
    payload = b'{"op": 0, "s": 18446744073709551616}'.ljust(size)
    with ArchiveWriter(tmp_path / "f.rpl") as writer:
        writer.write(ConnectionRecord(1, 0, "ws://x/?v=10", Query(10)))
        writer.write(FrameRecord(1, 1, Direction.CLIENT, FrameType.TEXT, payload, op, s, None, 1))
    [_, kept] = read_records(tmp_path / "f.rpl")[1]
    assert isinstance(kept, FrameRecord)
    assert kept.payload == payload
    assert (kept.op, kept.s, kept.t) == (None, None, None)
    assert kept.flags & FrameFlag.UNDECODED
    assert kept.error == "op or s does not fit in 64 bits"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        # A length prefix past the end of the file reads as a cut-off record.
        (b"\xc6\x7f\xff\xff\xff" + b"x" * 10, "truncated: ends inside record 2"),
        (msgpack.packb(msgpack.ExtType(5, b"abc")), "field 'kind'"),  # an ext object, not a record
        (b"\xc1", "corrupt data"),  # a byte msgpack never uses
        (msgpack.packb([2, 1, 0, 1, 1, b"{}", None, None, None, 2, 64, None]), "frame.flags"),
    ],
)
def test_corrupt_tails(tmp_path: Path, tail: bytes, message: str) -> None:
    path = tmp_path / "t.rpl"
    write(path, [frame(0)])
    with open(path, "ab") as f:
        f.write(tail)
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError, match=message) as info:
        list(reader)
    assert "record 2" in str(info.value)


@pytest.mark.parametrize("size", [WRITEV_BYTES - 1, WRITEV_BYTES, 1 << 16, (1 << 20) + 3])
def test_large_payloads_are_packed_as_msgpack_would(tmp_path: Path, size: int) -> None:
    payload = bytes(random.Random(size).getrandbits(8) for _ in range(64)) * (size // 64 + 1)
    frame = FrameRecord(
        7, 2**40, Direction.SERVER, FrameType.BINARY, payload[:size], 0, 9, "GUILD_CREATE", size
    )
    path = tmp_path / "big.rpl"
    write(path, [frame, frame])
    with ArchiveReader(path) as reader:
        header_size = reader.end_offset
        assert list(reader) == [frame, frame]
    row = msgpack.packb(to_row(frame), use_bin_type=True)
    assert path.read_bytes()[header_size:] == row + row


@settings_tmp
@given(records=st.lists(any_record, max_size=30), flush_after=st.sets(st.integers(0, 29)))
def test_held_records_are_written_as_unheld_ones(
    tmp_path: Path, records: list[Record], flush_after: set[int]
) -> None:
    """Holding changes when the bytes reach the file, never which bytes."""
    plain, held = tmp_path / "plain.rpl", tmp_path / "held.rpl"
    header = Header(metadata={}, created_unix_ns=1)
    write(plain, records, header=header)
    with ArchiveWriter(held, redact=False, header=header, overwrite=True) as writer:
        writer.hold()
        for i, record in enumerate(records):
            writer.write(record)
            if i in flush_after:
                writer.flush()
        assert writer.records_written == len(records)
    assert held.read_bytes() == plain.read_bytes()


def test_held_records_reach_the_file_on_flush_close_or_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "held.rpl"
    writer = ArchiveWriter(path, redact=False)
    header_bytes = os.path.getsize(path)
    writer.hold()
    writer.write(frame(0))
    writer.write(frame(1, size=WRITEV_BYTES))  # the vectored path holds too
    assert os.path.getsize(path) == header_bytes  # still in memory
    writer.flush()
    assert [r.t_ns for r in read_records(path)[1]] == [0, 1]
    big = HOLD_LIMIT_BYTES // 4 + 1
    for i in range(2, 5):
        writer.write(frame(i, size=big))
    assert len(read_records(path)[1]) == 2  # under the limit: held
    writer.write(frame(5, size=big))  # over it: written without a flush
    assert len(read_records(path)[1]) == 6
    writer.write(frame(6))
    writer.close()
    assert [r.t_ns for r in read_records(path)[1]] == list(range(7))


@given(
    pieces=st.lists(st.binary(max_size=50), max_size=40),
    limits=st.lists(st.integers(1, 120), min_size=1, max_size=10),
)
def test_write_all_finishes_short_writes(pieces: list[bytes], limits: list[int]) -> None:
    """``writev`` may take fewer bytes than offered (a signal, a full disk's last
    block): the rest follows, in order, from inside the piece it stopped in."""
    out = bytearray()
    calls = iter(limits * 1000)

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        data = b"".join(bytes(b) for b in buffers)[: next(calls)]
        out.extend(data)
        return len(data)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writer_module.os, "writev", short_writev)
        mp.setattr(writer_module, "_IOV_MAX", 3)  # groups of 3 pieces, as if at the limit
        write_all(-1, pieces)
    assert bytes(out) == b"".join(pieces)
