"""The conformance case catalogue: pure data, one :class:`Case` per numbered check.

A case is a replay of a bundled archive with a fault plan (in ``--fault`` syntax), the
verdict names it judges (``rules``: the Judge's names, ``Fault.describe()`` for a fault's
own verdict) and a time limit. Only rules the Judge (``replay/verdicts.py``,
``replay/starts.py``, ``replay/answers.py``) or the strict gateway
(docs/gateway-conduct.md) judge today are listed; cases grow as rules land.

Case selection (``--cases 3.*,5.2``, ``--exclude``) is :func:`select`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from replayer.errors import ReplayerError
from replayer.replay.faults import FaultPlan, parse_fault
from replayer.replay.verdicts import (
    DOCS_BACKOFF,
    DOCS_CACHED_URL,
    DOCS_CLOSE_CODES,
    DOCS_COMPRESSION,
    DOCS_DISCONNECT,
    DOCS_HEARTBEAT_INTERVAL,
    DOCS_HEARTBEAT_REQUEST,
    DOCS_HELLO,
    DOCS_INVALID_SESSION,
    DOCS_RATE_LIMIT,
    DOCS_RATE_LIMITED,
    DOCS_RECONNECT,
    DOCS_RESUME_QUERY,
    DOCS_RESUME_URL,
    DOCS_STALL,
    DOCS_WITHHOLD,
    DOCS_ZOMBIE,
)
from replayer.resources import sample_archive

# Standing rules, by the names their verdicts carry.
HEARTBEATS = "heartbeats on schedule"
PAYLOAD_RATE = "payload rate"
RESUME_URL = "RESUMEs on resume_gateway_url"
RESUME_QUERY = "RESUMEs keep the query"
IDENTIFY_URL = "new sessions on the gateway URL"
FALLBACK = "back to the gateway URL"
BACKOFF = "reconnect back-off"
SESSION_STARTS = "session starts"
IDENTIFY_CONCURRENCY = "identify concurrency"

DOCS_IDENTIFY = "Events > Gateway > Identifying (Session Start Limit, max_concurrency)"

SMALL = "small-bot.rpl"
SHARDED = "sharded-bot.rpl"

# What every case runs with unless it says otherwise: the recorded pace does not matter
# here (speed 0), a 1 s heartbeat makes the heartbeat rules quick, reactions are judged
# within 4 s, and identify concurrency is off (one IDENTIFY per 5 s is the limits
# group's own case, 9.2; elsewhere it would hold up every re-IDENTIFY).
BASE_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {
        "speed": 0.0,
        "heartbeat_interval_ms": 1_000,
        "verdict_window_ms": 4_000,
        "identify_concurrency": False,
    }
)


class CaseSelectionError(ReplayerError, ValueError):
    """A ``--cases`` / ``--exclude`` pattern that is not one; names the pattern."""


@dataclass(frozen=True)
class Case:
    """One conformance check."""

    id: str  # "<group>.<n>"
    group: int
    group_title: str
    title: str
    docs: str  # the docs section(s) checked
    archive: str  # a bundled archive's name
    plan: tuple[str, ...]  # faults in --fault syntax
    rules: tuple[str, ...]  # verdict names judged; empty: INFO (behaviour recorded only)
    expected: str  # what the docs require, in one line
    time_limit_s: float = 20.0
    min_run_s: float = 0.0  # watch at least this long (standing rules need a run to judge)
    options: Mapping[str, Any] = field(default_factory=dict)  # ReplayOptions overrides
    client: Mapping[str, str] = field(default_factory=dict)  # asked of the client (env)

    @property
    def number(self) -> tuple[int, int]:
        group, _, n = self.id.partition(".")
        return int(group), int(n)

    def fault_plan(self) -> FaultPlan:
        return FaultPlan(tuple(parse_fault(text) for text in self.plan))

    def replay_options(self) -> dict[str, Any]:
        """The ``ReplayOptions`` fields this case sets: the base, then its own."""
        return {**BASE_OPTIONS, **self.options}


def bundled_archive(name: str) -> Path:
    """The bundled archive a case serves (the one lookup: ``resources.sample_archive``)."""
    return sample_archive(name)


def fault_rules(plan: Iterable[str]) -> tuple[str, ...]:
    """The verdict names of a plan's faults: one per occurrence (``times=3``: three)."""
    faults = FaultPlan(tuple(parse_fault(text) for text in plan)).expanded()
    return tuple(f.describe() for f in faults)


# --- the catalogue -------------------------------------------------------------------------

_GROUPS = {
    1: "connect and identify",
    2: "heartbeat",
    3: "RECONNECT",
    4: "INVALID_SESSION",
    5: "close codes",
    6: "transport",
    7: "zombie and deaf socket",
    8: "resume rules",
    9: "limits",
    10: "encodings and compression",
    11: "sharding",
    12: "member requests",
}
GROUPS: Mapping[int, str] = MappingProxyType(_GROUPS)


def _case(
    case_id: str,
    title: str,
    docs: str,
    plan: tuple[str, ...],
    expected: str,
    *,
    also: tuple[str, ...] = (),
    archive: str = SMALL,
    judged: int | None = None,
    **extra: Any,
) -> Case:
    """``judged``: only the first so many faults of the plan are the case's rules (the
    rest set the scene, and a right client may never meet them)."""
    group = int(case_id.partition(".")[0])
    return Case(
        id=case_id,
        group=group,
        group_title=_GROUPS[group],
        title=title,
        docs=docs,
        archive=archive,
        plan=plan,
        rules=fault_rules(plan[:judged]) + also,
        expected=expected,
        **extra,
    )


_M = "event=MESSAGE_CREATE"  # the bundled archive's messages: 12 of them
_FATAL_CLOSES = {
    4004: "authentication failed",
    4010: "invalid shard",
    4011: "sharding required",
    4012: "invalid API version",
    4013: "invalid intent(s)",
    4014: "disallowed intent(s)",
}
_RESUMABLE_CLOSES = {
    4000: "unknown error",
    4001: "unknown opcode",
    4002: "decode error",
    4003: "not authenticated",
    4005: "already authenticated",
    4008: "rate limited",
}
_NEW_SESSION_CLOSES = {4007: "invalid seq", 4009: "session timed out"}
_RESUME = "a new connection that RESUMEs with the session_id and the last seq received"
_IDENTIFY = "a fresh IDENTIFY on a new connection (the session is gone)"
# A new session waits for its IDENTIFY slot (one per 5 s: Identifying), so its reaction
# is given 8 s.
_IDENTIFY_WINDOW: Mapping[str, Any] = MappingProxyType({"verdict_window_ms": 8_000})


def _close_cases() -> list[Case]:
    cases: list[Case] = []
    names = {**_RESUMABLE_CLOSES, **_NEW_SESSION_CLOSES, **_FATAL_CLOSES}
    for n, code in enumerate(sorted(names), start=1):
        if code in _FATAL_CLOSES:
            expected = "no reconnect: the close code's Reconnect column says false"
            extra: dict[str, Any] = {"options": {"verdict_window_ms": 3_000}}
        elif code in _NEW_SESSION_CLOSES:
            expected = "reconnect and IDENTIFY: this code ends the session"
            extra = {"options": _IDENTIFY_WINDOW}
        else:
            expected = _RESUME
            extra = {}
        cases.append(
            _case(
                f"5.{n}",
                f"close {code} ({names[code]}) mid-stream",
                DOCS_CLOSE_CODES,
                (f"close:{code}@{_M}#2",),
                expected,
                **extra,
            )
        )
    n = len(cases)
    cases += [
        _case(f"5.{n + 1}", "close 1000 (normal closure) from the server", DOCS_CLOSE_CODES,
              (f"close:1000@{_M}#2",), "a reconnect (RESUME or IDENTIFY) on a new connection",
              options=_IDENTIFY_WINDOW),
        _case(f"5.{n + 2}", "close 1001 (going away) from the server", DOCS_CLOSE_CODES,
              (f"close:1001@{_M}#2",), "a reconnect (RESUME or IDENTIFY) on a new connection",
              options=_IDENTIFY_WINDOW),
        _case(f"5.{n + 3}", "close frame without a status (1005)", DOCS_DISCONNECT,
              (f"close-no-status@{_M}#2",), _RESUME),
        _case(f"5.{n + 4}", "connection dropped, no close frame (1006)", DOCS_DISCONNECT,
              (f"drop@{_M}#2",), _RESUME),
    ]  # fmt: skip
    return cases


def _build() -> tuple[Case, ...]:
    hb_run: dict[str, Any] = {"min_run_s": 4.5}
    return (
        # 1: connect and identify
        _case("1.1", "connect, IDENTIFY, heartbeat on the gateway URL", DOCS_CACHED_URL, (),
              "an IDENTIFY on the gateway URL and heartbeats every interval",
              also=(IDENTIFY_URL, HEARTBEATS), **hb_run),
        _case("1.2", "HELLO never comes", DOCS_WITHHOLD, ("withhold@phase=hello",),
              "the client gives up on the connection and tries again",
              options={"verdict_window_ms": 8_000}),
        _case("1.3", "READY never comes", DOCS_WITHHOLD, ("withhold@phase=identify",),
              "the client gives up on the connection and tries again",
              options={"verdict_window_ms": 8_000}),
        _case("1.4", "op 9 false in answer to IDENTIFY", DOCS_INVALID_SESSION,
              ("invalid-session:false@phase=identify",), _IDENTIFY,
              options={"verdict_window_ms": 8_000}),
        # 2: heartbeat
        _case("2.1", "heartbeat schedule (server closes 4009 past 1.25 intervals + 1 s)",
              DOCS_HEARTBEAT_INTERVAL, (), "a HEARTBEAT at least every heartbeat_interval",
              also=(HEARTBEATS,), **hb_run),
        _case("2.2", "op 1 HEARTBEAT request", DOCS_HEARTBEAT_REQUEST,
              ("heartbeat@client-op=HEARTBEAT#1",), "a HEARTBEAT right away (within 2 s), not "
              "at the next interval", options={"heartbeat_interval_ms": 30_000}),
        # 3: RECONNECT
        _case("3.1", "op 7 RECONNECT right after READY", DOCS_RECONNECT,
              ("reconnect@event=READY",), _RESUME),
        _case("3.2", "op 7 RECONNECT mid-stream", DOCS_RECONNECT, (f"reconnect@{_M}#4",),
              _RESUME),
        _case("3.3", "op 7 RECONNECT instead of HELLO", DOCS_HELLO, ("reconnect@phase=hello",),
              "a new connection (RESUME or IDENTIFY)"),
        # 4: INVALID_SESSION
        _case("4.1", "op 9 true (resumable) mid-stream", DOCS_INVALID_SESSION,
              (f"invalid-session:true@{_M}#2",), "a RESUME of the session (same or new "
              "connection)"),
        _case("4.2", "op 9 false mid-stream (wait 1-5 s, IDENTIFY)", DOCS_INVALID_SESSION,
              (f"invalid-session:false@{_M}#2",),
              "a fresh IDENTIFY after a random 1-5 s wait (sooner: NON-STRICT)",
              options={"verdict_window_ms": 8_000}),
        _case("4.3", "RESUME answered with op 9 false", DOCS_INVALID_SESSION,
              (f"reconnect@{_M}#2", "reject-resume@conn=1"),
              "RESUME after op 7; after the op 9 false answering it, a fresh IDENTIFY",
              options={"verdict_window_ms": 8_000}),
        _case("4.4", "RESUME answered with op 9 true", DOCS_INVALID_SESSION,
              (f"reconnect@{_M}#2", "invalid-session:true@phase=resume"),
              "RESUME after op 7, and RESUME again after the op 9 true answering it"),
        # 5: close codes
        *_close_cases(),
        # 6: transport
        _case("6.1", "connection attempt refused (TCP closed), twice", DOCS_BACKOFF,
              ("refuse@phase=upgrade,times=2",), "another connection attempt each time"),
        _case("6.2", "connection attempt black-holed", DOCS_BACKOFF,
              ("blackhole@phase=upgrade",), "another attempt (waiting forever: NON-STRICT)",
              options={"verdict_window_ms": 8_000}),
        _case("6.3", "HTTP 503 on the upgrade", DOCS_BACKOFF, ("http:503@phase=upgrade",),
              "another connection attempt"),
        _case("6.4", "three refused attempts in a row", DOCS_BACKOFF,
              ("refuse@phase=upgrade,times=3",),
              "another attempt each time, with growing delays", also=(BACKOFF,)),
        _case("6.5", "corrupt payload (not JSON / ETF)", DOCS_DISCONNECT, (f"corrupt@{_M}#2",),
              _RESUME),
        _case("6.6", "server stalls 2 s (no frames, ACKs held back)", DOCS_STALL,
              (f"stall:2s@{_M}#2",), "the connection stays up (or: closed as a zombie, "
              "then RESUMEd)"),
        _case("6.7", "200 ms +- 50 ms latency on every frame", DOCS_STALL,
              (f"latency:200ms@{_M}#12,jitter=50ms",), "the connection stays up",
              # At the recorded pace: at speed 0 the whole stream would queue up behind
              # the latency, holding the ACKs back by seconds.
              options={"speed": 1.0}),
        # 7: zombie and deaf socket
        _case("7.1", "zombie: HEARTBEAT_ACKs stop", DOCS_ZOMBIE,
              ("zombie@client-op=HEARTBEAT#2",),
              "close with a non-1000/1001 code, then RESUME on a new connection"),
        _case("7.2", "deaf socket: dispatches stop, ACKs go on", DOCS_DISCONNECT,
              (f"deaf@{_M}#3",), "a RESUME once no dispatch comes (staying: NON-STRICT)",
              client={"deaf_timeout_s": "2"}),
        # 8: resume rules
        _case("8.1", "RESUME on READY's resume_gateway_url", DOCS_RESUME_URL,
              (f"reconnect@{_M}#2",), _RESUME + ", on resume_gateway_url",
              also=(RESUME_URL,)),
        _case("8.2", "RESUME with the session's query (v, encoding, compress)",
              DOCS_RESUME_QUERY, (f"drop@{_M}#3",), _RESUME + ", with the same query",
              also=(RESUME_QUERY,)),
        _case("8.3", "a new session on the cached gateway URL after a failed RESUME",
              DOCS_CACHED_URL, (f"reconnect@{_M}#2", "reject-resume@conn=1"),
              "after op 9 false, IDENTIFY on the gateway URL, not the resume URL",
              also=(IDENTIFY_URL,), options={"verdict_window_ms": 8_000}),
        _case("8.4", "resume URL refused: back to the gateway URL", DOCS_CACHED_URL,
              (f"reconnect@{_M}#2", "http:503@phase=resume-upgrade,times=6"),
              "after at most 3 refused resume URL attempts, the cached gateway URL",
              also=(FALLBACK,), judged=1, options={"verdict_window_ms": 10_000}),
        _case("8.5", "a chain of three resumes", DOCS_RECONNECT,
              (f"reconnect@{_M}#2,times=3,every=3",), _RESUME + ", each time",
              also=(RESUME_URL,)),
        # 9: limits
        _case("9.1", "at most 120 payloads per 60 s", DOCS_RATE_LIMIT, (),
              "at most 120 payloads in any 60 s on a connection", also=(PAYLOAD_RATE,),
              min_run_s=3.0),
        _case("9.2", "identify concurrency: one IDENTIFY per 5 s per bucket", DOCS_IDENTIFY,
              (f"invalid-session:false@{_M}#2",),
              "the next IDENTIFY 1-5 s after op 9 and not within 5 s of the last",
              also=(IDENTIFY_CONCURRENCY,),
              options={"identify_concurrency": True, "verdict_window_ms": 10_000}),
        _case("9.3", "session starts: RESUME, not IDENTIFY, where a RESUME will do",
              DOCS_IDENTIFY, (f"drop@{_M}#3",), _RESUME + " (no session start spent)",
              also=(SESSION_STARTS,)),
        # 10: encodings and compression
        _case("10.1", "json, no compression: RESUME keeps the query", DOCS_RESUME_QUERY,
              (f"reconnect@{_M}#2",), _RESUME, also=(RESUME_QUERY,),
              client={"encoding": "json", "compress": ""}),
        _case("10.2", "etf: RESUME keeps the query", DOCS_RESUME_QUERY,
              (f"reconnect@{_M}#2",), _RESUME, also=(RESUME_QUERY,),
              client={"encoding": "etf", "compress": ""}),
        _case("10.3", "zlib-stream: RESUME keeps the query", DOCS_COMPRESSION,
              (f"reconnect@{_M}#2",), _RESUME + " (a new zlib context)",
              also=(RESUME_QUERY,), client={"encoding": "json", "compress": "zlib-stream"}),
        _case("10.4", "zstd-stream: RESUME keeps the query", DOCS_COMPRESSION,
              (f"reconnect@{_M}#2",), _RESUME + " (a new zstd context)",
              also=(RESUME_QUERY,), client={"encoding": "json", "compress": "zstd-stream"}),
        _case("10.5", "a dispatch over several WebSocket frames", DOCS_DISCONNECT,
              (f"fragment@{_M}#2",), "the client reads it: its next HEARTBEAT has that s"),
        _case("10.6", "a zlib-stream message over several WebSocket messages",
              DOCS_COMPRESSION, (f"split@{_M}#2",),
              "the client reads it: its next HEARTBEAT has that s",
              client={"encoding": "json", "compress": "zlib-stream"}),
        _case("10.7", "a broken zlib-stream context", DOCS_COMPRESSION,
              (f"corrupt-stream@{_M}#2",), _RESUME + " (a new context)",
              client={"encoding": "json", "compress": "zlib-stream"}),
        # 11: sharding
        _case("11.1", "op 7 on a sharded recording (2 shards)", DOCS_RECONNECT,
              ("reconnect@event=READY#1",), _RESUME + " of that shard's session",
              archive=SHARDED),
        # 12: member requests
        _case("12.1", "RATE_LIMITED in answer to REQUEST_GUILD_MEMBERS", DOCS_RATE_LIMITED,
              ("rate-limited:3s@client-op=REQUEST_GUILD_MEMBERS#1",),
              "no REQUEST_GUILD_MEMBERS again before retry_after",
              client={"request_members": "1"}),
    )  # fmt: skip


CATALOGUE: tuple[Case, ...] = _build()


# --- selection -----------------------------------------------------------------------------

_PATTERN = re.compile(r"\d{1,3}(\.(\d{1,3}|\*))?|\*")


def _patterns(text: str, option: str) -> list[str]:
    parts = [p.strip() for p in text.split(",")]
    for part in parts:
        if not _PATTERN.fullmatch(part):
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise CaseSelectionError(
                f"{option}: {shown!r} is not a case pattern like 3, 3.*, 5.2 or * (comma-separated)"
            )
    return parts


def _matches(case: Case, pattern: str) -> bool:
    if pattern == "*":
        return True
    group, _, n = pattern.partition(".")
    if n in ("", "*"):
        return case.group == int(group)
    return case.number == (int(group), int(n))


def select(
    cases: Iterable[Case], include: str | None = None, exclude: str | None = None
) -> list[Case]:
    """The cases ``include`` names (all when None) minus those ``exclude`` names, in
    catalogue order. Patterns: ``3`` or ``3.*`` (a group), ``5.2`` (a case), ``*``;
    ``05.02`` is ``5.2``. A bad pattern raises :class:`CaseSelectionError`."""
    wanted = _patterns(include, "--cases") if include is not None else ["*"]
    unwanted = _patterns(exclude, "--exclude") if exclude is not None else []
    return [
        case
        for case in cases
        if any(_matches(case, p) for p in wanted) and not any(_matches(case, p) for p in unwanted)
    ]


__all__ = ["BASE_OPTIONS", "CATALOGUE", "GROUPS", "Case", "CaseSelectionError",
           "bundled_archive", "fault_rules", "select"]  # fmt: skip
