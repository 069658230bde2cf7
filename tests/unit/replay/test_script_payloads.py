"""One :class:`ArchivePayloads` shared by every connection: positional reads in any
interleaving give each shard its own frames, with the script's record sizes or without."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord
from replayer.errors import ArchiveError
from replayer.gateway.opcodes import Direction
from replayer.replay.script import (
    GUESS_READ_BYTES,
    ArchiveFile,
    ArchivePayloads,
    ReplayScript,
    load_script,
)
from replayer.replay.sharding import ShardRouter
from tests.archives import session_lines, write_archive

SHARDS = 3
SERVER = Direction.SERVER
BIG = "x" * (3 * GUESS_READ_BYTES)  # a record larger than the first guessed read


def _archive(path: Path) -> Path:
    lines: list[dict[str, Any]] = []
    for i in range(SHARDS):
        big = {"kind": "frame", "conn": i + 1, "dir": "server", "t_ms": i + 500,
               "payload": {"op": 0, "s": 7, "t": "MESSAGE_CREATE", "d": {"content": BIG}}}  # fmt: skip
        lines += session_lines(shard=(i, SHARDS), conn=i + 1, t0_ms=i, extra=[big])
    lines.sort(key=lambda o: o["t_ms"])  # the shards' frames interleave in the file
    return write_archive(path, lines)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReplayScript, list[list[bytes]]]:
    path = _archive(tmp_path_factory.mktemp("payloads") / "a.rpl")
    script = load_script(path)
    expected: list[list[bytes]] = [[] for _ in range(SHARDS)]
    with ArchiveReader(path) as reader:
        for record in reader:
            if isinstance(record, FrameRecord) and (record.direction, record.op) == (SERVER, 0):
                expected[record.conn_id - 1].append(record.payload)
    return script, expected


def test_the_shards_interleave_in_the_file(
    recorded: tuple[ReplayScript, list[list[bytes]]],
) -> None:
    script, expected = recorded
    assert sorted(script.shards) == list(range(SHARDS))
    offsets = sorted((o, k) for k, shard in script.shards.items() for o in shard.offsets)
    assert len({k for _, k in offsets[:SHARDS]}) == SHARDS  # not one shard after the other
    for k, shard in script.shards.items():
        assert len(shard.sizes) == len(shard.offsets) == len(expected[k])
        assert max(shard.sizes) > GUESS_READ_BYTES


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_interleaved_reads_get_each_shard_its_frames(
    recorded: tuple[ReplayScript, list[list[bytes]]], data: st.DataObject
) -> None:
    """Two (three) connections reading the same archive through one reader, item by item
    in any interleaving, each with or without the record size."""
    script, expected = recorded
    items = [(k, i) for k, shard in script.shards.items() for i in range(len(shard))]
    order = data.draw(st.permutations(items))
    sized = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    file = ArchiveFile(script.path)
    shared = ArchivePayloads(file)
    try:
        for (k, i), with_size in zip(order, sized, strict=True):
            shard = script.shards[k]
            size = shard.size(i) if with_size else 0
            assert shared.frame(shard.offsets[i], size).payload == expected[k][i]
        shared.close()  # not its file: still open for the others
        assert ArchivePayloads(file).frame(script.shards[0].offsets[0]).t == "READY"
    finally:
        file.close()


def test_a_rerouted_stream_keeps_record_sizes(
    recorded: tuple[ReplayScript, list[list[bytes]]],
) -> None:
    script, _ = recorded
    payloads = ArchivePayloads(script.path)
    try:
        stream = ShardRouter(script, reroute=True).stream([0, 1], payloads)
        assert stream is not None
        assert len(stream) > len(script.shards[0])
        assert len(stream.sizes) == len(stream.offsets)
        events = [payloads.frame(o, stream.size(i)).t for i, o in enumerate(stream.offsets)]
        assert events == stream.events
    finally:
        payloads.close()


def test_a_wrong_size_or_a_cut_file_is_an_archive_error(
    recorded: tuple[ReplayScript, list[list[bytes]]], tmp_path: Path
) -> None:
    script, _ = recorded
    shard = script.shards[1]
    payloads = ArchivePayloads(script.path)
    try:
        with pytest.raises(ArchiveError, match="cannot read the frame at byte"):
            payloads.frame(shard.offsets[1], shard.sizes[1] - 1)
        with pytest.raises(ArchiveError, match="cannot read the frame at byte"):
            payloads.frame(shard.offsets[1], shard.sizes[1] + shard.sizes[2])
    finally:
        payloads.close()
    big = max(range(len(shard)), key=lambda i: shard.sizes[i])
    cut = tmp_path / "cut.rpl"
    cut.write_bytes(script.path.read_bytes()[: shard.offsets[big] + GUESS_READ_BYTES * 2])
    payloads = ArchivePayloads(cut)
    try:
        with pytest.raises(ArchiveError, match="ends inside it"):
            payloads.frame(shard.offsets[big])
    finally:
        payloads.close()
    whole = ArchivePayloads(script.path)
    try:
        assert json.loads(whole.frame(shard.offsets[big]).payload)["s"] == 7
    finally:
        whole.close()
