"""``ArchiveReader.runs()``: the same records and the same errors as iterating, whatever
the bytes; ``json_ok`` only vouches for payloads Python's json reads the same way; verify
and ``inspect --stats`` over runs agree with their record-by-record selves."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.archive import reader as reader_module
from replayer.archive import runs as runs_module
from replayer.archive.header import Header
from replayer.archive.inspection import ArchiveStats
from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord, Record, to_row
from replayer.archive.runs import FrameRun
from replayer.archive.verify import ArchiveChecker, check_archive
from replayer.archive.writer import ArchiveWriter
from replayer.errors import ArchiveError, GatewayError
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.payload import parse_payload
from replayer.resources import recordings_dir

from .strategies import json_value, sessions

ROOT = Path(__file__).parents[3]
ARCHIVES = [
    ROOT / "tests" / "golden" / "archive-v1.rpl",
    *sorted(recordings_dir().glob("*.rpl")),
]
HEADER = msgpack.packb(Header(created_unix_ns=0).to_map())
needs_c = pytest.mark.skipif(runs_module.scan is None, reason="no C accelerator (or forced off)")


def expand(items: Iterator[FrameRun | Record]) -> Iterator[Record]:
    for item in items:
        if isinstance(item, FrameRun):
            yield from (item.record(i) for i in range(len(item)))
        else:
            yield item


def outcome(path: Path, use_runs: bool) -> tuple[list[Record], str | None]:
    """The records read, and the error that stopped the reading (as the user sees it)."""
    got: list[Record] = []
    try:
        with ArchiveReader(path) as reader:
            got.extend(expand(reader.runs()) if use_runs else reader)
    except ArchiveError as exc:
        return got, f"{type(exc).__name__}: {exc}"
    return got, None


def verdict(path: Path, use_runs: bool) -> str:
    try:
        with ArchiveReader(path) as reader:
            if use_runs:
                checker = check_archive(reader)
            else:
                checker = ArchiveChecker()
                for index, record in enumerate(reader, start=1):
                    try:
                        checker.check(record)
                    except ArchiveError as exc:
                        raise exc.located(index=index) from None
    except ArchiveError as exc:
        return f"{type(exc).__name__}: {exc}"
    return f"ok {checker.connections} {checker.frames} {checker.closes} {checker.http}"


def write(path: Path, body: bytes) -> Path:
    path.write_bytes(HEADER + body)
    return path


@pytest.fixture(params=[1 << 20, 97, 13], ids=["1MiB", "97B", "13B"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunk sizes that put records across chunk boundaries, or make them longer."""
    size: int = request.param
    monkeypatch.setattr(reader_module, "RUN_CHUNK_BYTES", size)
    return size


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: p.name)
def test_runs_read_the_archives_as_iterating_does(path: Path, chunk: int) -> None:
    assert outcome(path, use_runs=True) == outcome(path, use_runs=False)
    assert verdict(path, use_runs=True) == verdict(path, use_runs=False)


@needs_c
def test_frames_come_in_runs() -> None:
    with ArchiveReader(recordings_dir() / "large-bot.rpl") as reader:
        items = list(reader.runs())
    in_runs = sum(len(i) for i in items if isinstance(i, FrameRun))
    frames = sum(1 for i in items if isinstance(i, FrameRecord))
    assert in_runs > 10 * frames


def test_without_the_accelerator_there_are_only_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader_module, "scan", None)
    with ArchiveReader(ARCHIVES[0]) as reader:
        items = list(reader.runs())
    assert items
    assert not any(isinstance(i, FrameRun) for i in items)


def test_iterating_after_runs_goes_on_where_they_stopped(tmp_path: Path) -> None:
    path = recordings_dir() / "large-bot.rpl"
    with ArchiveReader(path) as reader:
        whole = list(reader)
    with ArchiveReader(path) as reader:
        runs = reader.runs()
        first = next(runs)
        head = list(expand(iter([first])))
        rest = list(reader)
    assert head + rest == whole


@settings(max_examples=60, deadline=None)
@given(
    body=sessions(),
    cut=st.integers(0, 30),
    edits=st.lists(st.tuples(st.integers(0, 10**5), st.integers(0, 255)), max_size=3),
)
def test_runs_agree_on_any_session_cut_or_mutated(
    tmp_path_factory: pytest.TempPathFactory,
    body: list[Record],
    cut: int,
    edits: list[tuple[int, int]],
) -> None:
    path = tmp_path_factory.mktemp("runs") / "a.rpl"
    with ArchiveWriter(path, redact=False) as writer:
        for record in body:
            writer.write(record)
    data = bytearray(path.read_bytes())
    for pos, byte in edits:
        data[pos % len(data)] = byte
    path.write_bytes(bytes(data[: max(len(data) - cut, 1)]))
    for size in (1 << 20, 50):
        reader_module.RUN_CHUNK_BYTES = size
        try:
            assert outcome(path, use_runs=True) == outcome(path, use_runs=False)
            assert verdict(path, use_runs=True) == verdict(path, use_runs=False)
        finally:
            reader_module.RUN_CHUNK_BYTES = 1 << 20


def frame_row(payload: bytes, op: int | None, s: int | None, t: str | None, **kw: Any) -> list[Any]:
    row = [2, 1, 5, 1, 1, payload, op, s, t, len(payload), 0, None]
    for i, v in kw.items():
        row[int(i[1:])] = v
    return row


@needs_c
@pytest.mark.parametrize(
    "row",
    [
        [2, 1, 5, 1, 1, b"{}", 1, None, None, 2, 0, None],
        [2, 1, 5, 1, 1, b"{}", 1, None, None, 2, 0, "an error"],  # error set
        [2, 1, 5, 2, 1, b"{}", 1, None, None, 2, 0, None],  # direction 2
        [2, 1, 5, 1, 3, b"{}", 1, None, None, 2, 0, None],  # frame type 3
        [2, 1, 5, 1, 1, b"{}", 1, None, None, 2, 16, None],  # unknown flag
        [2, 1, 5, 1, 1, b"{}", None, None, None, 2, 0, None],  # op nil
        [2, -1, 5, 1, 1, b"{}", 1, None, None, 2, 0, None],  # negative conn_id
        [2, 2**63, 5, 1, 1, b"{}", 1, None, None, 2, 0, None],  # past int64
        [2, 1, 5, 1, 1, "text", 1, None, None, 2, 0, None],  # payload a str
        [2, 1, 5, 1, 1, b"{}", 1, -(2**63), None, 2, 0, None],  # s at NIL_S
        [2, 1, 5, 1, 1, b"{}", 1, None, None, 2, 0, None, 7],  # 13 fields
        [3, 1, 5, 1000, "", 0, True],  # a close
    ],
)
def test_rows_that_are_not_plain_end_the_run(row: list[Any]) -> None:
    assert runs_module.scan is not None
    data = msgpack.packb(row, use_bin_type=True)
    rows, stop, incomplete, _ = runs_module.scan(data, 0, 0, False)
    plain = row == [2, 1, 5, 1, 1, b"{}", 1, None, None, 2, 0, None]
    assert (rows, stop, incomplete) == ((1, len(data), True) if plain else (0, 0, False))


@needs_c
def test_a_row_cut_short_is_incomplete() -> None:
    assert runs_module.scan is not None
    data = msgpack.packb(frame_row(b'{"op":1}', 1, None, None), use_bin_type=True)
    for end in range(len(data)):
        assert runs_module.scan(data[:end], 0, 0, False)[:3] == (0, 0, True)


def python_says(payload: bytes, op: int, s: int | None, t: str | None) -> bool:
    try:
        p = parse_payload(decode_payload(payload, Encoding.JSON))
    except GatewayError:
        return False
    return (p.op, p.s, p.t) == (op, s, t)


def json_ok(payload: bytes, op: int, s: int | None, t: str | None) -> bool:
    assert runs_module.scan is not None
    row = to_row(FrameRecord(1, 5, 1, 1, payload, op, s, t, len(payload)))  # type: ignore[arg-type]
    data = msgpack.packb(row, use_bin_type=True)
    rows, _, _, columns = runs_module.scan(data, 0, 0, True)
    assert rows == 1
    return bool(columns[11][0])


KEYS = st.sampled_from(["op", "s", "t", "d", "o", "op ", "\\u006fp", "T"])
SCALARS = st.sampled_from(
    ["0", "1", "-1", "10", "1.0", "1e2", "-0", "01", "true", "null", "NaN", "Infinity",
     "-Infinity", '"x"', '"MESSAGE_CREATE"', '"\\u0041"', '"\u00e9"', "99999999999999999999",
     "9223372036854775807", "-9223372036854775808", "[]", "{}", "[1,]", '{"a":1}']
)  # fmt: skip


@st.composite
def json_texts(draw: st.DrawFn) -> bytes:
    """Gateway-like JSON, often valid, sometimes a little (or a lot) broken."""
    if draw(st.booleans()):
        obj = {
            "t": draw(st.none() | st.sampled_from(["READY", "X"])),
            "s": draw(st.none() | st.integers(-5, 5)),
            "op": draw(st.integers(-3, 12)),
            "d": draw(json_value),
        }
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()
    else:
        pairs = draw(st.lists(st.tuples(KEYS, SCALARS), max_size=5))
        ws = draw(st.sampled_from(["", " ", "\n\t", "\x0b", "\xa0"]))
        text = ("{" + ws + ",".join(f'"{k}"{ws}:{ws}{v}' for k, v in pairs) + "}" + ws).encode()
    for pos, byte in draw(
        st.lists(st.tuples(st.integers(0, 10**4), st.integers(0, 255)), max_size=2)
    ):
        text = text[: pos % (len(text) + 1)] + bytes([byte]) + text[pos % (len(text) + 1) + 1 :]
    return text


@needs_c
@settings(max_examples=1500, deadline=None)
@given(
    payload=json_texts() | st.binary(max_size=40),
    op=st.integers(-3, 12),
    s=st.none() | st.integers(-5, 5),
    t=st.none() | st.sampled_from(["READY", "X", "é"]),
)
def test_json_ok_only_vouches_for_what_python_reads_alike(
    payload: bytes, op: int, s: int | None, t: str | None
) -> None:
    if json_ok(payload, op, s, t):
        assert python_says(payload, op, s, t)


@needs_c
@pytest.mark.parametrize(
    "payload",
    [
        b'{"op":0,"d":{"a":[1,2.5e-3,true,false,null,"\\u00e9\\n"]},"s":3,"t":"X"}',
        b'{"t":"X","s":3,"op":0,"d":{}}',
        b' {"op":0,"s":3,"t":"X","op":0} ',
        b'{"op":0,"s":3,"t":"X","d":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}',
    ],
)
def test_json_ok_vouches_for_ordinary_payloads(payload: bytes) -> None:
    assert python_says(payload, 0, 3, "X")
    assert json_ok(payload, 0, 3, "X")


@needs_c
@pytest.mark.parametrize(
    "payload",
    [
        b'{"op":0,"s":3,"t":"X","d":NaN}',  # Python takes it; json_ok leaves it to Python
        b'{"op":0,"s":3,"t":"X","d":"\xed\xa0\x80"}',  # an encoded surrogate
        b'{"op":0,"s":3,"t":"X","d":"\xc0\xaf"}',  # overlong
        b'{"op":0,"s":3,"t":"X","d":"a\x01"}',  # a control character
        b'{"op":0,"s":3,"t":"X"}x',  # extra data
        b'{"op":1,"s":3,"t":"X"}',  # another op
        b'{"op":0,"s":3,"t":"X","op":1}',  # the last op wins
        b'{"op":0,"s":null,"t":"X"}',
        b'{"op":0,"s":3,"t":"\\u0058"}',  # t with an escape
        b'{"\\u006fp":0,"s":3,"t":"X"}',  # a key with an escape
        b'\xef\xbb\xbf{"op":0,"s":3,"t":"X"}',  # a BOM
        b'[{"op":0,"s":3,"t":"X"}]',
        b'{"op":0.0,"s":3,"t":"X"}',
        b'{"op":0,"s":3,"t":"X","d":' + b"[" * 300 + b"]" * 300 + b"}",
    ],
)
def test_json_ok_leaves_doubtful_payloads_to_python(payload: bytes) -> None:
    assert not json_ok(payload, 0, 3, "X")


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: p.name)
def test_stats_by_run_are_the_stats_by_record(path: Path, chunk: int) -> None:
    by_record, by_run = ArchiveStats(), ArchiveStats()
    with ArchiveReader(path) as reader:
        for record in reader:
            by_record.add(record)
    with ArchiveReader(path) as reader:
        for item in reader.runs():
            if isinstance(item, FrameRun):
                by_run.add_run(item)
            else:
                by_run.add(item)
    assert by_run == by_record


@needs_c
def test_ever_new_event_names_do_not_pile_up() -> None:
    """The scan interns event names, but a file of ever new ones must not keep them all:
    memory stays bounded whatever the file (here: what is left once the runs are gone)."""
    assert runs_module.scan is not None
    rows = b"".join(
        msgpack.packb([2, 1, 5, 1, 1, b"{}", 0, i, f"EVENT_{i:07}", 2, 0, None], use_bin_type=True)
        for i in range(100_000)
    )
    tracemalloc.start()
    try:
        _, _, _, columns = runs_module.scan(rows, 0, 0, False)
        assert columns[13][-1] == "EVENT_0099999"
        del columns
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept < 2 << 20  # 100,000 names kept would be ~8 MiB
