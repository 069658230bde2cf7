"""Transport and handshake faults through a real socket, against the scripted client
(:class:`Bot`, which does what the docs say): each fault is carried out on the wire as
planned and ends in the verdict a right client earns. The sans-I/O side of the same
faults: tests/unit/replay/test_verdict_trust.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from replayer.replay.engine import ReplayOptions
from replayer.replay.faults import FaultPlan, parse_fault
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result
from tests.clients.conftest import no_leaks, no_lost_task_errors, no_pending_tasks, until
from tests.integration.replay.test_faults_wrong_client import Bot, archive

__all__ = ["no_leaks", "no_lost_task_errors", "no_pending_tasks"]
pytestmark = pytest.mark.usefixtures("no_lost_task_errors")

CASES = [
    # (fault, the verdict's result, its observed text: a prefix)
    ("refuse@phase=upgrade", Result.PASS, "tried again after"),
    ("http:503@phase=upgrade,times=2", Result.PASS, "tried again after"),
    ("blackhole@phase=upgrade", Result.PASS, "tried again after"),
    ("reconnect@phase=hello", Result.PASS, "IDENTIFY on a new connection"),
    ("withhold@phase=identify", Result.PASS, "tried again after"),
    ("withhold@phase=hello", Result.PASS, "tried again after"),
    ("invalid-session:false@phase=identify", Result.PASS, "IDENTIFY"),
    ("close:4000@phase=resume", Result.PASS, "RESUME (session sess1, seq 4)"),
    ("close-no-status@dispatch=4", Result.PASS, "RESUME (session sess1, seq 4)"),
    ("corrupt@dispatch=4", Result.PASS, "RESUME (session sess1, seq 4)"),
    ("corrupt-stream@dispatch=4", Result.PASS, "RESUME (session sess1, seq 4)"),
    ("fragment@dispatch=3", Result.PASS, "read it: HEARTBEAT with s="),
    ("deaf@dispatch=3", Result.NON_STRICT, "stayed"),  # the Bot does not watch for silence
    ("latency:60ms@dispatch=2,jitter=40ms", Result.PASS, "stayed connected"),
    ("http:503@phase=resume-upgrade,times=5", Result.PASS, "tried again after"),
]
COMPANIONS = {
    "close:4000@phase=resume": "reconnect@dispatch=4",
    "http:503@phase=resume-upgrade,times=5": "reconnect@dispatch=4",
}


@pytest.mark.parametrize(("fault", "result", "observed"), CASES, ids=[c[0] for c in CASES])
async def test_a_right_client_through_a_transport_fault(
    tmp_path: Path, fault: str, result: Result, observed: str
) -> None:
    faults = [parse_fault(fault)]
    if fault in COMPANIONS:
        faults.insert(0, parse_fault(COMPANIONS[fault]))
    plan = FaultPlan(tuple(faults))
    options = ReplayOptions(speed=0, verdict_window_ms=6_000)
    async with ReplayServer(load_script(archive(tmp_path, 500)), options, plan=plan) as server:
        replay = server.replay
        assert replay is not None
        bot = Bot(server.gateway_url)
        try:

            def settled() -> bool:
                assert replay is not None
                replay.judge.tick(server.now_ns())
                return not (replay.injector.pending or replay.judge.open_expectations)

            await until(settled, "the fault fired and judged")
        finally:
            await bot.stop()
        verdicts = {v.name: v for v in server.verdicts()}
    verdict = verdicts[faults[-1].describe()]
    assert verdict.result is result, verdict
    assert verdict.observed.startswith(observed), verdict
    if fault.startswith(("refuse", "http", "blackhole")):
        assert bot.attempts_failed == faults[-1].times
    if "resume-upgrade" in fault:  # the Bot retries its resume URL: 5 in a row
        assert verdicts["back to the gateway URL"].result is Result.NON_STRICT
    if fault.startswith(("corrupt",)):
        assert bot.decode_errors == 1
    others = [
        v
        for v in verdicts.values()
        if v is not verdict and v.result is not Result.PASS and v.name != "back to the gateway URL"
    ]
    assert not others, others
