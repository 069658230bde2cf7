"""A tick's sends are bounded in recorded bytes as well as in number: what one of a
thousand connections holds in flight stays near ``MAX_BATCH_BYTES``."""

from __future__ import annotations

import json
from pathlib import Path

from replayer.replay.engine import (
    MAX_BATCH_BYTES,
    GatewayConnection,
    Replay,
    ReplayOptions,
    Send,
)
from replayer.replay.script import ArchivePayloads, load_script
from tests.archives import INTENTS, session_lines, write_archive

SIZES = [70_000, *([900] * 300), 65_000, *([10] * 50)]


def test_a_tick_stays_within_its_byte_budget(tmp_path: Path) -> None:
    extra = [
        {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 1000 + i,
         "payload": {"op": 0, "s": 7 + i, "t": "MESSAGE_CREATE", "d": {"content": "x" * n}}}
        for i, n in enumerate(SIZES)
    ]  # fmt: skip
    script = load_script(write_archive(tmp_path / "a.rpl", session_lines(extra=extra)))
    replay = Replay(script, ReplayOptions(speed=0, identify_concurrency=False))
    payloads = ArchivePayloads(script.path)
    try:
        conn = GatewayConnection(replay, script.shards[0].encoding, payloads)
        hello = conn.start(0)
        d = {"token": "t", "properties": {}, "intents": INTENTS}
        batches = [conn.receive(json.dumps({"op": 2, "d": d}).encode(), 0)]
        while (wake := conn.next_wakeup_ns()) is not None and wake <= 0:
            batches.append(conn.tick(0))
    finally:
        payloads.close()
    sends = [[c for c in b if isinstance(c, Send)] for b in batches]
    assert len(hello) == 1
    assert sum(map(len, sends)) == len(script.shards[0])  # READY and every dispatch
    largest = max(len(c.raw) for b in sends for c in b)
    sizes = [sum(len(c.raw) for c in b) for b in sends if b]
    assert len(sizes) >= 300 * 900 // MAX_BATCH_BYTES  # several ticks
    # A tick ends once its budget is spent: over it by one frame at most.
    assert all(size < MAX_BATCH_BYTES + largest for size in sizes)
    assert [json.loads(c.raw)["s"] for b in sends for c in b] == list(
        range(1, len(script.shards[0]) + 1)
    )
