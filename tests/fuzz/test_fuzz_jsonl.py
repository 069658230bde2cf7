"""``replayer import``'s line handling on hostile JSON Lines: only ``LineError``, and every
record it accepts can be written (no error left to the writer)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from replayer.archive.jsonl import Importer, LineError, header_from_json, parse_line
from replayer.archive.writer import ArchiveWriter
from tests.archives import session_lines

from .conftest import fuzz_pair, fuzz_target

KEYS = ["kind", "conn", "t_ns", "t_ms", "url", "query", "headers", "shard", "resumes",
        "session_id", "dir", "frame_type", "op", "s", "t", "wire_size", "flags", "error",
        "payload", "raw", "raw_b64", "code", "reason", "closed_by", "clean", "method", "host",
        "path", "status", "request_headers", "response_headers", "request_body",
        "request_body_b64", "response_body", "metadata", "created_unix_ns", "tool", "v",
        "encoding", "compress", "d"]  # fmt: skip
KINDS = ["header", "connection", "connection_info", "frame", "close", "http", "other"]

scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(2**63 - 2, 2**64 + 2)
    | st.floats()  # NaN, inf and all
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "client", "server", "json", "etf", "undecoded", "text", "A"])
)
value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=16,
)
record_object = st.builds(
    lambda kind, conn, fields: {"kind": kind, "conn": conn, **fields},
    st.sampled_from(KINDS),
    st.integers(0, 3),
    st.dictionaries(st.sampled_from(KEYS[2:]), value, max_size=6),
)
# A valid connection line first, so frame lines get past "no connection line before it".
connection_line = st.sampled_from(
    [b'{"kind": "connection"}', b'{"kind": "connection", "url": "wss://g/?encoding=etf"}']
)


def line_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


hostile_line = (
    record_object.map(line_bytes)
    | st.binary(max_size=40)
    | st.sampled_from(
        [b"[" * 5000 + b"]" * 5000, b"1" * 5000, b'{"kind": "connection", "t_ms": NaN}', b"\xff"]
    )
)


_tmp = tempfile.TemporaryDirectory()
OUT = Path(_tmp.name) / "out.rpl"


@fuzz_target(LineError)
def import_lines(lines: list[bytes]) -> None:
    importer = Importer()
    writer: ArchiveWriter | None = None
    try:
        for line in lines:
            obj = parse_line(line)
            if writer is None:
                if isinstance(obj, dict) and obj.get("kind") == "header":
                    writer = ArchiveWriter(OUT, header=header_from_json(obj), overwrite=True)
                    continue
                writer = ArchiveWriter(OUT, overwrite=True)
            writer.write(importer.record(obj))
    finally:
        if writer is not None:
            writer.close()


test_import_lines, test_import_lines_long = fuzz_pair(
    import_lines,
    lines=st.tuples(connection_line, st.lists(hostile_line, min_size=1, max_size=5)).map(
        lambda t: [t[0], *t[1]]
    ),
)


def test_the_target_tells_good_from_bad() -> None:
    """What the fuzz target relies on: a good session imports (records reach the file),
    and a bad line raises the documented LineError, naming its field."""
    good = [line_bytes(obj) for obj in session_lines()]
    import_lines(good)
    assert OUT.stat().st_size > 100
    with pytest.raises(LineError, match="t_ms"):
        # The target itself swallows LineError, the one error it allows: call what it wraps.
        import_lines.__wrapped__([good[0], b'{"kind": "connection", "t_ms": NaN}'])  # type: ignore[attr-defined]
