"""Every fault example the README, docs/faults.md, ``replayer replay --help`` and the
bundled plans show fires on the bundled sample (replayer/data/recordings/small-bot.rpl) and passes a
client that does what the docs say: an example that cannot fire is a bug in the docs.

The examples are read from those files when the test runs, so a new example is checked
as soon as it is written. Each runs alone (a few need a companion fault that makes the
client come back, named in COMPANIONS), against the scripted :class:`Bot`, with a short
``heartbeat_interval_ms`` so that zombie detection takes a second, not 41 s.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replayer.cli.replay import FAULT_HELP
from replayer.replay import faults as faults_module
from replayer.replay.engine import ReplayOptions
from replayer.replay.faults import FaultKind, FaultPlan, combine, parse_fault
from replayer.replay.plans import load_plan
from replayer.replay.reachability import check_reachable
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result
from replayer.resources import recordings_dir, sample_archive, sample_plan
from tests.clients.conftest import no_leaks, no_lost_task_errors, no_pending_tasks, until
from tests.integration.replay.test_faults_wrong_client import Bot

__all__ = ["no_leaks", "no_lost_task_errors", "no_pending_tasks"]
pytestmark = pytest.mark.usefixtures("no_lost_task_errors")

ROOT = Path(__file__).parents[3]
SAMPLE = sample_archive("small-bot.rpl")
_FAULT = re.compile(r"(?<![\w-])([a-z]+(?:-[a-z]+)*(?::[\w.]+)?@[\w=#,.-]+)")
# Every kind but split, which needs a zlib-stream client (the Bot speaks plain JSON;
# tests/clients/test_new_faults.py runs it with discord.py and hikari), and latency,
# whose verdict on a 300 ms heartbeat depends on the machine's load
# (tests/integration/replay/test_transport_faults.py runs it on a 500 ms one).
KINDS = tuple(k.value for k in FaultKind if k not in (FaultKind.SPLIT, FaultKind.LATENCY))
# What the Bot earns where it is not PASS: it does not watch for a silent stream.
NOT_PASS = {"deaf": Result.NON_STRICT}
# Faults that only fire once the client comes back (a RESUME, a second connection).
COMPANIONS = {
    "reject-resume": "reconnect@dispatch=2",
    "conn=2": "reconnect@dispatch=3",
    "phase=resume": "reconnect@dispatch=3",
    "phase=identify#2": "invalid-session:false@dispatch=3",
}


def documented_faults() -> list[str]:
    texts = [
        (ROOT / "README.md").read_text(),
        (ROOT / "docs" / "faults.md").read_text(),
        FAULT_HELP,
        faults_module.__doc__ or "",
    ]
    found: list[str] = []
    for text in texts:
        for line in text.splitlines():
            if "error:" in line:
                continue  # an example of a refused fault
            found.extend(_examples(line, found))
    return found


def _examples(line: str, found: list[str]) -> list[str]:
    new: list[str] = []
    for match in _FAULT.finditer(line):
        example = match.group(1).rstrip(".,")
        if example.split("@")[0].split(":")[0] in KINDS and example not in found + new:
            new.append(example)
    return new


def plan_for(example: str) -> FaultPlan:
    plan = FaultPlan((parse_fault(example),))
    for key, companion in COMPANIONS.items():
        if key in example:
            plan = combine([plan, FaultPlan((parse_fault(companion),))])
    return plan


async def run(plan: FaultPlan) -> list[tuple[str, Result | None, str]]:
    script = load_script(SAMPLE)
    check_reachable(plan, script)
    # The scripted bot waits 1 s after op 9, under Discord's 5 s identify window: the
    # identify-concurrency rule is off here (it has its own tests, test_starts_*.py).
    options = ReplayOptions(
        speed=0, verdict_window_ms=6_000, heartbeat_interval_ms=300, identify_concurrency=False
    )
    async with ReplayServer(script, options, plan=plan) as server:
        replay = server.replay
        assert replay is not None
        bot = Bot(server.gateway_url, request_members=True)
        try:

            def settled() -> bool:
                assert replay is not None
                replay.judge.tick(server.now_ns())
                return not (
                    replay.injector.pending
                    or replay.rejected_resumes
                    or replay.judge.open_expectations
                )

            await until(settled, "every fault fired and judged")
        finally:
            await bot.stop()
        verdicts = server.verdicts()
    return [
        (v.name, v.result, v.observed)
        for v in verdicts
        if v.t_fault_ms is not None or v.result is Result.NOT_FIRED
    ]


def test_the_docs_show_examples_of_every_kind() -> None:
    examples = documented_faults()
    assert {e.split("@")[0].split(":")[0] for e in examples} == set(KINDS), examples
    assert "close:4004@seq=20" in examples  # the README's --check example


@pytest.mark.parametrize("example", documented_faults())
async def test_each_documented_fault_fires_on_the_sample_and_passes(example: str) -> None:
    plan = plan_for(example)
    judged = await run(plan)
    assert len(judged) == len(plan.expanded()), judged
    expected = NOT_PASS.get(example.split("@", 1)[0].split(":", 1)[0], Result.PASS)
    assert all(result is expected for _, result, _ in judged), judged


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (recordings_dir() / "plans").glob("*.toml"))
)
async def test_each_bundled_plan_fires_on_the_sample_and_passes(name: str) -> None:
    plan = load_plan(sample_plan(name)).gateway
    judged = await run(plan)
    assert len(judged) == len(plan.expanded()), judged
    assert all(result is Result.PASS for _, result, _ in judged), judged
