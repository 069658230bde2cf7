"""``replayer replay``: serve an archive as a fake gateway, break it on cue, judge the client."""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_type_hints

import typer

from replayer.cli.output import (
    ArchivePath,
    ForceOption,
    duration_ns,
    err,
    fail,
    file_size,
    on_stop_signals,
    open_text_output,
    out,
    output_file,
    print_verdicts,
    progress_bar,
    snippets,
)
from replayer.cli.root import app
from replayer.replay.faults import FaultPlan
from replayer.replay.verdicts import Verdict, all_ok, summary

if TYPE_CHECKING:
    from replayer.replay.engine import ReplayOptions
    from replayer.replay.script import ReplayScript
    from replayer.replay.voice.faults import VoicePlan
    from replayer.replay.voice_server import VoiceOptions


def _at_end(text: str) -> int | None:
    if text == "stay":
        return None
    m = re.fullmatch(r"close(?::(\d{4}))?", text)
    if not m:
        raise typer.BadParameter(
            "expected 'stay', 'close' or 'close:CODE' (e.g. close:4000)", param_hint="--at-end"
        )
    return int(m.group(1) or 1000)


def _ms_or_off(text: str, option: str) -> int | None:
    """A duration in milliseconds, or None for ``off``."""
    if text.strip().lower() == "off":
        return None
    return duration_ns(text, option) // 1_000_000


def _versions(text: str) -> frozenset[int] | None:
    if text.strip().lower() == "any":
        return None
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isascii() and p.isdigit() and len(p) <= 4 for p in parts):
        raise typer.BadParameter(
            f"{text!r}: expected versions like 9,10 or 'any'", param_hint="--gateway-versions"
        )
    return frozenset(int(p) for p in parts)


FAULT_HELP = """
Faults (--fault, repeatable): KIND[:ARG]@KEY=VALUE[,KEY=VALUE...]

\b
  reconnect@event=READY            op 7 right after READY
  invalid-session:false@dispatch=5 op 9 d=false after the 5th dispatch
                                   (true: resumable)
  close:4009@seq=12                close 4009 after the dispatch with s=12
  drop@event=MESSAGE_CREATE#3      TCP gone (no close frame) after the 3rd
                                   MESSAGE_CREATE
  zombie@client-op=HEARTBEAT#2     stop ACKing heartbeats from the client's
                                   2nd one
  heartbeat@t=5s                   ask for a heartbeat (op 1) 5 s in
  stall:3s@dispatch=2              send nothing for 3 s after dispatch 2
  rate-limited@client-op=8         a RATE_LIMITED dispatch after op 8
  reject-resume@conn=1             answer the next RESUME with op 9 d=false
  reconnect@dispatch=5,times=3,every=5
  reconnect@phase=hello            op 7 instead of HELLO
  withhold@phase=identify          READY never comes
  http:503@phase=upgrade,times=2   the next 2 connection attempts get 503
  close-no-status@dispatch=4       a close frame with no status code (1005)
  voice-close:4015@voice=READY     a voice fault (turns --voice on)
  voice-server-update:null@rtp=50  endpoint: null after 50 RTP packets

Triggers: dispatch=K, event=NAME[#K], seq=S, client-op=OP[#K], t=TIME, conn=N
(only on the N-th connection; alone: right after its handshake),
phase=hello|identify|resume|upgrade[#K]. Repeats: times=N, every=M.

A TOML plan (--plan) has [[fault]] tables with the same keys, voice kinds
included. --chaos draws main-gateway faults only. docs/faults.md has it all.
"""


@dataclass(frozen=True)
class Prepared:
    """A replay checked and built from the options, not started yet."""

    archive: Path
    script: ReplayScript
    fault_plan: FaultPlan
    options: ReplayOptions
    transcript: Path | None
    report: Path | None
    host: str
    port: int
    speed: float
    force: bool
    check: bool
    strict: bool
    exit_when_idle: bool
    grace_s: float
    first_s: float
    first_client_grace: str
    voice_plan: VoicePlan  # the voice faults (docs/voice.md)
    voice_options: VoiceOptions | None  # the voice face, when asked for or a voice fault


F = TypeVar("F", bound=Callable[..., None])


def replay_options(*first: inspect.Parameter) -> Callable[[F], F]:
    """Give a command the replay's options (the parameters of :func:`_prepare`), ``first``
    going after its ARCHIVE argument: ``replay`` and ``test`` share one definition."""
    signature = inspect.signature(_prepare)
    hints = get_type_hints(_prepare, include_extras=True)
    archive, *rest = (p.replace(annotation=hints[p.name]) for p in signature.parameters.values())
    params = [archive, *first, *rest]

    def decorate(command: F) -> F:
        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=params, return_annotation=None
        )
        command.__annotations__ = {**{p.name: p.annotation for p in first}, **hints, "return": None}
        return command

    return decorate


def _prepare(
    archive: ArchivePath,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    speed: Annotated[
        float,
        typer.Option(
            min=0.0, help="1 = recorded pace, 2 = twice as fast, 0 = as fast as the client reads."
        ),
    ] = 1.0,
    token: Annotated[
        str | None,
        typer.Option(help="Accept only this token in IDENTIFY/RESUME (others get 4004)."),
    ] = None,
    at_end: Annotated[
        str,
        typer.Option(
            help="After the last recorded dispatch: 'stay' (answer heartbeats) or 'close:CODE'."
        ),
    ] = "stay",
    exit_when_idle: Annotated[
        bool, typer.Option(help="Exit once every client has gone (after --idle-grace).")
    ] = False,
    idle_grace: Annotated[
        str, typer.Option(help="How long no client must be connected before exiting.")
    ] = "3s",
    first_client_grace: Annotated[
        str,
        typer.Option(
            help="With --exit-when-idle: exit 1 if no client has come by then (a bot that "
            "never connects must not hang CI)."
        ),
    ] = "60s",
    transcript: Annotated[
        Path | None,
        typer.Option(
            help="Record the replay itself (both directions) to this new archive "
            "(a directory: a new file in it)."
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", "-f", help="Inject a fault (syntax below); repeatable."),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(help="A TOML fault plan ([[fault]] tables: main-gateway and voice kinds)."),
    ] = None,
    chaos: Annotated[
        bool,
        typer.Option(
            help="Draw random main-gateway faults (the same for the same --seed; no voice ones)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for --chaos.")] = 0,
    chaos_faults: Annotated[int, typer.Option(min=1, help="How many faults --chaos draws.")] = 3,
    verdict_window: Annotated[
        str, typer.Option(help="How long to wait for the client's reaction to a fault.")
    ] = "15s",
    report: Annotated[
        Path | None,
        typer.Option(help="Write the verdicts as JSON to this new file (a directory: in it)."),
    ] = None,
    check: Annotated[bool, typer.Option(help="Exit 1 on a FAIL or NOT FIRED verdict.")] = False,
    strict: Annotated[
        bool, typer.Option(help="With --check, NON-STRICT fails the run too.")
    ] = False,
    allow_unfired: Annotated[
        bool,
        typer.Option(help="Start even if a fault's trigger can never come in this archive."),
    ] = False,
    heartbeat_interval: Annotated[
        str | None,
        typer.Option(help="HELLO's heartbeat_interval instead of the recorded one (e.g. 2s)."),
    ] = None,
    recorded_faults: Annotated[
        bool,
        typer.Option(help="Replay the recorded op 7, op 9, server closes and drops as faults."),
    ] = True,
    # Item 6 of #15: session starts and identify concurrency (docs/gateway-conduct.md).
    session_start_limit: Annotated[
        str | None,
        typer.Option(
            help="/gateway/bot's session_start_limit over the archive's (else 1000 a day, "
            "max_concurrency 1): KEY=N,... with total, remaining, reset_after (ms), "
            "max_concurrency."
        ),
    ] = None,
    identify_concurrency: Annotated[
        bool,
        typer.Option(
            help="Answer an IDENTIFY beyond max_concurrency per 5 s (one per bucket "
            "shard_id % max_concurrency) with op 9, as Discord does."
        ),
    ] = True,
    enforce_session_start_limit: Annotated[
        bool,
        typer.Option(help="Close an IDENTIFY with no session starts remaining with 4004."),
    ] = True,
    # Issue 15 items 5 (intents) and 7 (sharding): docs/gateway-conduct.md.
    check_intents: Annotated[
        bool,
        typer.Option(
            help="Close an IDENTIFY with unknown intent bits (4013) or privileged intents the "
            "application is not granted (4014)."
        ),
    ] = True,
    grant_intents: Annotated[
        str | None,
        typer.Option(
            help="Privileged intents the application is granted: all, none, or names "
            "(members,presences,message_content). Default: what the recording shows, else all."
        ),
    ] = None,
    filter_intents: Annotated[
        bool,
        typer.Option(
            help="Send only the dispatches of the client's intents; without MESSAGE_CONTENT, "
            "empty message content; without GUILD_PRESENCES, trim GUILD_CREATE's members."
        ),
    ] = True,
    check_shards: Annotated[
        bool, typer.Option(help="Close an IDENTIFY whose shard_id >= num_shards (4010).")
    ] = True,
    require_sharding: Annotated[
        bool,
        typer.Option(help="Close an IDENTIFY without shard (or with num_shards 1) with 4011."),
    ] = False,
    reroute_shards: Annotated[
        bool,
        typer.Option(
            help="A client with another num_shards than the recording gets the recorded guilds "
            "by (guild_id >> 22) % num_shards; off: the recorded shard of its shard_id."
        ),
    ] = True,
    # Issue #15 items 8 and 9 (docs/gateway-conduct.md).
    validate_payloads: Annotated[
        bool,
        typer.Option(
            help="Close with 4001 a client whose op 3, 4, 8, 31 or 43 payload, or IDENTIFY "
            "compress / large_threshold / presence, breaks its documented structure."
        ),
    ] = True,
    payload_compression: Annotated[
        bool,
        typer.Option(
            help="Honour IDENTIFY compress=true: each message a zlib stream of its own "
            "(JSON, without transport compression)."
        ),
    ] = True,
    answer_from_state: Annotated[
        bool,
        typer.Option(
            help="Answer member, soundboard and channel-info requests from everything the "
            "archive knows; --no-answer-from-state: the recorded answers, k-th for k-th."
        ),
    ] = True,
    member_rate_limit: Annotated[
        str,
        typer.Option(
            help="One all-members REQUEST_GUILD_MEMBERS per guild per this long, else "
            "RATE_LIMITED (Discord: 30s); 0s: no limit."
        ),
    ] = "30s",
    force: ForceOption = False,
    # Discord's own rules, on by default (docs/gateway-conduct.md): issue #15.
    heartbeat_timeout: Annotated[
        bool,
        typer.Option(help="Close 4009 when no HEARTBEAT comes within 1.25 intervals + 1 s."),
    ] = True,
    identify_timeout: Annotated[
        str, typer.Option(help="Close 4009 when no IDENTIFY/RESUME follows HELLO (or 'off').")
    ] = "30s",
    reconnect_close: Annotated[
        str,
        typer.Option(help="After op 7, close 4000 if the client is still there (or 'off')."),
    ] = "5s",
    rate_limit: Annotated[
        bool, typer.Option(help="Close 4008 on the 121st payload in 60 s on a connection.")
    ] = True,
    session_ttl: Annotated[
        str,
        typer.Option(help="A session with no connection expires after this (or 'off')."),
    ] = "3m",
    resume_buffer: Annotated[
        int, typer.Option(min=1, help="Dispatches a session keeps for RESUME to replay.")
    ] = 4096,
    gateway_versions: Annotated[
        str, typer.Option(help="Gateway versions served; others get 4012 (or 'any').")
    ] = "9,10",
    voice: Annotated[
        bool,
        typer.Option(
            help="Serve a voice face (TLS voice gateway + UDP, docs/voice.md): op 4 is answered "
            "with VOICE_SERVER_UPDATE pointing at it. On by itself with a voice fault."
        ),
    ] = False,
    ca_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the voice face's local CA lives (created on first use). "
            "Default: $REPLAYER_HOME/ca, else ~/.replayer/ca."
        ),
    ] = None,
) -> Prepared:
    """Check every option and build the replay (before anything starts: a bad option is
    one line, exit 1, and nothing is overwritten without --force)."""
    from replayer.replay.engine import ReplayOptions
    from replayer.replay.faults import chaos_plan
    from replayer.replay.intents import parse_grant
    from replayer.replay.reachability import check_reachable
    from replayer.replay.script import load_script
    from replayer.replay.starts import StartLimitError, limit_for

    # Refused before anything starts: nothing is overwritten without --force.
    if transcript is not None:
        transcript = output_file(transcript, force=force, option="--transcript")
    if report is not None:
        report = output_file(report, force=force, option="--report", suffix=".json")
    close_code = _at_end(at_end)
    granted = None if grant_intents is None else parse_grant(grant_intents)
    grace_s = duration_ns(idle_grace, "--idle-grace") / 1e9
    first_s = duration_ns(first_client_grace, "--first-client-grace") / 1e9
    window_ms = duration_ns(verdict_window, "--verdict-window") // 1_000_000
    # The plan is checked before anything starts: a bad fault is one line, exit 1.
    from replayer.replay.plans import RunPlan, combine, load_plan, parse_faults
    from replayer.replay.voice_server import VoiceOptions

    plans = [parse_faults(fault or [])]
    if plan is not None:
        plans.append(load_plan(plan))
    with progress_bar(f"indexing {archive}", file_size(archive)) as progress:
        script = load_script(archive, progress)
    if chaos:  # main-gateway faults only (the help says so)
        dispatches = min(len(s) for s in script.shards.values())
        plans.append(RunPlan(chaos_plan(seed, dispatches, chaos_faults)))
    run_plan = combine(plans)
    fault_plan, voice_plan = run_plan.gateway, run_plan.voice
    if not allow_unfired:
        check_reachable(fault_plan, script)
    interval_ms: int | None = None
    if heartbeat_interval is not None:
        interval_ms = duration_ns(heartbeat_interval, "--heartbeat-interval") // 1_000_000
        if interval_ms < 1:
            raise typer.BadParameter("must be at least 1ms", param_hint="--heartbeat-interval")
    limit = None
    if session_start_limit is not None:
        try:
            limit = limit_for(script.http, None).with_overrides(session_start_limit)
        except StartLimitError as exc:
            raise typer.BadParameter(str(exc), param_hint="--session-start-limit") from None
    options = ReplayOptions(
        speed=speed,
        token=token,
        close_at_end=close_code,
        verdict_window_ms=window_ms,
        heartbeat_interval_ms=interval_ms,
        recorded_faults=recorded_faults,
        heartbeat_timeout=heartbeat_timeout,
        identify_timeout_ms=_ms_or_off(identify_timeout, "--identify-timeout"),
        reconnect_close_ms=_ms_or_off(reconnect_close, "--reconnect-close"),
        rate_limit=rate_limit,
        session_ttl_ms=_ms_or_off(session_ttl, "--session-ttl"),
        resume_buffer=resume_buffer,
        gateway_versions=_versions(gateway_versions),
        session_start_limit=limit,
        identify_concurrency=identify_concurrency,
        enforce_session_start_limit=enforce_session_start_limit,
        check_intents=check_intents,
        grant_intents=granted,
        filter_intents=filter_intents,
        check_shards=check_shards,
        require_sharding=require_sharding,
        reroute_shards=reroute_shards,
        validate_payloads=validate_payloads,
        payload_compression=payload_compression,
        answer_from_state=answer_from_state,
        member_rate_limit_s=duration_ns(member_rate_limit, "--member-rate-limit") / 1e9,
    )
    voice_options = None
    if voice or voice_plan.faults:
        voice_options = VoiceOptions(ca_dir=ca_dir, plan=voice_plan)
    return Prepared(
        archive,
        script,
        fault_plan,
        options,
        transcript,
        report,
        host,
        port,
        speed,
        force,
        check,
        strict,
        exit_when_idle,
        grace_s,
        first_s,
        first_client_grace,
        voice_plan,
        voice_options,
    )


@app.command(epilog=FAULT_HELP)
@replay_options()
def replay(**params: Any) -> None:
    """Serve an archive as a local fake gateway (WebSocket + REST) that real clients connect to,
    optionally breaking it on cue and judging how the client reacts. --transcript and
    --report never replace an existing file without --force."""
    import asyncio

    from replayer.replay.server import ReplayServer

    prep = _prepare(**params)
    verdicts: list[Verdict] = []
    answered_404: list[str] = []
    nobody_came = False

    async def serve() -> None:
        nonlocal nobody_came
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            if stop.is_set():  # the second Ctrl-C: at once
                err.print("interrupted again: exiting now")
                os._exit(130)
            stop.set()

        on_stop_signals(loop, interrupted)
        async with ReplayServer(
            prep.script, prep.options, host=prep.host, port=prep.port,
            transcript=prep.transcript, plan=prep.fault_plan, overwrite_transcript=prep.force,
            voice=prep.voice_options,
        ) as server:  # fmt: skip
            shards = ", ".join(
                f"{i} ({len(s)} dispatches)" for i, s in sorted(prep.script.shards.items())
            )
            err.print(f"replaying {prep.archive}: shards {shards}, speed {prep.speed:g}")
            for f in prep.fault_plan.faults:
                repeat = f" x{f.times}" if f.times > 1 else ""
                err.print(f"fault: {f.describe()}{repeat}", markup=False)
            for vf in prep.voice_plan.faults:
                repeat = f" x{vf.times}" if vf.times > 1 else ""
                err.print(f"fault: {vf.describe()}{repeat}", markup=False)
            out.print(f"REST base:   {server.rest_base}", markup=False)
            # The control API: POST faults, GET status (docs/faults.md), loopback only.
            out.print(f"control URL: {server.control_url}", markup=False)
            out.print(f"gateway URL: {server.gateway_url}", markup=False)
            if server.voice is not None and server.voice.tls is not None:
                first, *others = server.voice.ports
                more = "".join(f" (new-endpoint faults: :{p})" for p in others)
                face = f"wss://{prep.host}:{first}{more}, UDP {server.voice.udp_port}"
                out.print(f"voice face:  {face}", markup=False)
                out.print(f"voice CA:    {server.voice.tls.ca_cert}", markup=False)
                out.print(
                    "  trust it: " + "  /  ".join(server.voice.tls.hints()) + "  (docs/voice.md)",
                    markup=False,
                )
            out.print(snippets(server.rest_base, server.gateway_url), markup=False)
            sys.stdout.flush()
            stopped = asyncio.ensure_future(stop.wait())
            idle = asyncio.ensure_future(
                server.wait_idle(prep.grace_s, prep.first_s)
                if prep.exit_when_idle
                else asyncio.Future()
            )
            await asyncio.wait([stopped, idle], return_when=asyncio.FIRST_COMPLETED)
            for task in (stopped, idle):
                task.cancel()
            if stop.is_set():
                err.print("stopped: closing the clients (1001)")
            elif server.connections_total:
                err.print("every client has gone: exiting")
            else:
                nobody_came = True
            await server.stop()  # clients get 1001 before the verdicts are taken
            verdicts.extend(server.verdicts())
            answered_404.extend(server.answered_404())

    try:
        asyncio.run(serve())
    except OSError as exc:
        fail(f"cannot serve on {prep.host}:{prep.port}: {exc.strerror or exc}")
    if nobody_came:
        fail(f"no client connected within {prep.first_client_grace} (--first-client-grace)")
    conclude(prep, verdicts, answered_404)


def conclude(prep: Prepared, verdicts: list[Verdict], answered_404: list[str]) -> None:
    """After a replay: the routes answered 404, the verdict table, ``--report``; under
    ``--check`` exit 1 when the verdicts fail the run."""
    if answered_404:  # why a bot may have stalled: routes neither recorded nor defaulted
        err.print(f"answered 404: {', '.join(answered_404)}", markup=False)
    if prep.fault_plan.faults or verdicts:
        print_verdicts(verdicts)
    if prep.report is not None:
        document = {
            "archive": str(prep.archive),
            "faults": [f.describe() for f in prep.fault_plan.expanded()]
            + [f.describe() for f in prep.voice_plan.expanded()],
            "seed": prep.fault_plan.seed,
            "passed": all_ok(verdicts, prep.strict),
            "strict": prep.strict,
            "summary": summary(verdicts),
            "verdicts": [v.to_json() for v in verdicts],
        }
        with open_text_output(prep.report, force=prep.force) as sink:
            sink.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if prep.check and not all_ok(verdicts, prep.strict):
        raise typer.Exit(1)
