"""``ArchiveWriter.write_trusted`` skips redaction: only a producer that makes every byte
itself may call it. The recorders, the importers and everything else write through
``write``; this test holds every caller in the code to that."""

from __future__ import annotations

import ast
from pathlib import Path

from replayer.archive.reader import ArchiveReader
from replayer.archive.records import FrameRecord, FrameType
from replayer.archive.redaction import REDACTED
from replayer.archive.writer import ArchiveWriter
from replayer.gateway.opcodes import Direction

ROOT = Path(__file__).resolve().parents[3]
# The only modules allowed to call it: synth writes its own events (no secret in them).
ALLOWED = {Path("replayer/synth/session.py")}


def _callers() -> set[Path]:
    found = set()
    for base in ("replayer", "addons"):
        for path in (ROOT / base).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "write_trusted":
                    found.add(path.relative_to(ROOT))
    return found


def test_only_synth_writes_unredacted() -> None:
    callers = _callers()
    callers.discard(Path("replayer/archive/writer.py"))  # write itself ends in it
    assert callers == ALLOWED


def _identify(token: str) -> FrameRecord:
    payload = f'{{"op":2,"d":{{"token":"{token}"}}}}'.encode()
    return FrameRecord(1, 1, Direction.CLIENT, FrameType.TEXT, payload, 2, None, None, 30)


def test_write_redacts_and_write_trusted_does_not(tmp_path: Path) -> None:
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.abcdef.ghijklmnopqrstuvwxyz0123"
    with ArchiveWriter(tmp_path / "a.rpl") as writer:
        writer.write(_identify(token))
        writer.write_trusted(_identify("not-a-secret-at-all"))
    with ArchiveReader(tmp_path / "a.rpl") as reader:
        redacted, trusted = list(reader)
    assert isinstance(redacted, FrameRecord)
    assert isinstance(trusted, FrameRecord)
    assert token.encode() not in redacted.payload
    assert REDACTED.encode() in redacted.payload
    assert trusted == _identify("not-a-secret-at-all")
