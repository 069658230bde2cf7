"""The conformance runner: per case, a :class:`ReplayServer` on 127.0.0.1 (port 0) with
the case's archive, plan and options, and the client as a subprocess pointed at it; the
case ends when its verdicts are in (every fault fired and judged, nothing awaited, the
case's minimum run over), when the client exits, or at its time limit. The result is the
``results.json`` dict of docs/conformance/results-schema.md.

``-j N`` runs N cases at once, each with its own server and port, on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from replayer import __version__
from replayer.archive.reader import read_records
from replayer.archive.records import Closer, CloseRecord, ConnectionRecord, FrameRecord
from replayer.conform.catalogue import (
    VOICE_CHANNEL,
    VOICE_GUILD,
    VOICE_HEARTBEAT_INTERVAL_MS,
    Case,
    bundled_archive,
)
from replayer.gateway.opcodes import Direction, Opcode
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result, Verdict
from replayer.replay.voice.verdicts import VoiceJudge
from replayer.replay.voice_ca import local_ca
from replayer.replay.voice_server import VoiceOptions

SCHEMA = "replayer-conform/1"
# A fake token in bot-token shape: base64 of a snowflake, a timestamp part, an HMAC part
# (hikari reads the bot's id from the first one). It is never valid anywhere.
FAKE_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.conform.replayer-fake-token-never-valid"
STOP_GRACE_S = 3.0  # SIGTERM, then this long, then SIGKILL
POLL_S = 0.05  # how often the runner ticks the judge and looks at the client
RESULTS = ("PASS", "NON-STRICT", "FAIL", "NOT FIRED", "INFO", "MISSING")
# Worst first: a case's result is the worst of its judged verdicts.
_SEVERITY = {Result.FAIL: 3, Result.NOT_FIRED: 2, Result.NON_STRICT: 1, Result.PASS: 0}


@dataclass(frozen=True)
class Client:
    """What to run per case: a shipped adapter or any command."""

    kind: str  # "adapter" | "command"
    name: str
    command: tuple[str, ...]
    agent: str  # the name the report gives the run

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "command": list(self.command)}


def client_env(
    case_id: str,
    rest_base: str,
    gateway_url: str,
    hints: Mapping[str, str] | None = None,
    token: str = FAKE_TOKEN,
) -> dict[str, str]:
    """What a client is told, over the inherited environment (docs/conformance.md);
    ``hints`` (a case's ``client``, and a voice case's ``voice_env``) become
    ``REPLAYER_<KEY>``."""
    extra = {f"REPLAYER_{key.upper()}": value for key, value in (hints or {}).items()}
    return {
        "REPLAYER_REST_BASE": rest_base,
        "REPLAYER_GATEWAY_URL": gateway_url,
        "REPLAYER_TOKEN": token,
        "REPLAYER_CASE": case_id,
        "REPLAYER_ENCODING": "json",
        "REPLAYER_COMPRESS": "",
        **extra,
    }


def voice_env(ca_cert: Path) -> dict[str, str]:
    """A voice case's hints: join the bundled voice channel, trust the voice face's CA
    (``SSL_CERT_FILE`` for Python's ssl and aiohttp, ``REPLAYER_VOICE_CA`` by name)."""
    return {
        "REPLAYER_VOICE": "1",
        "REPLAYER_VOICE_GUILD": VOICE_GUILD,
        "REPLAYER_VOICE_CHANNEL": VOICE_CHANNEL,
        "REPLAYER_VOICE_CA": str(ca_cert),
        "SSL_CERT_FILE": str(ca_cert),
    }


def case_result(case: Case, verdicts: Sequence[Verdict]) -> tuple[str, list[Verdict], list[str]]:
    """The case's result (the worst of the verdicts its rules name; INFO when it names
    none), those verdicts, and the rules that got no verdict (NOT FIRED: nothing judged)."""
    if not case.rules:
        return "INFO", [], []
    by_name: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_name.setdefault(v.name, []).append(v)
    judged = [v for rule in dict.fromkeys(case.rules) for v in by_name.get(rule, [])]
    missing = [rule for rule in dict.fromkeys(case.rules) if rule not in by_name]
    worst = max(
        (_SEVERITY.get(v.result, 3) if v.result is not None else 3 for v in judged), default=0
    )
    if missing:
        worst = max(worst, _SEVERITY[Result.NOT_FIRED])
    result = next(r for r, n in _SEVERITY.items() if n == worst)
    return str(result), judged, missing


def timeline(
    transcript: Path, t0_ns: int | None, end_ns: int, verdicts: Sequence[Verdict]
) -> dict[str, Any]:
    """Per-connection frames, closes, faults and the client's reactions (IDENTIFY, RESUME,
    its closes) up to ``end_ns``, when the case's verdicts were taken (what the teardown
    does after is left out), in ms from the first connection. ``t0_ns`` is the judge's
    origin (its first connection or refused attempt; None: none came), where the
    verdicts' ``t_fault_ms`` count from. Times are the server's clock (``now_ns``)."""
    records = [
        r
        for r in (read_records(transcript)[1] if transcript.exists() else [])
        if getattr(r, "t_ns", 0) <= end_ns
    ]
    opened = [r.t_ns for r in records if isinstance(r, ConnectionRecord)]
    origin_ns = min([*opened, *([t0_ns] if t0_ns is not None else [])], default=end_ns)
    judge_offset_ms = (t0_ns - origin_ns) / 1e6 if t0_ns is not None else 0.0

    def ms(t_ns: int) -> float:
        return round((t_ns - origin_ns) / 1e6, 1)

    connections: dict[int, dict[str, Any]] = {}
    reactions: list[dict[str, Any]] = []
    for record in records:
        if isinstance(record, ConnectionRecord):
            connections[record.conn_id] = {
                "id": record.conn_id, "kind": "gateway", "opened_ms": ms(record.t_ns),
                "closed_ms": None, "close": None, "frames": [],
            }  # fmt: skip
        elif isinstance(record, FrameRecord) and record.conn_id in connections:
            by = "client" if record.direction == Direction.CLIENT else "server"
            connections[record.conn_id]["frames"].append(
                {"t_ms": ms(record.t_ns), "dir": by, "op": record.op, "t": record.t}
            )
            if by == "client" and record.op in (Opcode.IDENTIFY, Opcode.RESUME):
                what = Opcode(record.op).name
                reactions.append({"t_ms": ms(record.t_ns), "conn": record.conn_id, "what": what})
        elif isinstance(record, CloseRecord) and record.conn_id in connections:
            conn = connections[record.conn_id]
            if conn["close"] is None:
                by = "client" if record.closed_by is Closer.CLIENT else "server"
                conn["closed_ms"] = ms(record.t_ns)
                conn["close"] = {"code": record.code, "by": by, "reason": record.reason}
                if by == "client":
                    what = f"close {record.code}" if record.code is not None else "dropped"
                    reactions.append({"t_ms": ms(record.t_ns), "conn": record.conn_id,
                                      "what": what})  # fmt: skip
    faults = [
        {"t_ms": round(v.t_fault_ms + judge_offset_ms, 1), "conn": v.connection, "fault": v.name}
        for v in verdicts
        if v.t_fault_ms is not None
    ]
    return {
        "duration_ms": max(0.0, ms(end_ns)),
        "connections": [connections[k] for k in sorted(connections)],
        "faults": faults,
        "reactions": sorted(reactions, key=lambda r: r["t_ms"]),
    }


class ClientProcess:
    """The client subprocess of one case: its output into ``log``, stopped with SIGTERM
    and, after a grace, SIGKILL (its whole process group: it may have children)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stopped_by = "client"

    @classmethod
    async def start(
        cls, command: Sequence[str], env: Mapping[str, str], log: Path | None
    ) -> ClientProcess:
        """Start ``command`` with ``env`` over the inherited environment; its stdout and
        stderr into ``log`` (None: this process's own)."""
        with contextlib.ExitStack() as stack:
            sink = stack.enter_context(open(log, "wb")) if log is not None else None
            proc = await asyncio.create_subprocess_exec(
                *command,
                env={**os.environ, **env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT if sink is not None else None,
                start_new_session=True,
            )
        return cls(proc)

    @property
    def exited(self) -> bool:
        return self.proc.returncode is not None

    async def stop(self) -> None:
        if self.exited:
            return
        self.stopped_by = "replayer"
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), STOP_GRACE_S)
                return

    def exit_json(self) -> dict[str, Any]:
        code = self.proc.returncode
        return {
            "code": code if code is not None and code >= 0 else None,
            "signal": signal.Signals(-code).name if code is not None and code < 0 else None,
            "stopped_by": self.stopped_by,
        }


async def settle(
    server: ReplayServer,
    until: Callable[[], bool],
    deadline_s: float,
    rules: Iterable[str] | None = None,
    watch_s: float = 0.0,
) -> str:
    """Tick the judge until the faults have fired and been judged and ``until()`` holds
    (the case's minimum run), or ``deadline_s`` (monotonic) passes: "settled" or
    "time limit". ``rules``: only the faults of these verdict names need to fire (a plan
    may hold faults that a right client never meets); None: every fault. Voice faults
    and verdicts: :func:`voice_settled` (``watch_s``)."""
    replay = server.replay
    assert replay is not None
    wanted = None if rules is None else set(rules)

    def awaited(faults: Iterable[Any]) -> bool:
        return any(wanted is None or f.describe() in wanted for f in faults)

    while time.monotonic() < deadline_s:
        replay.judge.tick(server.now_ns())
        busy = (
            awaited(replay.injector.pending)
            or awaited(replay.rejected_resumes)
            or replay.judge.open_expectations
            or not voice_settled(server, wanted, watch_s)
        )
        if not busy and replay.judge.t0_ns is not None and until():
            return "settled"
        await asyncio.sleep(POLL_S)
    return "time limit"


def voice_settled(server: ReplayServer, wanted: set[str] | None, watch_s: float = 0.0) -> bool:
    """Whether the voice verdicts ``wanted`` names are in (no voice face: yes). Voice
    verdicts are taken from a log at the end (``VoiceJudge.finish``, pure), so a preview is
    looked at: each wanted voice fault has fired, ``watch_s`` has passed since the last one
    did, and each wanted verdict is there and final: the client did something it judges
    (a reaction time), or the verdict window since the fault has passed. A verdict that
    passes on nothing happening (no reconnect) thus waits out the window or ``watch_s``;
    an audio verdict with no RTP yet waits for its window, which starts when the client
    is back (:func:`_audio_window_over`)."""
    face = server.voice
    if face is None or face.replay is None:
        return True
    voice = face.replay
    now_ns = server.now_ns()
    if any(wanted is None or f"voice: {f.describe()}" in wanted for f in voice.injector.pending):
        return False
    fired_ns = [f.t_ns for f in voice.judge.fired]
    if fired_ns and now_ns - max(fired_ns) < watch_s * 1e9:
        return False
    preview = {v.name: v for v in voice.judge.finish(now_ns)}
    since_ns = now_ns - max(fired_ns) if fired_ns else 0
    for name in wanted or ():
        if not name.startswith("voice: "):
            continue
        v = preview.get(name)
        if v is None:
            return False
        if v.reaction_ms is not None or v.t_fault_ms is None:
            continue
        if name.startswith("voice: audio after"):
            if not _audio_window_over(voice.judge, now_ns):
                return False
        elif since_ns < voice.judge.window_ns:
            return False
    return True


def _audio_window_over(judge: VoiceJudge, now_ns: int) -> bool:
    """An audio verdict's window starts once the client is back (its next voice
    connection after the fault got READY or RESUMED); never back: two windows after."""
    for fired in judge.fired:
        later = [c for n, c in judge.conns.items() if n > fired.conn and c.opened_ns >= fired.t_ns]
        back = min(later, key=lambda c: c.number).handshake_ns if later else None
        if back is not None and now_ns - back < judge.window_ns:
            return False
        if back is None and now_ns - fired.t_ns < 2 * judge.window_ns:
            return False
    return True


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "group": case.group,
        "group_title": case.group_title,
        "title": case.title,
        "docs": case.docs,
        "archive": case.archive,
        "plan": [*case.plan, *case.voice_plan],
        "rules": list(case.rules),
        "time_limit_s": case.time_limit_s,
    }


def not_applicable(case: Case, client: Client) -> str | None:
    """Why ``case`` does not apply to ``client`` (a shipped adapter its ``not_for``
    names, e.g. hikari, which has no voice client), or None."""
    if client.kind != "adapter":
        return None
    return case.not_for.get(client.name)


def _not_applicable_result(case: Case, why: str) -> dict[str, Any]:
    """INFO, nothing run: the report shows ``not applicable: <why>``."""
    return {
        **_case_json(case),
        "result": "INFO",
        "duration_ms": 0,
        "expected": case.expected,
        "observed": f"not applicable: {why} (not run)",
        "verdicts": [],
        "client_output": None,
        "exit": {"code": None, "signal": None, "stopped_by": "replayer"},
        "timeline": {"duration_ms": 0.0, "connections": [], "faults": [], "reactions": []},
    }


async def run_case(case: Case, client: Client, report_dir: Path) -> dict[str, Any]:
    """Run one case; its client's output goes to ``cases/<id>/client.log``. A voice case
    runs the voice face too (its CA in ``<report dir>/voice-ca``)."""
    why = not_applicable(case, client)
    if why is not None:
        return _not_applicable_result(case, why)
    case_dir = report_dir / "cases" / case.id
    case_dir.mkdir(parents=True, exist_ok=True)
    log = case_dir / "client.log"
    transcript = case_dir / "transcript.rpl"
    script = load_script(bundled_archive(case.archive))
    options = ReplayOptions(**case.replay_options())
    started = time.monotonic()
    voice = None
    if case.voice:
        voice = VoiceOptions(
            ca_dir=report_dir / "voice-ca",
            plan=case.voice_fault_plan(),
            heartbeat_interval_ms=VOICE_HEARTBEAT_INTERVAL_MS,
        )
    server = ReplayServer(
        script, options, plan=case.fault_plan(), transcript=transcript, overwrite_transcript=True,
        voice=voice,
    )  # fmt: skip
    async with server:
        env = client_env(case.id, server.rest_base, server.gateway_url, case.client)
        if server.voice is not None and server.voice.tls is not None:
            env.update(voice_env(server.voice.tls.ca_cert))
        proc = await ClientProcess.start(client.command, env, log)
        exited = asyncio.ensure_future(proc.proc.wait())
        assert server.replay is not None
        judge = server.replay.judge

        def long_enough() -> bool:
            t0 = judge.t0_ns
            return t0 is not None and server.now_ns() - t0 >= case.min_run_s * 1e9

        def done() -> bool:
            return long_enough() or proc.exited

        try:
            deadline_s = started + case.time_limit_s
            waiting = asyncio.ensure_future(
                settle(server, done, deadline_s, case.rules, case.watch_s)
            )
            await asyncio.wait([waiting, exited], return_when=asyncio.FIRST_COMPLETED)
            ended = waiting.result() if waiting.done() else "client exited"
            waiting.cancel()
            end_ns = server.now_ns()
            verdicts = list(server.verdicts())  # the case ends here; what follows is teardown
            t0_ns = judge.t0_ns
        finally:
            # Also when the run is interrupted: the client is in a session of its own, so
            # a Ctrl-C does not reach it.
            await proc.stop()
            exited.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exited
    duration_ms = round((time.monotonic() - started) * 1000)
    result, judged, missing = case_result(case, verdicts)
    observed = [f"{v.name}: {v.observed}" for v in judged]
    observed += [f"{rule}: no verdict (nothing to judge in this run)" for rule in missing]
    if ended != "settled":
        observed.append(f"(the case ended: {ended})")
    return {
        **_case_json(case),
        "result": result,
        "duration_ms": duration_ms,
        "expected": case.expected,
        "observed": "; ".join(observed) if observed else "behaviour recorded (nothing judged)",
        "verdicts": [v.to_json() for v in verdicts],
        "client_output": f"cases/{case.id}/client.log",
        "exit": proc.exit_json(),
        "timeline": timeline(transcript, t0_ns, end_ns, verdicts),
    }


async def run_suite(
    cases: Iterable[Case],
    client: Client,
    report_dir: Path,
    *,
    jobs: int = 1,
    strict: bool = False,
    on_case: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``cases`` (``jobs`` at once) and return the results.json dict, cases in
    catalogue order whatever order they finished in. ``on_case`` sees each as it ends."""
    selected = list(cases)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.monotonic()
    gate = asyncio.Semaphore(max(1, jobs))
    if any(case.voice and not_applicable(case, client) is None for case in selected):
        # The voice CA, made once before cases run at once (each face then reads it).
        await asyncio.get_running_loop().run_in_executor(None, local_ca, report_dir / "voice-ca")

    async def one(case: Case) -> dict[str, Any]:
        async with gate:
            result = await run_case(case, client, report_dir)
        if on_case is not None:
            on_case(result)
        return result

    results = await asyncio.gather(*(one(case) for case in selected))
    order = {case.id: i for i, case in enumerate(selected)}
    ordered = sorted(results, key=lambda r: order[r["id"]])
    counts = dict.fromkeys(RESULTS, 0)
    for r in ordered:
        counts[r["result"]] += 1
    return {
        "schema": SCHEMA,
        "tool": {"name": "replayer", "version": __version__},
        "agent": client.agent,
        "client": client.to_json(),
        "started_at": started_at,
        "duration_ms": round((time.monotonic() - started) * 1000),
        "strict": strict,
        "summary": counts,
        "cases": ordered,
    }


def failed(report: Mapping[str, Any], strict: bool) -> bool:
    """Whether the run fails: a FAIL or NOT FIRED case (``strict``: NON-STRICT too)."""
    bad = {"FAIL", "NOT FIRED"} | ({"NON-STRICT"} if strict else set())
    return any(case["result"] in bad for case in report["cases"])


__all__ = ["FAKE_TOKEN", "SCHEMA", "Client", "ClientProcess", "case_result", "client_env",
           "failed", "not_applicable", "run_case", "run_suite", "timeline", "voice_env",
           "voice_settled"]  # fmt: skip
