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
from replayer.conform.catalogue import Case, bundled_archive
from replayer.gateway.opcodes import Direction, Opcode
from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.verdicts import Result, Verdict

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
    ``hints`` (a case's ``client``) become ``REPLAYER_<KEY>``."""
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
) -> str:
    """Tick the judge until the faults have fired and been judged and ``until()`` holds
    (the case's minimum run), or ``deadline_s`` (monotonic) passes: "settled" or
    "time limit". ``rules``: only the faults of these verdict names need to fire (a plan
    may hold faults that a right client never meets); None: every fault."""
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
        )
        if not busy and replay.judge.t0_ns is not None and until():
            return "settled"
        await asyncio.sleep(POLL_S)
    return "time limit"


async def run_case(case: Case, client: Client, report_dir: Path) -> dict[str, Any]:
    """Run one case; its client's output goes to ``cases/<id>/client.log``."""
    case_dir = report_dir / "cases" / case.id
    case_dir.mkdir(parents=True, exist_ok=True)
    log = case_dir / "client.log"
    transcript = case_dir / "transcript.rpl"
    script = load_script(bundled_archive(case.archive))
    options = ReplayOptions(**case.replay_options())
    started = time.monotonic()
    server = ReplayServer(
        script, options, plan=case.fault_plan(), transcript=transcript, overwrite_transcript=True
    )
    async with server:
        env = client_env(case.id, server.rest_base, server.gateway_url, case.client)
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
            waiting = asyncio.ensure_future(settle(server, done, deadline_s, case.rules))
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
        "id": case.id,
        "group": case.group,
        "group_title": case.group_title,
        "title": case.title,
        "docs": case.docs,
        "archive": case.archive,
        "plan": list(case.plan),
        "rules": list(case.rules),
        "time_limit_s": case.time_limit_s,
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


__all__ = ["FAKE_TOKEN", "SCHEMA", "Client", "ClientProcess", "case_result", "client_env", "failed",
           "run_case", "run_suite", "timeline"]  # fmt: skip
