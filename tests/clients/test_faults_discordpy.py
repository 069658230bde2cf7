"""discord.py 2.7 through each fault: what it does, and the verdict the replay gives it.

The expectations are the observed reactions in gateway-facts.md ("Behaviour after faults
(observed)"). Where discord.py deviates from Discord's docs its verdict fails, and the
test asserts that failure and the reason the judge gives:

* close 4009 (session timed out: the docs say reconnect and IDENTIFY): discord.py treats
  every close code but 1000 and the fatal ones alike and RESUMEs; the replay answers
  the RESUME of the ended session with op 9 false, and discord.py IDENTIFYs 5 s later;
* zombie (HEARTBEAT_ACKs withheld): discord.py does not check for ACKs; it gives up only
  after ``heartbeat_timeout`` (60 s) without any message, so nothing happens in the
  verdict window.

After op 9 false discord.py closes with 1000 and IDENTIFYs only after its default
``before_identify_hook`` (a 5 s sleep): those tests take 5 s, on purpose (the reaction
time is asserted). The archive is a small synth session with a 1 s heartbeat interval.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest

from replayer.archive.records import Closer
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result, Verdict
from tests.clients.conftest import (
    STANDING_RULES,
    TIMEOUT,
    client_ops,
    closes,
    connections,
    fault_scenario,
    faulty_replay,
    injected,
    transcript,
    until_judged,
)
from tests.clients.test_discordpy_replay import INTENTS, Probe, running

pytestmark = pytest.mark.usefixtures("no_lost_task_errors")

WINDOW_MS = 10_000  # for reactions that come: generous, they end the wait when seen
SHORT_WINDOW_MS = 2_000  # for reactions that do not come: the test waits it out
MC1 = "MESSAGE_CREATE#1"  # the faults come after the first MESSAGE_CREATE (s=4)


@dataclass(frozen=True)
class Case:
    """One fault and what discord.py does after it. Strings are formatted with
    ``session`` (READY's session id), ``seq`` (4: the s of the first MESSAGE_CREATE)
    and ``last`` (the s of the last dispatch)."""

    faults: tuple[str, ...]
    wait: str  # "resumed", "ready twice", "stopped" or "judged"
    verdicts: list[tuple[str, bool, str]]  # (name, passed, observed) per fault verdict
    ops: list[list[int]]  # the client's opcodes per connection, heartbeats left out
    first_close: tuple[int | None, Closer, str]  # how connection 1 ended
    injected: list[tuple[int, int, Any]] = field(default_factory=list)
    window_ms: int = WINDOW_MS
    min_reaction_ms: float = 0.0  # of the last fault verdict
    standing: dict[str, Result] = field(default_factory=dict)  # whole-run checks not PASS


# discord.py 2.7 IDENTIFYs its new session on the resume URL after a failed RESUME: op 9
# false sets ``ws.gateway = DEFAULT_GATEWAY``, but Client.connect's ReconnectWebSocket
# handler keeps ``ws_params["gateway"]`` (the resume URL it set for the RESUME) when
# ``resume`` is False. The docs: a new session goes to the cached gateway URL.
IDENTIFY_ON_RESUME_URL = {"new sessions on the gateway URL": Result.NON_STRICT}


RESUMED = "RESUME (session {session}, seq {seq}) on a new connection"
CASES = {
    # gateway-facts: "closes 4000, RESUME"
    "reconnect": Case(
        (f"reconnect@event={MC1}",), "resumed",
        [("reconnect after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (4000, Closer.CLIENT, ""), [(1, 7, None)],
    ),
    # "RESUME"
    "invalid-session-true": Case(
        (f"invalid-session:true@event={MC1}",), "resumed",
        [("invalid-session d=true after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (4000, Closer.CLIENT, ""), [(1, 9, True)],
    ),
    # "closes 1000, IDENTIFY after 5 s (before_identify_hook)"
    "invalid-session-false": Case(
        (f"invalid-session:false@event={MC1}",), "ready twice",
        [("invalid-session d=false after MESSAGE_CREATE #1", True, "IDENTIFY on a new connection")],
        [[2], [2]], (1000, Closer.CLIENT, ""), [(1, 9, False)], min_reaction_ms=5000,
    ),
    # "RESUME"
    "close-4000": Case(
        (f"close:4000@event={MC1}",), "resumed",
        [("close 4000 after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (4000, Closer.SERVER, "injected close 4000"),
    ),
    # "RESUME" where the docs say IDENTIFY: the verdict fails. The replay then answers the
    # RESUME with op 9 false (the session ended with 4009), and discord.py IDENTIFYs.
    "close-4009": Case(
        (f"close:4009@event={MC1}",), "ready twice",
        [("close 4009 after MESSAGE_CREATE #1", False, "RESUMEd after 4009, which ends the session")],
        [[2], [6], [2]], (4009, Closer.SERVER, "injected close 4009"),
        standing=IDENTIFY_ON_RESUME_URL,
    ),
    # "stops": start() raises ConnectionClosed(4004), nothing reconnects. (After on_ready:
    # discord.py's close() while on_ready is pending makes its _delay_ready task fail.)
    "close-4004": Case(
        ("close:4004@client-op=HEARTBEAT#2",), "stopped",
        [("close 4004 after the client's op 1 #2", True, "no reconnect within 2.0 s")],
        [[2]], (4004, Closer.SERVER, "injected close 4004"), window_ms=SHORT_WINDOW_MS,
    ),
    # A drop without a close frame: RESUME.
    "drop": Case(
        (f"drop@event={MC1}",), "resumed",
        [("drop after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (None, Closer.SERVER, ""),
    ),
    # "no ACK check": the verdict fails after its window (3 heartbeat intervals).
    "zombie": Case(
        ("zombie@client-op=HEARTBEAT#2",), "judged",
        [("zombie after the client's op 1 #2", False, "nothing within 3.0 s")],
        [[2]], (4000, Closer.CLIENT, ""), window_ms=SHORT_WINDOW_MS,
    ),
    # op 1 from the server: discord.py heartbeats at once.
    "heartbeat": Case(
        (f"heartbeat@event={MC1}",), "judged",
        [("heartbeat after MESSAGE_CREATE #1", True, "HEARTBEAT sent")],
        [[2]], (4000, Closer.CLIENT, ""), [(1, 1, None)],
    ),
    # op 7, then the RESUME gets op 9 false: discord.py closes 1000, IDENTIFYs after 5 s.
    "reject-resume": Case(
        ("reject-resume@conn=1", f"reconnect@event={MC1}"), "ready twice",
        [
            ("reconnect after MESSAGE_CREATE #1", True, RESUMED),
            ("reject-resume on connection 1", True, "IDENTIFY on a new connection"),
        ],
        [[2], [6], [2]], (4000, Closer.CLIENT, ""), [(1, 7, None), (2, 9, False)],
        min_reaction_ms=5000, standing=IDENTIFY_ON_RESUME_URL,
    ),
}  # fmt: skip


def count_readies(probe: Probe) -> asyncio.Event:
    """An event set at discord.py's second on_ready (it fires one per READY); the probe's
    own handler still runs."""
    first = probe.client.on_ready  # the Probe's handler (set by client.event)
    second = asyncio.Event()
    calls = 0

    async def on_ready() -> None:
        nonlocal calls
        calls += 1
        if calls >= 2:
            second.set()
        await first()

    probe.client.event(on_ready)
    return second


async def react(
    case: Case, server: ReplayServer, probe: Probe, second_ready: asyncio.Event
) -> None:
    """Wait until discord.py's reaction is visible, on its side and on the server's.
    on_ready first, always: closing discord.py while its on_ready is pending (it waits
    ``guild_ready_timeout`` after the last GUILD_CREATE) fails its _delay_ready task."""
    assert probe.task is not None
    await probe.wait(probe.ready)
    if case.wait == "resumed":
        await probe.wait(probe.resumed)
    elif case.wait == "ready twice":
        await probe.wait(second_ready)
    elif case.wait == "stopped":
        with pytest.raises(discord.ConnectionClosed) as stopped:
            await asyncio.wait_for(asyncio.shield(probe.task), TIMEOUT)
        assert stopped.value.code == 4004
    await until_judged(server, len(case.verdicts))


def check_verdicts(case: Case, verdicts: list[Verdict], **names: Any) -> None:
    faults = [(v.name, v.passed, v.observed) for v in verdicts[: len(case.verdicts)]]
    assert faults == [(n, p, o.format(**names)) for n, p, o in case.verdicts]
    assert (verdicts[len(case.verdicts) - 1].reaction_ms or 0) >= case.min_reaction_ms
    # The whole-run checks: heartbeats on schedule (when a connection lived long enough
    # to judge) and the payload rate; discord.py keeps both.
    rest = {v.name: v for v in verdicts[len(case.verdicts) :]}
    assert "payload rate" in rest
    assert set(rest) <= STANDING_RULES
    assert set(case.standing) <= set(rest)
    results = {name: v.result for name, v in rest.items()}
    assert results == {name: case.standing.get(name, Result.PASS) for name in rest}, [
        (v.name, v.result, v.observed) for v in rest.values()
    ]


@pytest.mark.parametrize("name", list(CASES))
async def test_fault(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    scenario = fault_scenario(tmp_path)
    async with faulty_replay(scenario, tmp_path, case.faults, case.window_ms) as server:
        async with running(server, monkeypatch) as probe:
            second_ready = count_readies(probe)
            await react(case, server, probe, second_ready)
        verdicts = server.verdicts()
    events = scenario.delivered(0, INTENTS.value)
    check_verdicts(
        case,
        verdicts,
        session=scenario.session_ids[0],
        seq=events.index("MESSAGE_CREATE") + 1,
        last=len(events),
    )
    records = transcript(server)
    assert [client_ops(records, c.conn_id) for c in connections(records)] == case.ops
    first = closes(records, 1)[0]
    assert (first.code, first.closed_by, first.reason) == case.first_close
    # Every frame the replayer made up, and only those, is marked INJECTED.
    assert injected(records) == case.injected
