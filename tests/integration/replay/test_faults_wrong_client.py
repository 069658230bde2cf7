"""Every verdict can fail: a scripted ``websockets`` client with one deliberate mistake
gets a failing verdict that says what went wrong, and the same client without the mistake
passes the same check (so the assertions are not vacuous). Plus: one plan, run twice,
gives the same verdicts and the same transcript.

The client (:class:`Bot`) is a tiny gateway client that does what the docs say (Events >
Gateway: Connecting, Sending Heartbeats, Resuming, Reconnecting; close codes), except for
the one ``mistake`` it is given. Nothing here waits by sleeping: the tests poll the judge
(ticked with the server's clock: ``until_judged``) or the bot's own counters (``until``),
under the clients' TIMEOUT (``REPLAYER_TIMEOUT_FACTOR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from replayer.archive.reader import read_records
from replayer.archive.records import FrameFlag, FrameRecord
from replayer.gateway.opcodes import Direction
from replayer.replay.engine import ReplayOptions
from replayer.replay.faults import FaultPlan, parse_fault
from replayer.replay.intents import VALID_INTENTS
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result, Verdict
from tests.archives import session_lines, write_archive
from tests.clients.conftest import (
    TIMEOUT,
    no_leaks,
    no_lost_task_errors,
    no_pending_tasks,
    normalized,
    until,
    until_judged,
)

# The clients' fixtures: no leaked tasks or sessions (autouse), no lost task exceptions.
__all__ = ["no_leaks", "no_lost_task_errors", "no_pending_tasks"]
pytestmark = pytest.mark.usefixtures("no_lost_task_errors")

TOKEN = "wrong-client-token"
WINDOW_MS = 1500  # how long the judge waits for a reaction that never comes
FATAL = frozenset({4004, 4010, 4011, 4012, 4013, 4014})  # close codes: no reconnect
NEW_SESSION = frozenset({4007, 4009})  # close codes: reconnect, IDENTIFY

MISTAKES = (
    "stale-seq",  # RESUMEs with a seq two behind the last one received
    "wrong-session",  # RESUMEs with another session_id
    "identify-after-reconnect",  # IDENTIFYs instead of RESUMEing after op 7
    "reconnect-after-fatal",  # reconnects and IDENTIFYs after close 4004
    "ignore-reconnect",  # stays on the connection after op 7
    "resume-after-invalid",  # RESUMEs after op 9 false
    "resume-after-4009",  # RESUMEs after close 4009
    "close-1000-on-zombie",  # closes a zombie connection with 1000 (ends the session)
    "ignore-heartbeat-request",  # does not answer op 1
    "flood",  # 125 presence updates at once (limit: 120 per 60 s)
    "late-heartbeats",  # heartbeats every 2.5 intervals
    "identify-at-once",  # re-IDENTIFYs right after op 9 false, without the 1-5 s wait
    "resume-on-gateway-url",  # RESUMEs on the gateway URL, not READY's resume_gateway_url
    "identify-on-resume-url",  # a new session on the resume URL after op 9 false
    "no-backoff",  # tries again at once after each failed connection
)
OPEN_TIMEOUT_S = 2.0  # a black-holed upgrade is given up after this long
READY_TIMEOUT_S = 1.5  # so is a connection whose HELLO, READY or RESUMED does not come
BACKOFF_S = 0.15  # the right client waits 0.15, 0.3, 0.6, ... s after failed connections
# (0.15 s: the first two delays differ by 150 ms, clear of the rule's 100 ms of slack)
INVALID_SESSION_WAIT_S = 1.0


class Bot:
    """A scripted gateway client. Counts what it did, for the tests to wait on."""

    def __init__(
        self, url: str, mistake: str | None = None, flood: int = 0, request_members: bool = False
    ) -> None:
        assert mistake is None or mistake in MISTAKES, mistake
        self.gateway_url = url
        self.resume_url: str | None = None  # READY's resume_gateway_url
        self.old_url: str | None = None  # the resume URL of a session that is gone
        self.failures = 0  # connections in a row that got no READY or RESUMED
        self.attempts_failed = 0  # connection attempts refused or unanswered
        self.decode_errors = 0  # messages that were not JSON
        self.mistake = mistake
        self.flood = flood  # presence updates to send right after READY
        self.request_members = request_members  # one REQUEST_GUILD_MEMBERS after READY
        self.session_id: str | None = None
        self.seq: int | None = None
        self.ws: ClientConnection | None = None
        self.stopping = False
        self.heartbeats_acked = 0
        self.flooded = False  # the flood went out and the server has read it all
        self._acked = True
        self._zombie = False
        self._sync_pending = False
        self.task = asyncio.create_task(self._run(), name="scripted bot")

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            await self.ws.close(4000)  # a resumable close: the session is not ended by it
        await asyncio.wait_for(asyncio.shield(self.task), TIMEOUT)

    async def _run(self) -> None:
        how = "identify"
        while how != "stop" and not self.stopping:
            if self.failures and self.mistake != "no-backoff":
                await asyncio.sleep(BACKOFF_S * 2 ** (self.failures - 1))
            self.failures += 1  # until READY or RESUMED
            how = await self._connection(how)

    async def _send(self, ws: ClientConnection, op: int, d: Any) -> None:
        await ws.send(json.dumps({"op": op, "d": d}))

    async def _connection(self, how: str) -> str:
        """One connection; returns what comes next: "resume", "identify" or "stop".
        RESUMEs go to READY's resume_gateway_url, new sessions to the gateway URL. An
        attempt that fails (refused, an HTTP error, no answer) is tried again."""
        try:
            return await self._connect(how)
        except (OSError, InvalidHandshake, TimeoutError):
            self.attempts_failed += 1
            return how

    async def _connect(self, how: str) -> str:
        base = self.gateway_url
        if how == "resume" and self.resume_url and self.mistake != "resume-on-gateway-url":
            base = self.resume_url
        elif how == "identify" and self.mistake == "identify-on-resume-url" and self.old_url:
            base = self.old_url
        async with connect(
            base + "?v=10&encoding=json",
            compression=None,
            max_size=None,
            max_queue=None,
            ping_interval=None,
            close_timeout=TIMEOUT,
            open_timeout=OPEN_TIMEOUT_S,
        ) as ws:
            self.ws = ws
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    hello = json.loads(await ws.recv())
            except ConnectionClosed as closed:
                return self._after_close(closed)
            except TimeoutError:  # no HELLO: try again
                await ws.close(4000)
                return how
            if hello["op"] == 7:  # RECONNECT in place of HELLO (Gateway Events > Reconnect)
                await ws.close(4000)
                return how
            assert hello["op"] == 10, hello
            if self.stopping:
                return "stop"
            self._zombie = False
            await self._heartbeat(ws)  # at once, as discord.py and hikari do
            interval = hello["d"]["heartbeat_interval"] / 1000
            beats = asyncio.create_task(self._heartbeats(ws, interval), name="bot heartbeats")
            try:
                if how == "resume":
                    await self._resume(ws)
                else:
                    # Every intent: the whole recorded stream (Gateway > List of Intents).
                    identify = {"token": TOKEN, "properties": {}, "intents": VALID_INTENTS}
                    await self._send(ws, 2, identify)
                return await self._read(ws)
            except ConnectionClosed as closed:
                return self._after_close(closed)
            finally:
                beats.cancel()
                await asyncio.gather(beats, return_exceptions=True)

    async def _resume(self, ws: ClientConnection) -> None:
        assert self.session_id is not None
        assert self.seq is not None
        session_id, seq = self.session_id, self.seq
        if self.mistake == "stale-seq":
            seq -= 2
        elif self.mistake == "wrong-session":
            session_id = "not-" + session_id
        await self._send(ws, 6, {"token": TOKEN, "session_id": session_id, "seq": seq})

    async def _heartbeat(self, ws: ClientConnection) -> None:
        self._acked = False
        await self._send(ws, 1, self.seq)

    async def _heartbeats(self, ws: ClientConnection, interval: float) -> None:
        period = interval * (2.5 if self.mistake == "late-heartbeats" else 1)
        while True:
            await asyncio.sleep(period)
            if not self._acked:  # no ACK since the last heartbeat: a zombie connection
                self._zombie = True
                await ws.close(1000 if self.mistake == "close-1000-on-zombie" else 4000)
                return
            await self._heartbeat(ws)

    async def _flood(self, ws: ClientConnection) -> None:
        """``flood`` presence updates, then a heartbeat: its ACK says the server read all."""
        presence = {"since": None, "activities": [], "status": "online", "afk": False}
        for _ in range(self.flood):
            await self._send(ws, 3, presence)
        await self._heartbeat(ws)
        self._sync_pending = True

    async def _read(self, ws: ClientConnection) -> str:
        ready = False  # READY or RESUMED on this connection
        give_up = asyncio.get_running_loop().time() + READY_TIMEOUT_S
        while True:
            try:
                async with asyncio.timeout_at(None if ready else give_up):
                    raw = await ws.recv()
            except TimeoutError:  # no READY: give up on this connection and try again
                await ws.close(4000)
                return "resume" if self.session_id else "identify"
            try:
                obj = json.loads(raw)
            except ValueError:  # not JSON (a corrupt frame): drop the connection, resume
                self.decode_errors += 1
                await ws.close(4000)
                return "resume" if self.session_id else "identify"
            op, d = obj["op"], obj["d"]
            if op == 0:
                self.seq = obj["s"]
                if obj["t"] in ("READY", "RESUMED"):
                    self.failures = 0
                    ready = True
                if obj["t"] == "READY":
                    self.session_id = d["session_id"]
                    self.resume_url = d["resume_gateway_url"]
                    if self.flood and not self.flooded:
                        await self._flood(ws)
                    if self.request_members:
                        self.request_members = False
                        guild = {"guild_id": "1", "query": "", "limit": 0, "nonce": "n1"}
                        # Closed meanwhile: read what came before the close first.
                        with contextlib.suppress(ConnectionClosed):
                            await self._send(ws, 8, guild)
            elif op == 11:
                self._acked = True
                self.heartbeats_acked += 1
                if self._sync_pending:  # ACKs come in order: the first ACK after the flood
                    self._sync_pending, self.flooded = False, True
            elif op == 1 and self.mistake != "ignore-heartbeat-request":
                await self._send(ws, 1, self.seq)
            elif op == 7 and self.mistake != "ignore-reconnect":
                await ws.close(4000)
                return "identify" if self.mistake == "identify-after-reconnect" else "resume"
            elif op == 9:
                await ws.close(4000)
                if d is True or self.mistake == "resume-after-invalid":
                    return "resume"
                self.old_url = self.resume_url
                self.session_id = self.seq = self.resume_url = None
                if self.mistake != "identify-at-once":
                    # Gateway Events > Invalid Session: a random 1-5 s wait (here: 1 s).
                    await asyncio.sleep(INVALID_SESSION_WAIT_S)
                return "identify"

    def _after_close(self, closed: ConnectionClosed) -> str:
        if self.stopping:
            return "stop"
        code = closed.rcvd.code if closed.rcvd is not None else None
        if code in FATAL:
            return "identify" if self.mistake == "reconnect-after-fatal" else "stop"
        if self.session_id is None:  # closed before READY: nothing to resume
            return "identify"
        if self._zombie or code is None:  # closed by us, or dropped: resume
            return "resume"
        if code in NEW_SESSION and self.mistake != "resume-after-4009":
            return "identify"
        return "resume"


# --- the server and the judge ----------------------------------------------------------------


def archive(directory: Path, heartbeat_interval_ms: int) -> Path:
    """``session_lines`` (READY, 2 GUILD_CREATE, 3 MESSAGE_CREATE), with this interval."""
    lines = session_lines()
    for line in lines:
        if line.get("payload", {}).get("op") == 10:
            line["payload"] = {"op": 10, "d": {"heartbeat_interval": heartbeat_interval_ms}}
    path = directory / f"archive-{heartbeat_interval_ms}.rpl"
    return path if path.exists() else write_archive(path, lines)  # the same bytes


@asynccontextmanager
async def served(
    directory: Path, faults: tuple[str, ...], heartbeat_interval_ms: int, tag: str = ""
) -> AsyncIterator[ReplayServer]:
    server = ReplayServer(
        load_script(archive(directory, heartbeat_interval_ms)),
        # Identify concurrency off: Discord's one IDENTIFY per 5 s per bucket is longer
        # than these verdict windows (1.5 s) and than the bot's 1 s wait after op 9; it
        # has its own tests (test_starts_server.py, tests/clients/test_starts_clients.py).
        ReplayOptions(speed=0, verdict_window_ms=WINDOW_MS, identify_concurrency=False),
        plan=FaultPlan(tuple(parse_fault(f) for f in faults)),
        transcript=directory / f"transcript{tag}.rpl",
    )
    async with server:
        yield server


def table(verdicts: list[Verdict]) -> list[tuple[str, bool | None, str]]:
    return [(v.name, v.passed, v.observed) for v in verdicts]


# A client that RESUMEs a session that is gone gets op 9 again and again: a storm too.
STORM = frozenset({"reconnect back-off"})

# --- every check, failed and passed ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    mistake: str
    faults: tuple[str, ...]
    verdict: str  # the name of the verdict the mistake fails
    wrong: str | re.Pattern[str]  # its observed text with the mistake (a regex: timings)
    right: str | re.Pattern[str]  # ... and without
    interval_ms: int = 1000
    flood: int = 0
    result: Result = Result.FAIL  # what the mistake gets (a SHOULD broken: NON-STRICT)
    also: frozenset[str] = frozenset()  # verdicts the mistake may fail too


CASES = [
    Case("stale-seq", ("reconnect@dispatch=4",), "reconnect after dispatch 4",
         "RESUME with seq 2, but the last seq sent was 4",
         "RESUME (session sess1, seq 4) on a new connection"),
    Case("wrong-session", ("reconnect@dispatch=4",), "reconnect after dispatch 4",
         "RESUME with session_id 'not-sess1', expected 'sess1'",
         "RESUME (session sess1, seq 4) on a new connection"),
    Case("identify-after-reconnect", ("reconnect@dispatch=4",), "reconnect after dispatch 4",
         "IDENTIFY instead of RESUME: the session and missed events are lost",
         "RESUME (session sess1, seq 4) on a new connection",
         also=frozenset({"session starts"})),  # a start burnt where a RESUME would do
    Case("ignore-reconnect", ("reconnect@dispatch=4",), "reconnect after dispatch 4",
         "nothing within 1.5 s", "RESUME (session sess1, seq 4) on a new connection"),
    Case("reconnect-after-fatal", ("close:4004@dispatch=3",), "close 4004 after dispatch 3",
         "reconnected and sent IDENTIFY after a fatal close", "no reconnect within 1.5 s"),
    Case("resume-after-invalid", ("invalid-session:false@dispatch=3",),
         "invalid-session d=false after dispatch 3",
         "RESUMEd session 'sess1', which is gone", "IDENTIFY on a new connection",
         also=STORM),
    Case("resume-after-invalid", ("reject-resume@conn=1", "reconnect@dispatch=2"),
         "reject-resume on connection 1", "RESUMEd session 'sess1', which is gone",
         "IDENTIFY on a new connection"),
    Case("resume-after-4009", ("close:4009@dispatch=3",), "close 4009 after dispatch 3",
         "RESUMEd after 4009, which ends the session", "IDENTIFY on a new connection"),
    Case("close-1000-on-zombie", ("zombie@client-op=HEARTBEAT#2",),
         "zombie after the client's op 1 #2",
         "closed with 1000, which ends the session: it cannot resume",
         "closed with 4000, then RESUME (session sess1, seq 6) on a new connection"),
    Case("ignore-heartbeat-request", ("heartbeat@dispatch=6",), "heartbeat after dispatch 6",
         "nothing within 2.0 s", "HEARTBEAT sent", interval_ms=41_250),
    # IDENTIFY, the first heartbeat, 125 (100) presence updates, a heartbeat to sync: 128
    # (103), and a regular heartbeat or two more when the machine is slow.
    Case("flood", (), "payload rate",
         # The 121st closes the connection with 4008 (Gateway > Rate Limiting).
         re.compile(r"at most 121 in any 60 s \(connection 1\)"),
         re.compile(r"at most 10[3-7] in any 60 s \(connection 1\)"), flood=100),
    Case("identify-at-once", ("invalid-session:false@dispatch=3",),
         "invalid-session d=false after dispatch 3",
         re.compile(r"IDENTIFY on a new connection 0\.\d s after op 9; the docs ask for a random 1-5 s wait first"),
         "IDENTIFY on a new connection", result=Result.NON_STRICT),
    Case("resume-on-gateway-url", ("reconnect@dispatch=4",), "RESUMEs on resume_gateway_url",
         "connection 2 RESUMEd on the gateway URL", "1 of 1 did", result=Result.NON_STRICT),
    Case("identify-on-resume-url", ("invalid-session:false@dispatch=3",),
         "new sessions on the gateway URL", "connection 2 IDENTIFYed on a resume_gateway_url",
         "2 of 2 did", result=Result.NON_STRICT),
    Case("no-backoff", ("close:4000@phase=identify,times=4",), "reconnect back-off",
         re.compile(r"4 failed attempts, at most 4 in 5 s; the delays did not grow: .*"),
         "4 failed attempts, at most 4 in 5 s", result=Result.NON_STRICT),
    Case("late-heartbeats", (), "heartbeats on schedule",
         # 2.5 intervals, but the server closes it with 4009 at 1.25 intervals + 1 s.
         re.compile(r"longest gap 2\.[2-4] s \(connection 1\)"),
         re.compile(r"longest gap [01]\.\d s \(connection 1\)")),  # passed: up to 2.25 s
]  # fmt: skip


async def run_case(case: Case, mistake: str | None, directory: Path) -> list[Verdict]:
    """Run the bot (with or without the mistake) until the case's verdict is decided, or,
    for the whole-run checks, until it did what they judge; then stop it and judge."""
    flood = case.flood + (25 if mistake == "flood" else 0)
    tag = f"-{mistake or 'right'}"
    async with served(directory, case.faults, case.interval_ms, tag) as server:
        bot = Bot(server.gateway_url, mistake, flood)
        try:
            if case.mistake == "flood":
                await until(lambda: bot.flooded, "the flood read by the server")
            elif case.mistake == "late-heartbeats":
                await until(lambda: bot.heartbeats_acked >= 2, "two heartbeats ACKed")
            else:
                await until_judged(server, sum(parse_fault(f).times for f in case.faults))
        finally:
            await bot.stop()
        await until(lambda: server.connections_open == 0, "the bot gone")
        return server.verdicts()


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.mistake}-{'+'.join(c.faults) or 'no fault'}" for c in CASES]
)
@pytest.mark.parametrize("mistake", [True, False], ids=["wrong", "right"])
async def test_each_check_fails_the_mistake_and_passes_the_right_client(
    case: Case, mistake: bool, tmp_path: Path
) -> None:
    verdicts = await run_case(case, case.mistake if mistake else None, tmp_path)
    by_name = {v.name: v for v in verdicts}
    verdict = by_name[case.verdict]
    expected = case.wrong if mistake else case.right
    assert verdict.result is (case.result if mistake else Result.PASS), verdict
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(verdict.observed), verdict
    else:
        assert verdict.observed == expected, verdict
    # Every other check passes (for the right client: every check): one mistake, one fail.
    also = case.also if mistake else frozenset()
    others = [
        v
        for v in verdicts
        if v is not verdict and v.result is not Result.PASS and v.name not in also
    ]
    assert not others, others


async def test_ignoring_op7_fails_only_after_the_window(tmp_path: Path) -> None:
    """The verdict stays open while the client sits on the connection, and fails once the
    window has passed: its reaction time is the window, not a reaction."""
    async with served(tmp_path, ("reconnect@dispatch=4",), 1000) as server:
        bot = Bot(server.gateway_url, "ignore-reconnect")
        try:
            await until(lambda: bot.heartbeats_acked >= 1, "a heartbeat ACKed")
            assert server.replay is not None
            [verdict] = server.replay.judge.verdicts
            assert verdict.passed is None  # still open
            await until_judged(server, 1)
            assert verdict.passed is False
            assert verdict.reaction_ms is None
            assert verdict.t_fault_ms is not None
        finally:
            await bot.stop()
        assert server.connections_total == 1  # it never reconnected


# --- determinism ----------------------------------------------------------------------------

PLAN = (
    "reconnect@dispatch=2",
    "invalid-session:true@dispatch=3",
    "close:4000@dispatch=4",
    "drop@dispatch=5",
    "invalid-session:false@conn=5",  # right after connection 5's RESUMED
    "heartbeat@dispatch=6",  # the 6th dispatch of the new session (the old one had 5)
)


def comparable(verdicts: list[Verdict]) -> list[tuple[Any, ...]]:
    """Verdicts without timings: the fault verdicts whole; the whole-run checks with their
    numbers masked (a heartbeat gap and how many heartbeats fall in a window vary)."""
    out = []
    for v in verdicts:
        observed = (
            v.observed if v.t_fault_ms is not None else re.sub(r"\d+(\.\d+)?", "#", v.observed)
        )
        out.append((v.name, v.passed, v.expected, observed, v.connection, v.notes))
    return out


async def test_same_plan_twice_same_verdicts_and_transcript(tmp_path: Path) -> None:
    runs = []
    for run in range(2):
        async with served(tmp_path, PLAN, 1000, tag=f"-{run}") as server:
            bot = Bot(server.gateway_url)
            try:
                await until_judged(server, len(PLAN))
            finally:
                await bot.stop()
            await until(lambda: server.connections_open == 0, "the bot gone")
            verdicts = server.verdicts()
        records = read_records(tmp_path / f"transcript-{run}.rpl")[1]
        runs.append((verdicts, records, server.gateway_url))
    (first, first_records, first_url), (second, second_records, second_url) = runs
    assert comparable(first) == comparable(second)
    assert table(first)[: len(PLAN)] == [
        ("reconnect after dispatch 2", True, "RESUME (session sess1, seq 2) on a new connection"),
        ("invalid-session d=true after dispatch 3", True, "RESUME (session sess1, seq 4) on a new connection"),
        ("close 4000 after dispatch 4", True, "RESUME (session sess1, seq 6) on a new connection"),
        ("drop after dispatch 5", True, "RESUME (session sess1, seq 8) on a new connection"),
        ("invalid-session d=false on connection 5", True, "IDENTIFY on a new connection"),
        ("heartbeat after dispatch 6", True, "HEARTBEAT sent"),
    ]  # fmt: skip
    assert all(v.passed for v in first), table(first)
    one = normalized(first_records, [first_url])
    two = normalized(second_records, [second_url])
    assert sorted(one) == [f"conn {n}" for n in range(1, 7)]
    for key in one:
        assert one[key] == two[key], key
    # The frames the replayer made up are marked as such in the transcript.
    injected = [
        (r.conn_id, r.op, json.loads(r.payload)["d"])
        for r in first_records
        if isinstance(r, FrameRecord) and r.flags & FrameFlag.INJECTED
    ]
    assert injected == [(1, 7, None), (2, 9, True), (5, 9, False), (6, 1, None)]
    assert all(
        r.direction == Direction.SERVER
        for r in first_records
        if isinstance(r, FrameRecord) and r.flags & FrameFlag.INJECTED
    )


def test_cases_cover_every_mistake() -> None:
    assert {c.mistake for c in CASES} == set(MISTAKES)
