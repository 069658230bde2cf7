"""Fault plans: what to break, when, how often. Faults are data (as in Toxiproxy), built
from the command line's short syntax, from a TOML plan, or drawn at random from a seed.

Short syntax, one fault per ``--fault``::

    KIND[:ARG]@KEY=VALUE[,KEY=VALUE...]

    reconnect@event=READY                 op 7 right after READY
    invalid-session:false@dispatch=5      op 9 d=false after the 5th dispatch
    close:4009@seq=12                     close 4009 after the dispatch with s=12
    drop@event=MESSAGE_CREATE#3           TCP gone after the 3rd MESSAGE_CREATE
    zombie@client-op=HEARTBEAT#2          stop ACKing from the client's 2nd heartbeat
    heartbeat@t=5s                        ask for a heartbeat (op 1) 5 s into the replay
    stall:3s@dispatch=2                   send nothing for 3 s after the 2nd dispatch
    rate-limited@client-op=REQUEST_GUILD_MEMBERS#1
    reject-resume@conn=1                  answer the next RESUME with op 9 d=false
    reconnect@dispatch=5,times=3,every=5     at the 5th, 10th and 15th dispatch

Handshake faults answer a step of the handshake instead of the gateway's usual answer:

    reconnect@phase=hello                 op 7 instead of HELLO on the first connection
    withhold@phase=hello,conn=2           no HELLO at all on the second connection
    invalid-session:false@phase=identify  op 9 in answer to the first IDENTIFY
    close:4014@phase=identify             close 4014 in answer to IDENTIFY
    withhold@phase=identify#2             READY withheld after the second IDENTIFY
    close:4000@phase=resume               a close as the first answer to a RESUME

Triggers combine with ``conn=N`` (only on the N-th connection). ``times`` (default 1)
and ``every`` (default: the trigger's own count) repeat a fault.
"""

from __future__ import annotations

import enum
import random
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from replayer.errors import ReplayerError
from replayer.gateway.close_codes import CloseCode
from replayer.gateway.opcodes import parse_opcode


class FaultPlanError(ReplayerError, ValueError):
    """A fault plan that cannot be used; names the fault and the field."""


class FaultKind(enum.StrEnum):
    RECONNECT = "reconnect"  # op 7
    INVALID_SESSION = "invalid-session"  # op 9, d = resumable
    CLOSE = "close"  # close frame with a code
    DROP = "drop"  # TCP gone, no close frame
    ZOMBIE = "zombie"  # stop sending HEARTBEAT_ACK
    HEARTBEAT = "heartbeat"  # server asks for a heartbeat (op 1)
    STALL = "stall"  # send nothing for a while
    RATE_LIMITED = "rate-limited"  # a RATE_LIMITED dispatch
    REJECT_RESUME = "reject-resume"  # the next RESUME gets op 9 d=false
    WITHHOLD = "withhold"  # a handshake step goes unanswered (phase=...)
    # Transport faults.
    REFUSE = "refuse"  # the upgrade request gets its TCP connection closed (phase=upgrade)
    BLACKHOLE = "blackhole"  # the upgrade request is never answered (phase=upgrade)
    HTTP = "http"  # the upgrade is answered with an HTTP status, http:503 (phase=upgrade)
    CLOSE_NO_STATUS = "close-no-status"  # a close frame without a status code (1005)
    CORRUPT = "corrupt"  # a payload that is not valid JSON / ETF
    CORRUPT_STREAM = "corrupt-stream"  # bytes that break the zlib / zstd context
    DEAF = "deaf"  # dispatches stop, heartbeat ACKs go on
    FRAGMENT = "fragment"  # the next dispatch over several WebSocket frames
    SPLIT = "split"  # the next zlib-stream message over several WebSocket messages
    LATENCY = "latency"  # every frame from here on late by latency:200ms (jitter=50ms)


class Phase(enum.StrEnum):
    """A step of the handshake a fault can answer (Events > Gateway > Connection Lifecycle)."""

    HELLO = "hello"  # instead of HELLO, when the connection opens
    IDENTIFY = "identify"  # instead of READY, in answer to IDENTIFY
    RESUME = "resume"  # instead of the replay and RESUMED, in answer to RESUME
    UPGRADE = "upgrade"  # a connection attempt, before the WebSocket upgrade is answered
    RESUME_UPGRADE = "resume-upgrade"  # an attempt on a resume_gateway_url


# What a handshake fault may be (anything that ends or holds up the handshake).
PHASE_KINDS = frozenset(
    {"reconnect", "invalid-session", "close", "drop", "withhold", "close-no-status", "corrupt",
     "corrupt-stream"}
)  # fmt: skip
# What may answer an upgrade attempt, and nothing else may.
UPGRADE_KINDS = frozenset({"refuse", "blackhole", "http"})


@dataclass(frozen=True)
class Trigger:
    """When a fault fires. Exactly one of dispatch, event, seq, client_op, t_ms is set
    (``conn`` alone means: as soon as that connection has opened)."""

    dispatch: int | None = None  # after the k-th dispatch of the session
    event: str | None = None  # after the nth dispatch named event ...
    seq: int | None = None  # after the dispatch with this s
    client_op: int | None = None  # after the client's nth payload of this opcode
    nth: int = 1
    t_ms: int | None = None  # this long after the replay started
    phase: Phase | None = None  # the nth time the handshake reaches this step
    conn: int | None = None  # only on the conn-th connection (1-based)
    now: bool = False  # injected at run time without a trigger: at once, on ``conn``

    def describe(self) -> str:
        parts = []
        if self.dispatch is not None:
            parts.append(f"after dispatch {self.dispatch}")
        if self.event is not None:
            parts.append(f"after {self.event} #{self.nth}")
        if self.seq is not None:
            parts.append(f"after s={self.seq}")
        if self.client_op is not None:
            parts.append(f"after the client's op {self.client_op} #{self.nth}")
        if self.t_ms is not None:
            parts.append(f"at {self.t_ms} ms")
        if self.phase is not None:
            step = {"hello": "instead of HELLO", "identify": "in answer to IDENTIFY",
                    "resume": "in answer to RESUME", "upgrade": "on connection attempt",
                    "resume-upgrade": "on resume URL attempt"}[self.phase]  # fmt: skip
            parts.append(f"{step} #{self.nth}")
        if self.now:
            parts.append("injected at run time")
        if self.conn is not None:
            parts.append(f"on connection {self.conn}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    trigger: Trigger
    code: int | None = None  # close
    reason: str = ""
    resumable: bool = False  # invalid-session
    duration_ms: int = 0  # stall; latency
    jitter_ms: int = 0  # latency: each frame's delay is duration +- jitter
    retry_after_s: float = 5.0  # rate-limited
    times: int = 1
    every: int | None = None  # repeat period in the trigger's unit
    source: str = ""  # how the user wrote it, for messages
    recorded: bool = False  # a server-side incident of the archive, replayed

    def describe(self) -> str:
        arg = ""
        if self.kind is FaultKind.CLOSE:
            arg = f" {self.code}"
        elif self.kind is FaultKind.INVALID_SESSION:
            arg = f" d={str(self.resumable).lower()}"
        elif self.kind is FaultKind.STALL:
            arg = f" {self.duration_ms} ms"
        elif self.kind is FaultKind.LATENCY:
            arg = f" {self.duration_ms} ms" + (f" +- {self.jitter_ms} ms" if self.jitter_ms else "")
        elif self.kind is FaultKind.HTTP:
            arg = f" {self.code}"
        recorded = "recorded " if self.recorded else ""
        return f"{recorded}{self.kind}{arg} {self.trigger.describe()}"

    def occurrence(self, k: int) -> Fault:
        """The k-th repetition (0-based) as a fault of its own."""
        if k == 0:
            return self
        step = self.every
        t = self.trigger
        if t.dispatch is not None:
            t = replace(t, dispatch=t.dispatch + k * (step or t.dispatch))
        elif t.seq is not None:
            t = replace(t, seq=t.seq + k * (step or t.seq))
        elif t.event is not None or t.client_op is not None or t.phase is not None:
            t = replace(t, nth=t.nth + k * (step or t.nth))
        elif t.t_ms is not None:
            t = replace(t, t_ms=t.t_ms + k * (step or t.t_ms))
        elif t.conn is not None:
            t = replace(t, conn=t.conn + k * (step or 1))
        return replace(self, trigger=t, times=1)


@dataclass(frozen=True)
class FaultPlan:
    faults: tuple[Fault, ...] = ()
    seed: int | None = None

    def expanded(self) -> list[Fault]:
        """Every occurrence of every fault, each firing once."""
        return [f.occurrence(k) for f in self.faults for k in range(f.times)]


# --- parsing -------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d{1,12})(?:\.(\d{0,9})\d*)?\s*(ms|s|m)?\s*$")
_INTEGER = re.compile(r"\s*\+?(\d{1,19})\s*")
_KEYS = {"dispatch", "event", "seq", "client-op", "t", "phase", "conn", "times", "every", "code",
         "reason", "resumable", "duration", "retry-after", "jitter"}  # fmt: skip
# Durations and triggers longer than a week are refused, not run (or overflowed).
MAX_DURATION_MS = 7 * 24 * 3600 * 1000
# Counts (dispatch, seq, conn, every, #k) are 63-bit at most; a fault repeats 10 000 times.
MAX_COUNT = 2**63 - 1
MAX_TIMES = 10_000


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _ms(text: str, where: str) -> int:
    """``500ms``, ``3s``, ``1.5m`` (a bare number is seconds) -> whole milliseconds, exact
    (no float: ``1e400`` or 400 digits are refused, not turned into inf)."""
    m = _DURATION.match(text)
    if not m:
        raise FaultPlanError(
            f"{where}: {_shown(text)} is not a duration like 500ms, 3s or 1.5m "
            f"(at most {MAX_DURATION_MS // 86_400_000} days)"
        )
    whole: str = m.group(1)
    frac: str = m.group(2) or ""
    unit_name: str | None = m.group(3)
    unit: int = {"ms": 1, "s": 1000, "m": 60_000, None: 1000}[unit_name]
    scale: int = 10 ** len(frac)
    ms_scaled = (int(whole) * scale + (int(frac) if frac else 0)) * unit  # ms * scale
    ms, rest = divmod(ms_scaled, scale)
    if 2 * rest > scale or (2 * rest == scale and ms % 2):  # round half to even, as round()
        ms += 1
    if ms > MAX_DURATION_MS:
        raise FaultPlanError(
            f"{where}: {_shown(text)} is longer than {MAX_DURATION_MS // 86_400_000} days"
        )
    return ms


def _int(value: Any, where: str, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """An integer written as one: TOML ``1.9`` or text ``1.9`` is refused, not truncated."""
    number: int
    if type(value) is int:
        number = value
    elif isinstance(value, str) and (m := _INTEGER.fullmatch(value)):
        number = int(m.group(1))
    else:
        raise FaultPlanError(f"{where}: expected an integer, got {_shown(value)}")
    if number < minimum:
        raise FaultPlanError(f"{where}: must be at least {minimum}, got {number}")
    if number > maximum:
        raise FaultPlanError(f"{where}: must be at most {maximum}, got {_shown(number)}")
    return number


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("true", "resumable", "yes", "1"):
        return True
    if text in ("false", "fresh", "no", "0"):
        return False
    raise FaultPlanError(f"{where}: expected true or false, got {value!r}")


def _counted(value: Any, where: str) -> tuple[str, int]:
    """``NAME`` or ``NAME#k``."""
    name, _, nth = str(value).partition("#")
    return name, _int(nth, f"{where} (after #)") if nth else 1


def fault_from_mapping(
    spec: Mapping[str, Any], where: str, source: str = "", *, now_ok: bool = False
) -> Fault:
    """Build a fault from keys shared by the short syntax and TOML plans. ``now_ok``: a
    fault injected at run time may have no trigger (it fires at once)."""
    unknown = set(spec) - _KEYS - {"kind", "arg"}
    if unknown:
        raise FaultPlanError(
            f"{where}: unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    try:
        kind = FaultKind(str(spec.get("kind", "")))
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise FaultPlanError(
            f"{where}: field 'kind': {spec.get('kind')!r} is not one of {kinds}"
        ) from None
    arg = spec.get("arg")
    fields: dict[str, Any] = {}
    if kind is FaultKind.CLOSE:
        code = spec.get("code", arg)
        if code is None:
            raise FaultPlanError(f"{where}: field 'code': a close needs a code (close:4000)")
        fields["code"] = _int(code, f"{where}: field 'code'", 1000)
        if not (1000 <= fields["code"] <= 4999) or fields["code"] in (1004, 1005, 1006, 1015):
            raise FaultPlanError(
                f"{where}: field 'code': {fields['code']} cannot be sent in a close frame"
            )
        fields["reason"] = str(spec.get("reason", ""))
    elif kind is FaultKind.INVALID_SESSION:
        fields["resumable"] = _bool(
            spec.get("resumable", arg if arg is not None else False), f"{where}: field 'resumable'"
        )
    elif kind is FaultKind.HTTP:
        code = spec.get("code", arg)
        if code is None:
            raise FaultPlanError(f"{where}: field 'code': an http fault needs a status (http:503)")
        fields["code"] = _int(code, f"{where}: field 'code'", 100)
        if not 100 <= fields["code"] <= 599 or fields["code"] == 101:
            raise FaultPlanError(f"{where}: field 'code': {fields['code']} is not an HTTP error")
    elif kind is FaultKind.LATENCY:
        delay = spec.get("duration", arg)
        if delay is None:
            raise FaultPlanError(f"{where}: field 'duration': a latency needs one (latency:200ms)")
        fields["duration_ms"] = _ms(str(delay), f"{where}: field 'duration'")
        if "jitter" in spec:
            fields["jitter_ms"] = _ms(str(spec["jitter"]), f"{where}: field 'jitter'")
            if fields["jitter_ms"] > fields["duration_ms"]:
                raise FaultPlanError(f"{where}: field 'jitter': more than the latency itself")
    elif kind is FaultKind.STALL:
        duration = spec.get("duration", arg)
        if duration is None:
            raise FaultPlanError(f"{where}: field 'duration': a stall needs a duration (stall:3s)")
        fields["duration_ms"] = _ms(str(duration), f"{where}: field 'duration'")
    elif kind is FaultKind.RATE_LIMITED:
        retry = spec.get("retry-after", arg)
        if retry is not None:
            fields["retry_after_s"] = _ms(str(retry), f"{where}: field 'retry-after'") / 1000
    elif arg is not None:
        raise FaultPlanError(f"{where}: {kind} takes no argument, got {arg!r}")

    trigger: dict[str, Any] = {}
    if "dispatch" in spec:
        trigger["dispatch"] = _int(spec["dispatch"], f"{where}: field 'dispatch'")
    if "event" in spec:
        name, nth = _counted(spec["event"], f"{where}: field 'event'")
        if not re.fullmatch(r"[A-Z_]+", name.upper()) or not name:
            raise FaultPlanError(
                f"{where}: field 'event': {name!r} is not a dispatch name like GUILD_CREATE"
            )
        trigger["event"], trigger["nth"] = name.upper(), nth
    if "seq" in spec:
        trigger["seq"] = _int(spec["seq"], f"{where}: field 'seq'")
    if "client-op" in spec:
        name, nth = _counted(spec["client-op"], f"{where}: field 'client-op'")
        try:
            trigger["client_op"] = parse_opcode(name)
        except ValueError as exc:
            raise FaultPlanError(f"{where}: field 'client-op': {exc}") from None
        trigger["nth"] = nth
    if "t" in spec:
        trigger["t_ms"] = _ms(str(spec["t"]), f"{where}: field 't'")
    if "phase" in spec:
        name, nth = _counted(spec["phase"], f"{where}: field 'phase'")
        try:
            trigger["phase"] = Phase(name.strip().lower())
        except ValueError:
            phases = ", ".join(p.value for p in Phase)
            raise FaultPlanError(
                f"{where}: field 'phase': {name!r} is not one of {phases}"
            ) from None
        trigger["nth"] = nth
        upgrade = trigger["phase"] in (Phase.UPGRADE, Phase.RESUME_UPGRADE)
        allowed = UPGRADE_KINDS if upgrade else PHASE_KINDS
        if kind not in allowed:
            what = "a connection attempt" if upgrade else "a handshake step"
            raise FaultPlanError(
                f"{where}: field 'phase': a {kind} cannot answer {what} "
                f"(only {', '.join(sorted(allowed))})"
            )
    elif kind is FaultKind.WITHHOLD:
        raise FaultPlanError(f"{where}: withhold needs a handshake step (phase=hello, ...)")
    elif kind in UPGRADE_KINDS:
        raise FaultPlanError(
            f"{where}: {kind} answers a connection attempt: phase=upgrade or phase=resume-upgrade"
        )
    if "conn" in spec:
        trigger["conn"] = _int(spec["conn"], f"{where}: field 'conn'")
    points = [k for k in ("dispatch", "event", "seq", "client_op", "t_ms", "phase") if k in trigger]
    if len(points) > 1:
        raise FaultPlanError(
            f"{where}: give one of dispatch, event, seq, client-op, t, phase "
            f"(got {', '.join(points)})"
        )
    if not points and "conn" not in trigger:
        if not now_ok:
            raise FaultPlanError(
                f"{where}: say when: dispatch=, event=, seq=, client-op=, t=, phase= or conn="
            )
        trigger["now"] = True
    times = _int(spec.get("times", 1), f"{where}: field 'times'", maximum=MAX_TIMES)
    every = _int(spec["every"], f"{where}: field 'every'") if "every" in spec else None
    if trigger.get("now") and (times != 1 or every is not None):
        raise FaultPlanError(f"{where}: times and every need a trigger (dispatch=, event=, ...)")
    return Fault(
        kind, Trigger(**trigger), times=times, every=every, source=source or where, **fields
    )


def parse_fault(text: str, *, now_ok: bool = False) -> Fault:
    """One fault in the short syntax (see the module docstring). ``now_ok``: a fault
    injected at run time, where no ``@...`` (or ``@conn=N`` alone) means now."""
    head, at, when = text.partition("@")
    shown = text if len(text) <= 80 else text[:77] + "..."
    where = f"fault {shown!r}"
    if not at and not now_ok:
        raise FaultPlanError(
            f"{where}: missing '@' (KIND[:ARG]@KEY=VALUE, e.g. reconnect@event=READY)"
        )
    kind, _, arg = head.strip().partition(":")
    spec: dict[str, Any] = {"kind": kind.strip().lower()}
    if arg:
        spec["arg"] = arg.strip()
    for part in when.split(",") if at else ():
        key, eq, value = part.partition("=")
        if not eq or not value.strip():
            raise FaultPlanError(f"{where}: {part.strip()!r} is not KEY=VALUE")
        spec[key.strip().lower()] = value.strip()
    return fault_from_mapping(spec, where, text, now_ok=now_ok)


def read_plan(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], int | None]:
    """A TOML plan's ``[[fault]]`` tables, each with the ``where`` its messages start with
    (``plan.toml: fault 2 (close)``) and its keys as the short syntax spells them
    (``client_op`` -> ``client-op``), and its ``seed``. replay/plans.py builds the faults:
    a table's kind says whether it is the main gateway's or the voice face's."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaultPlanError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FaultPlanError(f"{path}: is a directory, not a TOML fault plan") from None
    except OSError as exc:
        raise FaultPlanError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FaultPlanError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses on nested arrays and inline tables
        raise FaultPlanError(f"{path}: not valid TOML: nested too deeply") from None
    unknown = set(data) - {"fault", "seed"}
    if unknown:
        raise FaultPlanError(
            f"{path}: unknown top-level key {sorted(unknown)[0]!r} (expected [[fault]] and seed)"
        )
    tables = data.get("fault", [])
    if not isinstance(tables, list):
        raise FaultPlanError(f"{path}: 'fault' must be an array of tables ([[fault]])")
    specs = []
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict):
            raise FaultPlanError(f"{path}: fault {i}: expected a table")
        spec = {k.replace("_", "-"): v for k, v in table.items()}
        specs.append((f"{path}: fault {i} ({_shown_kind(table.get('kind', '?'))})", spec))
    seed = data.get("seed")
    return specs, _int(seed, f"{path}: seed", 0) if seed is not None else None


def _shown_kind(kind: Any) -> str:
    return kind if isinstance(kind, str) and len(kind) <= 40 else _shown(kind)


CHAOS_KINDS = (
    FaultKind.RECONNECT,
    FaultKind.INVALID_SESSION,
    FaultKind.CLOSE,
    FaultKind.DROP,
    FaultKind.HEARTBEAT,
)
CHAOS_CLOSE_CODES = (
    CloseCode.UNKNOWN_ERROR,
    CloseCode.DECODE_ERROR,
    CloseCode.RATE_LIMITED,
    CloseCode.SESSION_TIMED_OUT,
)


def chaos_plan(seed: int, dispatches: int, count: int = 3) -> FaultPlan:
    """``count`` random reconnect-style faults at distinct dispatch positions; the same
    seed gives the same plan."""
    rng = random.Random(seed)
    positions = sorted(rng.sample(range(1, max(dispatches, count) + 1), count))
    faults = []
    for position in positions:
        kind = rng.choice(CHAOS_KINDS)
        extra: dict[str, Any] = {}
        if kind is FaultKind.CLOSE:
            extra["code"] = int(rng.choice(CHAOS_CLOSE_CODES))
        elif kind is FaultKind.INVALID_SESSION:
            extra["resumable"] = rng.random() < 0.5
        faults.append(Fault(kind, Trigger(dispatch=position), source=f"chaos seed {seed}", **extra))
    return FaultPlan(tuple(faults), seed=seed)


def combine(plans: Iterable[FaultPlan]) -> FaultPlan:
    faults: list[Fault] = []
    seed = None
    for plan in plans:
        faults.extend(plan.faults)
        seed = plan.seed if plan.seed is not None else seed
    return FaultPlan(tuple(faults), seed)


__all__ = ["Fault", "FaultKind", "FaultPlan", "FaultPlanError", "Phase", "Trigger", "chaos_plan",
           "combine", "parse_fault", "read_plan"]  # fmt: skip
