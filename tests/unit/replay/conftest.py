"""Engine test harness over small archives (built by tests/archives.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replayer.gateway.encoding import Encoding
from replayer.replay.engine import GatewayConnection, Replay, ReplayOptions
from replayer.replay.faults import FaultPlan
from replayer.replay.script import ArchivePayloads, ReplayScript, load_script
from tests.archives import session_lines, write_archive


class Harness:
    """A replay over an archive, with helpers to open connections."""

    def __init__(
        self, script: ReplayScript, options: ReplayOptions, plan: FaultPlan | None = None
    ) -> None:
        self.replay = Replay(script, options, plan)
        self.payloads = ArchivePayloads(script.path)

    def connect(self, encoding: Encoding = Encoding.JSON) -> GatewayConnection:
        return GatewayConnection(self.replay, encoding, self.payloads)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(
        lines: list[dict[str, Any]] | None = None, plan: FaultPlan | None = None, **options: Any
    ) -> Harness:
        path = write_archive(
            tmp_path / f"a{len(made)}.rpl", lines if lines is not None else session_lines()
        )
        # The server's timers are off here unless a test turns them on: these tests move
        # a fake clock by seconds without the heartbeats a client would send meanwhile
        # (test_engine_conduct.py tests the timers).
        timers: dict[str, Any] = {
            "heartbeat_timeout": False, "identify_timeout_ms": None, "reconnect_close_ms": None,
        }  # fmt: skip
        options = {**timers, **options}
        h = Harness(
            load_script(path), ReplayOptions(gateway_url="ws://replayer.test/", **options), plan
        )
        made.append(h)
        return h

    yield make
    for h in made:
        h.payloads.close()
