"""hikari 2.7 through each fault: what it does, and the verdict the replay gives it.

The expectations are the observed reactions in gateway-facts.md ("Behaviour after faults
(observed)"). hikari closes with 3000 (its "resume" code) before it reconnects, and waits
out an exponential backoff of 1-2 s first (1.85-2.85 s for a second reconnect in a row
without a handshake), so every reaction here takes at least a second. Where hikari
deviates from Discord's docs its verdict fails, and the test asserts that failure and the
reason the judge gives:

* close 4009 (session timed out: the docs say reconnect and IDENTIFY): hikari lists 4009
  among the close codes that keep the session (``_RECONNECTABLE_CLOSE_CODES``) and
  RESUMEs; the replay answers the RESUME of the ended session with op 9 false, and
  hikari IDENTIFYs after its backoff.

Everything else passes: op 7, op 9 either way, close 4000, a drop, a zombie connection
(hikari checks for the ACK before each heartbeat, closes with 3000 and RESUMEs), a
heartbeat request (answered at once), close 4004 (the shard stops) and a rejected RESUME.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hikari
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
    until,
    until_judged,
)
from tests.clients.test_hikari_replay import INTENTS, Probe, running, wait

pytestmark = pytest.mark.usefixtures("no_lost_task_errors")

WINDOW_MS = 10_000  # for reactions that come: generous, they end the wait when seen
SHORT_WINDOW_MS = 2_000  # for reactions that do not come: the test waits it out
MC1 = "MESSAGE_CREATE#1"  # the faults come after the first MESSAGE_CREATE (s=4)
BACKOFF_MS = 1_000  # the least hikari waits before it reconnects


@dataclass(frozen=True)
class Case:
    """One fault and what hikari does after it. Strings are formatted with ``session``
    (READY's session id), ``seq`` (4: the s of the first MESSAGE_CREATE) and ``last``
    (the s of the last dispatch)."""

    faults: tuple[str, ...]
    wait: str  # "resumed", "ready twice", "stopped" or "judged"
    verdicts: list[tuple[str, bool, str]]  # (name, passed, observed) per fault verdict
    ops: list[list[int]]  # the client's opcodes per connection, heartbeats left out
    first_close: tuple[int | None, Closer, str]  # how connection 1 ended
    injected: list[tuple[int, int, Any]] = field(default_factory=list)
    window_ms: int = WINDOW_MS
    min_reaction_ms: float = BACKOFF_MS  # of the first fault verdict


RESUMED = "RESUME (session {session}, seq {seq}) on a new connection"
CASES = {
    # gateway-facts: "closes 3000, RESUME after 1-2 s backoff"
    "reconnect": Case(
        (f"reconnect@event={MC1}",), "resumed",
        [("reconnect after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (3000, Closer.CLIENT, ""), [(1, 7, None)],
    ),
    # "RESUME"
    "invalid-session-true": Case(
        (f"invalid-session:true@event={MC1}",), "resumed",
        [("invalid-session d=true after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (3000, Closer.CLIENT, ""), [(1, 9, True)],
    ),
    # "IDENTIFY on the original URL"
    "invalid-session-false": Case(
        (f"invalid-session:false@event={MC1}",), "ready twice",
        [("invalid-session d=false after MESSAGE_CREATE #1", True, "IDENTIFY on a new connection")],
        [[2], [2]], (3000, Closer.CLIENT, ""), [(1, 9, False)],
    ),
    # "RESUME"
    "close-4000": Case(
        (f"close:4000@event={MC1}",), "resumed",
        [("close 4000 after MESSAGE_CREATE #1", True, RESUMED)],
        [[2], [6]], (4000, Closer.SERVER, "injected close 4000"),
    ),
    # "RESUME" where the docs say IDENTIFY: the verdict fails. The replay then answers the
    # RESUME with op 9 false (the session ended with 4009), and hikari IDENTIFYs.
    "close-4009": Case(
        (f"close:4009@event={MC1}",), "ready twice",
        [("close 4009 after MESSAGE_CREATE #1", False, "RESUMEd after 4009, which ends the session")],
        [[2], [6], [2]], (4009, Closer.SERVER, "injected close 4009"),
    ),
    # "stops": the shard raises GatewayServerClosedConnectionError(4004, can_reconnect=False).
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
    # "closes 3000, RESUME": the 2nd heartbeat gets no ACK; before the 3rd, hikari gives up.
    "zombie": Case(
        ("zombie@client-op=HEARTBEAT#2",), "resumed",
        [("zombie after the client's op 1 #2", True,
          "closed with 3000, then RESUME (session {session}, seq {last}) on a new connection")],
        [[2], [6]], (3000, Closer.CLIENT, ""),
    ),
    # op 1 from the server: hikari heartbeats at once; GatewayBot.close() ends with 1001.
    "heartbeat": Case(
        (f"heartbeat@event={MC1}",), "judged",
        [("heartbeat after MESSAGE_CREATE #1", True, "HEARTBEAT sent")],
        [[2]], (1001, Closer.CLIENT, ""), [(1, 1, None)], min_reaction_ms=0,
    ),
    # op 7, then the RESUME gets op 9 false: hikari IDENTIFYs on a third connection.
    "reject-resume": Case(
        ("reject-resume@conn=1", f"reconnect@event={MC1}"), "ready twice",
        [
            ("reconnect after MESSAGE_CREATE #1", True, RESUMED),
            ("reject-resume on connection 1", True, "IDENTIFY on a new connection"),
        ],
        [[2], [6], [2]], (3000, Closer.CLIENT, ""), [(1, 7, None), (2, 9, False)],
    ),
}  # fmt: skip


async def react(case: Case, server: ReplayServer, probe: Probe) -> None:
    """Wait until hikari's reaction is visible, on its side and on the server's."""
    if case.wait == "resumed":
        await wait(probe.resumed)
    elif case.wait == "ready twice":
        await until(lambda: len(probe.ready) >= 2, "a second ShardReadyEvent")
    elif case.wait == "stopped":
        with pytest.raises(hikari.errors.GatewayServerClosedConnectionError) as stopped:
            await asyncio.wait_for(probe.bot.join(), TIMEOUT)
        assert (stopped.value.code, stopped.value.can_reconnect) == (4004, False)
    await until_judged(server, len(case.verdicts))


def check_verdicts(case: Case, verdicts: list[Verdict], **names: Any) -> None:
    faults = [(v.name, v.passed, v.observed) for v in verdicts[: len(case.verdicts)]]
    assert faults == [(n, p, o.format(**names)) for n, p, o in case.verdicts]
    if case.wait != "stopped":
        assert (verdicts[0].reaction_ms or 0) >= case.min_reaction_ms, verdicts[0]
    # The whole-run checks: heartbeats on schedule (when a connection lived long enough
    # to judge, or heartbeated) and the payload rate; hikari keeps both.
    rest = {v.name: v for v in verdicts[len(case.verdicts) :]}
    assert "payload rate" in rest
    assert set(rest) <= STANDING_RULES
    assert all(v.result is Result.PASS for v in rest.values()), [
        (v.name, v.result, v.observed) for v in rest.values()
    ]


@pytest.mark.parametrize("name", list(CASES))
async def test_fault(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    scenario = fault_scenario(tmp_path)
    async with (
        faulty_replay(scenario, tmp_path, case.faults, case.window_ms) as server,
        running(server, scenario) as probe,
    ):
        await react(case, server, probe)
    verdicts = server.verdicts()
    events = scenario.delivered(0, int(INTENTS))
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
