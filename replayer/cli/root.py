"""The ``replayer`` command line (typer). Errors a user can cause print one line and
exit 1; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from replayer import __version__
from replayer.archive.inspection import ArchiveStats, FrameFilter
from replayer.archive.jsonl import Importer, LineError, export_lines, header_from_json
from replayer.archive.reader import ArchiveReader
from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    HttpRecord,
    Record,
)
from replayer.archive.verify import ArchiveChecker
from replayer.archive.writer import ArchiveWriter
from replayer.errors import ArchiveError, ImportFormatError, ReplayerError, TruncatedArchiveError
from replayer.gateway.close_codes import close_code_name
from replayer.gateway.opcodes import Direction, opcode_name, parse_opcode
from replayer.replay.faults import FaultPlan
from replayer.replay.verdicts import Verdict

app = typer.Typer(
    name="replayer",
    help="Record, replay and break Discord gateway sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
# Piped output is not squeezed into 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(
    stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200
)

ArchivePath = Annotated[Path, typer.Argument(help="Archive file (.rpl).", show_default=False)]


def fail(message: str) -> NoReturn:
    """Print one error line and exit 1."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def _duration_ns(text: str, option: str) -> int:
    """``1.5``, ``1.5s``, ``250ms``, ``2m`` -> nanoseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*", text)
    if not m:
        raise typer.BadParameter(
            f"{text!r} is not a time offset like 1.5s, 250ms or 2m", param_hint=option
        )
    scale = {"ms": 1e6, "s": 1e9, "m": 60e9, None: 1e9}[m.group(2)]
    return round(float(m.group(1)) * scale)


def _fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _fmt_offset(t_ns: int) -> str:
    return f"{t_ns / 1e9:12.6f}s"


PROGRESS_FROM_BYTES = 64 << 20  # archives smaller than this load without a progress bar


@contextlib.contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr (only for big jobs on a terminal)."""
    if total < PROGRESS_FROM_BYTES or not err.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{escape(what)}", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=err, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _records(reader: ArchiveReader) -> Iterator[Record]:
    """The records, turning a truncated tail into a warning after the last complete one."""
    try:
        yield from reader
    except TruncatedArchiveError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _frame_line(frame: FrameRecord) -> str:
    arrow = "C→S" if frame.direction == Direction.CLIENT else "S→C"
    seq = f"s={frame.s}" if frame.s is not None else ""
    marks = []
    if frame.flags & FrameFlag.UNDECODED:
        marks.append(f"UNDECODED ({frame.error})" if frame.error else "UNDECODED")
    if frame.flags & FrameFlag.INJECTED:
        marks.append("injected")
    if frame.flags & FrameFlag.REDACTED:
        marks.append("redacted")
    if frame.flags & FrameFlag.REWRITTEN:
        marks.append("rewritten for the client")
    return (
        f"{_fmt_offset(frame.t_ns)}  c{frame.conn_id:<3} {arrow}  {opcode_name(frame.op):<22} "
        f"{frame.t or '':<28} {seq:<8} {_fmt_bytes(len(frame.payload)):>9}"
        + (f"  [{', '.join(marks)}]" if marks else "")
    )


def _other_line(record: Record) -> str | None:
    match record:
        case ConnectionRecord():
            q = record.query
            extra = f" resumes c{record.resumes}" if record.resumes is not None else ""
            return (
                f"{_fmt_offset(record.t_ns)}  c{record.conn_id:<3} open {record.url} "
                f"(v={q.v} encoding={q.encoding} compress={q.compress or 'none'}){extra}"
            )
        case ConnectionInfoRecord():
            parts = []
            if record.shard:
                parts.append(f"shard {list(record.shard)}")
            if record.resumes is not None:
                parts.append(f"resumes c{record.resumes}")
            if record.session_id:
                parts.append(f"session {record.session_id}")
            return f"{_fmt_offset(record.t_ns)}  c{record.conn_id:<3} info {', '.join(parts)}"
        case CloseRecord():
            by = record.closed_by.name.lower() if record.closed_by is not None else "unknown"
            how = "clean" if record.clean else "abrupt"
            if record.code is None:
                return f"{_fmt_offset(record.t_ns)}  c{record.conn_id:<3} dropped (no close frame)"
            return (
                f"{_fmt_offset(record.t_ns)}  c{record.conn_id:<3} close {record.code} "
                f"{close_code_name(record.code)} by {by}, {how}"
                + (f" {record.reason!r}" if record.reason else "")
            )
        case HttpRecord():
            return (
                f"{_fmt_offset(record.t_ns)}  http {record.method} {record.host}{record.path} "
                f"-> {record.status} ({_fmt_bytes(len(record.response_body))})"
            )
    return None


@app.command()
def inspect(
    archive: ArchivePath,
    op: Annotated[
        list[str] | None,
        typer.Option("--op", help="Only this opcode (number or name); repeatable."),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help="Only this dispatch event (e.g. READY); repeatable."),
    ] = None,
    conn: Annotated[
        list[int] | None, typer.Option("--conn", "-c", help="Only this connection id; repeatable.")
    ] = None,
    direction: Annotated[
        str | None, typer.Option("--dir", help="Only frames sent by 'client' or 'server'.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this offset (1.5s, 250ms, 2m).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this offset (inclusive).")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=0, help="Show at most N lines.")
    ] = None,
    stats: Annotated[
        bool, typer.Option("--stats", help="Counts per opcode and event, bytes, connections.")
    ] = False,
) -> None:
    """Show an archive's timeline (offset, connection, direction, opcode, event, seq, size)."""
    try:
        ops = frozenset(parse_opcode(o) for o in op or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--op") from None
    dir_value: Direction | None = None
    if direction is not None:
        if direction.lower() not in ("client", "server"):
            raise typer.BadParameter("expected 'client' or 'server'", param_hint="--dir")
        dir_value = Direction[direction.upper()]
    flt = FrameFilter(
        ops=ops,
        events=frozenset(e.upper() for e in event or []),
        conns=frozenset(conn or []),
        direction=dir_value,
        since_ns=_duration_ns(since, "--since") if since else None,
        until_ns=_duration_ns(until, "--until") if until else None,
    )
    frames_only = bool(ops or flt.events or dir_value is not None)
    with ArchiveReader(archive) as reader:
        if stats:
            summary = ArchiveStats()
            for record in _records(reader):
                summary.add(record)
            _print_stats(archive, reader, summary)
            return
        shown = 0
        for record in _records(reader):
            if limit is not None and shown >= limit:
                break
            if isinstance(record, FrameRecord):
                if not flt.matches(record):
                    continue
                line = _frame_line(record)
            else:
                if frames_only:
                    continue
                if flt.conns and getattr(record, "conn_id", None) not in flt.conns:
                    continue
                t_ns = record.t_ns
                if (flt.since_ns is not None and t_ns < flt.since_ns) or (
                    flt.until_ns is not None and t_ns > flt.until_ns
                ):
                    continue
                other = _other_line(record)
                if other is None:
                    continue
                line = other
            out.print(line, markup=False)
            shown += 1


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the reader gives the one-line error


def _print_stats(path: Path, reader: ArchiveReader, s: ArchiveStats) -> None:
    h = reader.header
    created = datetime.fromtimestamp(h.created_unix_ns / 1e9, tz=UTC).isoformat(timespec="seconds")
    name = escape(str(path))
    out.print(f"[bold]{name}[/]: format v{h.format_version}, written by {h.tool} at {created}")
    if h.metadata:
        out.print(f"metadata: {json.dumps(h.metadata, ensure_ascii=False)}", markup=False)
    out.print(
        f"duration {s.last_t_ns / 1e9:.3f}s, {reader.records_read} records: {s.frames} frames "
        f"({_fmt_bytes(s.payload_bytes)} payload, {_fmt_bytes(s.wire_bytes)} on the wire), "
        f"{len(s.connections)} connections, {s.http} HTTP exchanges"
    )
    ops = Table("direction / opcode", "frames", title="by opcode", title_justify="left")
    for name, count in sorted(s.by_op.items(), key=lambda kv: (-kv[1], kv[0])):
        ops.add_row(name, str(count))
    out.print(ops)
    if s.by_event:
        events = Table("event", "dispatches", title="by event", title_justify="left")
        for name, count in sorted(s.by_event.items(), key=lambda kv: (-kv[1], kv[0])):
            events.add_row(name, str(count))
        out.print(events)
    conns = Table(
        "conn",
        "url",
        "v",
        "encoding",
        "compress",
        "shard",
        "resumes",
        "in",
        "out",
        "close",
        title="connections",
        title_justify="left",
    )
    for cid, c in s.connections.items():
        q = c.record.query
        if c.close is None:
            close = "open at end"
        elif c.close.code is None:
            close = "dropped (no close frame)"
        else:
            by = c.close.closed_by.name.lower() if c.close.closed_by is not None else "?"
            close = f"{c.close.code} {close_code_name(c.close.code)} by {by}" + (
                "" if c.close.clean else " (abrupt)"
            )
        conns.add_row(
            f"c{cid}",
            c.record.url,
            str(q.v),
            q.encoding,
            q.compress or "none",
            str(list(c.shard)) if c.shard else "-",
            f"c{c.resumes}" if c.resumes is not None else "-",
            str(c.frames_in),
            str(c.frames_out),
            close,
        )
    out.print(conns)


@app.command()
def export(
    archive: ArchivePath,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Write an archive as JSON Lines, payloads decoded inline (lossless)."""
    with ArchiveReader(archive) as reader:
        sink = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            with _progress(f"exporting {archive}", reader.size if output else 0) as progress:
                for n, line in enumerate(export_lines(reader.header, _records(reader))):
                    sink.write(line)
                    sink.write("\n")
                    if not n % 4096:
                        progress(reader.end_offset, reader.size)
        finally:
            if output:
                sink.close()


@app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="JSON Lines file (from export, or hand-written).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Archive to write.")],
    redact: Annotated[bool, typer.Option(help="Scrub tokens before writing.")] = True,
) -> None:
    """Build an archive from JSON Lines, so fixtures can be written by hand."""
    name = str(source)
    try:
        lines = open(source, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        fail(f"{name}: cannot open: {exc.strerror}")
    partial = output.with_name(output.name + ".partial")
    count = 0
    with lines:
        importer = Importer()
        writer: ArchiveWriter | None = None
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if writer is None:
                        if isinstance(obj, dict) and obj.get("kind") == "header":
                            writer = ArchiveWriter(
                                partial, header=header_from_json(obj), redact=redact
                            )
                            continue
                        writer = ArchiveWriter(partial, redact=redact)
                    writer.write(importer.record(obj))
                    count += 1
                except json.JSONDecodeError as exc:
                    raise ImportFormatError(
                        f"not JSON: {exc.msg} at column {exc.colno}", path=name, line=number
                    ) from None
                except UnicodeDecodeError:
                    raise ImportFormatError("not UTF-8 text", path=name, line=number) from None
                except LineError as exc:
                    raise ImportFormatError(str(exc), path=name, line=number) from None
            if writer is None:
                writer = ArchiveWriter(partial, redact=redact)
            writer.close()
            os.replace(partial, output)
        except BaseException:
            if writer is not None:
                writer.close()
            partial.unlink(missing_ok=True)
            raise
    err.print(f"wrote {output}: {count} records")


@app.command("import-mitm")
def import_mitm(
    flows: Annotated[Path, typer.Argument(help="mitmproxy flow file (mitmdump -w).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Archive to write.")],
    redact: Annotated[bool, typer.Option(help="Scrub tokens before writing.")] = True,
) -> None:
    """Convert a mitmproxy flow file holding gateway WebSocket flows into an archive."""
    from replayer.record.import_mitm import import_flows

    partial = output.with_name(output.name + ".partial")
    try:
        summary = import_flows(flows, partial, redact=redact)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, output)
    err.print(
        f"wrote {output}: {summary.connections} gateway connections, {summary.messages} messages, "
        f"{summary.http} HTTP exchanges from {summary.flows} flows"
    )


@app.command()
def verify(archive: ArchivePath) -> None:
    """Check an archive's integrity; exit 1 naming the record of the first problem."""
    checker = ArchiveChecker()
    with ArchiveReader(archive) as reader:
        index = 0
        for index, record in enumerate(reader, start=1):
            try:
                checker.check(record)
            except ArchiveError as exc:
                raise exc.located(path=str(archive), index=index) from None
        out.print(
            f"ok: {archive}: format v{reader.header.format_version}, {index} records "
            f"({checker.connections} connections, {checker.frames} frames, "
            f"{checker.closes} closes, {checker.http} HTTP exchanges)"
        )


def _at_end(text: str) -> int | None:
    if text == "stay":
        return None
    m = re.fullmatch(r"close(?::(\d{4}))?", text)
    if not m:
        raise typer.BadParameter(
            "expected 'stay', 'close' or 'close:CODE' (e.g. close:4000)", param_hint="--at-end"
        )
    return int(m.group(1) or 1000)


def _snippets(rest_base: str, gateway_url: str) -> str:
    return (
        "discord.py:\n"
        "    import discord, yarl\n"
        f'    discord.http.Route.BASE = "{rest_base}"\n'
        f'    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL("{gateway_url}")\n'
        "hikari:\n"
        f'    bot = hikari.GatewayBot(token, rest_url="{rest_base}", banner=None)\n'
        "    bot.run(check_for_updates=False)"
    )


FAULT_HELP = """
Faults (--fault, repeatable): KIND[:ARG]@KEY=VALUE[,KEY=VALUE...]

\b
  reconnect@event=READY                op 7 right after READY
  invalid-session:false@dispatch=5     op 9 d=false after the 5th dispatch (true: resumable)
  close:4009@seq=12                    close 4009 after the dispatch with s=12
  drop@event=GUILD_CREATE#3            TCP gone (no close frame) after the 3rd GUILD_CREATE
  zombie@client-op=HEARTBEAT#2         stop ACKing heartbeats from the client's 2nd one
  heartbeat@t=5s                       ask for a heartbeat (op 1) 5 s into the replay
  stall:3s@dispatch=2                  send nothing for 3 s after the 2nd dispatch
  rate-limited@client-op=8             a RATE_LIMITED dispatch after the client's op 8
  reject-resume@conn=1                 answer the next RESUME with op 9 d=false
  reconnect@dispatch=10,times=3,every=10
\b
Triggers: dispatch=K, event=NAME[#K], seq=S, client-op=OP[#K], t=TIME, conn=N (only on the
N-th connection; alone: right after its handshake). Repeats: times=N, every=M.
A TOML plan (--plan) has [[fault]] tables with the same keys. docs/faults.md has it all.
"""


def _print_verdicts(verdicts: list[Verdict], console: Console = err) -> None:
    if not verdicts:
        console.print("no verdicts: no fault was injected and no client stayed long enough")
        return
    table = Table(
        "",
        "verdict",
        "expected",
        "observed",
        "fault at",
        "reaction",
        title="verdicts",
        title_justify="left",
    )
    for v in verdicts:
        mark = "[green]PASS[/]" if v.passed else "[red]FAIL[/]"
        at = f"{v.t_fault_ms / 1000:.3f}s" if v.t_fault_ms is not None else "-"
        reaction = f"{v.reaction_ms:.0f} ms" if v.reaction_ms is not None else "-"
        observed = v.observed + "".join(f"; {n}" for n in v.notes)
        table.add_row(mark, escape(v.name), escape(v.expected), escape(observed), at, reaction)
    console.print(table)
    failed = sum(1 for v in verdicts if not v.passed)
    console.print(f"{len(verdicts) - failed} passed, {failed} failed")


@app.command(epilog=FAULT_HELP)
def replay(
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
    transcript: Annotated[
        Path | None,
        typer.Option(help="Record the replay itself (both directions) to this archive."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", "-f", help="Inject a fault (syntax below); repeatable."),
    ] = None,
    plan: Annotated[Path | None, typer.Option(help="A TOML fault plan.")] = None,
    chaos: Annotated[
        bool, typer.Option(help="Draw random faults (the same for the same --seed).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for --chaos.")] = 0,
    chaos_faults: Annotated[int, typer.Option(min=1, help="How many faults --chaos draws.")] = 3,
    verdict_window: Annotated[
        str, typer.Option(help="How long to wait for the client's reaction to a fault.")
    ] = "15s",
    report: Annotated[Path | None, typer.Option(help="Write the verdicts as JSON here.")] = None,
    check: Annotated[bool, typer.Option(help="Exit 1 when any verdict fails.")] = False,
) -> None:
    """Serve an archive as a local fake gateway (WebSocket + REST) that real clients connect to,
    optionally breaking it on cue and judging how the client reacts."""
    import asyncio
    import signal

    from replayer.replay.engine import ReplayOptions
    from replayer.replay.faults import chaos_plan, combine, load_plan, parse_fault
    from replayer.replay.script import load_script
    from replayer.replay.server import ReplayServer

    close_code = _at_end(at_end)
    grace_s = _duration_ns(idle_grace, "--idle-grace") / 1e9
    window_ms = _duration_ns(verdict_window, "--verdict-window") // 1_000_000
    # The plan is checked before anything starts: a bad fault is one line, exit 1.
    plans = [FaultPlan(tuple(parse_fault(f) for f in fault or []))]
    if plan is not None:
        plans.append(load_plan(plan))
    with _progress(f"indexing {archive}", _file_size(archive)) as progress:
        script = load_script(archive, progress)
    if chaos:
        dispatches = min(len(s) for s in script.shards.values())
        plans.append(chaos_plan(seed, dispatches, chaos_faults))
    fault_plan = combine(plans)
    options = ReplayOptions(
        speed=speed, token=token, close_at_end=close_code, verdict_window_ms=window_ms
    )
    verdicts: list[Verdict] = []

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with ReplayServer(
            script, options, host=host, port=port, transcript=transcript, plan=fault_plan
        ) as server:
            shards = ", ".join(
                f"{i} ({len(s)} dispatches)" for i, s in sorted(script.shards.items())
            )
            err.print(f"replaying {archive}: shards {shards}, speed {speed:g}")
            for f in fault_plan.faults:
                repeat = f" x{f.times}" if f.times > 1 else ""
                err.print(f"fault: {f.describe()}{repeat}", markup=False)
            out.print(f"REST base:   {server.rest_base}", markup=False)
            out.print(f"gateway URL: {server.gateway_url}", markup=False)
            out.print(_snippets(server.rest_base, server.gateway_url), markup=False)
            sys.stdout.flush()
            waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
            if exit_when_idle:
                waiters.append(asyncio.ensure_future(server.wait_idle(grace_s)))
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            err.print("stopped" if stop.is_set() else "every client has gone: exiting")
            verdicts.extend(server.verdicts())

    try:
        asyncio.run(serve())
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")
    if fault_plan.faults or verdicts:
        _print_verdicts(verdicts)
    if report is not None:
        document = {
            "archive": str(archive),
            "faults": [f.describe() for f in fault_plan.expanded()],
            "seed": fault_plan.seed,
            "passed": all(v.passed for v in verdicts),
            "verdicts": [v.to_json() for v in verdicts],
        }
        report.write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if check and not all(v.passed for v in verdicts):
        raise typer.Exit(1)


@app.command()
def record(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Archive to write (or a directory).")
    ],
    mode: Annotated[
        str,
        typer.Option(
            help="'reverse': one port facing the client; 'regular': an explicit HTTP proxy."
        ),
    ] = "reverse",
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    upstream: Annotated[
        str, typer.Option(help="REST upstream in reverse mode, e.g. http://127.0.0.1:9000.")
    ] = "https://discord.com",
    gateway_upstream: Annotated[
        str | None,
        typer.Option(
            help="Gateway upstream (ws:// or wss://); default: the url of the upstream's /gateway."
        ),
    ] = None,
    confdir: Annotated[
        Path | None,
        typer.Option(help="mitmproxy's configuration and CA directory (default ~/.mitmproxy)."),
    ] = None,
    redact: Annotated[
        bool, typer.Option(help="Scrub tokens before writing (strongly advised).")
    ] = True,
    rest: Annotated[bool, typer.Option(help="Record Discord REST calls (/api/...).")] = True,
) -> None:
    """Record a bot's gateway session through mitmproxy (in-process); Ctrl-C closes the archive."""
    import asyncio
    import signal

    from rich.live import Live

    from replayer.malloc import tune_malloc_for_large_messages
    from replayer.record.proxy import RecordingProxy, RecordSettings, ca_cert_path

    if mode not in ("reverse", "regular"):
        raise typer.BadParameter("expected 'reverse' or 'regular'", param_hint="--mode")
    settings = RecordSettings(
        output=output, mode=mode, host=host, port=port, upstream=upstream,
        gateway_upstream=gateway_upstream, confdir=confdir, redact=redact, rest=rest,
    )  # fmt: skip

    def table(proxy: RecordingProxy) -> Table:
        t = Table(
            "conn",
            "url",
            "server→client",
            "client→server",
            "state",
            title="gateway connections",
            title_justify="left",
        )
        recorder = proxy.recorder
        for stats in recorder.stats.values() if recorder else []:
            t.add_row(
                f"c{stats.conn_id}",
                stats.url,
                str(stats.frames_in),
                str(stats.frames_out),
                stats.closed or "open",
            )
        return t

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tune_malloc_for_large_messages()
        proxy = RecordingProxy(settings)
        try:
            await proxy.start()
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        except Exception as exc:  # mitmproxy's own errors (bad options, ...)
            await proxy.stop()
            fail(f"mitmproxy could not start: {exc}")
        recorder = proxy.recorder
        archive = recorder.writer.path if recorder else output
        out.print(f"recording into {archive}", markup=False)
        if mode == "reverse":
            out.print(f"REST base:   {proxy.rest_base}  (forwarded to {upstream})", markup=False)
            out.print(f"gateway URL: {proxy.gateway_url}", markup=False)
            out.print(_snippets(proxy.rest_base, proxy.gateway_url), markup=False)
        else:
            ca = ca_cert_path(confdir)
            proxy_url = f"http://{proxy.host_for_url}:{proxy.port}"
            out.print(f"HTTP proxy: {proxy_url}", markup=False)
            out.print(
                f"The client must trust mitmproxy's CA: {ca}\n"
                f"  discord.py: SSL_CERT_FILE={ca}, discord.Client(..., proxy='{proxy_url}')\n"
                f"  hikari:     SSL_CERT_FILE={ca}, hikari.GatewayBot(..., "
                f"proxy_settings=hikari.impl.config.ProxySettings(url='{proxy_url}'))\n"
                f"  discord.js: NODE_EXTRA_CA_CERTS={ca}, and a proxy agent for REST and WebSocket",
                markup=False,
            )
        out.print("Ctrl-C stops and closes the archive.", markup=False)
        with Live(table(proxy), console=err, refresh_per_second=4, transient=False) as live:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)
                live.update(table(proxy))
        await proxy.stop()
        errors = proxy.addon.errors
        err.print(
            f"closed {archive}"
            + (f" ({errors} recorder errors: see the log above)" if errors else "")
        )

    asyncio.run(run())


@app.command()
def synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="Archive to write.")],
    guilds: Annotated[int, typer.Option(help="Guilds the bot is in.")] = 3,
    channels: Annotated[
        int, typer.Option(help="Channels per guild (from 3: a category and a voice channel).")
    ] = 5,
    roles: Annotated[
        int, typer.Option(help="Roles per guild, @everyone and the bot's role included.")
    ] = 4,
    members: Annotated[int, typer.Option(help="Members per guild, besides the bot.")] = 20,
    messages: Annotated[
        int, typer.Option(help="MESSAGE_CREATE dispatches (with --size: their share).")
    ] = 30,
    shards: Annotated[int, typer.Option(help="Shards, each its own connection.")] = 1,
    encoding: Annotated[str, typer.Option(help="Payload encoding: json or etf.")] = "json",
    compress: Annotated[
        str | None,
        typer.Option(help="zlib-stream or zstd-stream: in the URL and the wire sizes."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same session.")] = 0,
    chunk_requests: Annotated[
        int,
        typer.Option(
            min=0,
            help="REQUEST_GUILD_MEMBERS the client makes (answered by GUILD_MEMBERS_CHUNK). "
            "0 for clients that never ask (discord.py without chunking).",
        ),
    ] = 1,
    size: Annotated[
        str | None,
        typer.Option(
            help="Go on with events until the payloads reach this size (200MB, 1GB; 1 KB = 1024 B)."
        ),
    ] = None,
) -> None:
    """Generate a realistic synthetic gateway session (no Discord needed) as an archive."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from replayer.synth import SynthOptions, parse_size, write_synth

    for option, value, least in (
        ("--guilds", guilds, 0),
        ("--channels", channels, 1),
        ("--roles", roles, 1),
        ("--members", members, 0),
        ("--messages", messages, 0),
        ("--shards", shards, 1),
    ):
        if value < least:
            fail(f"{option} must be at least {least}, got {value}")
    if encoding not in ("json", "etf"):
        fail(f"--encoding must be json or etf, got {encoding!r}")
    if compress is not None and compress not in ("zlib-stream", "zstd-stream"):
        fail(f"--compress must be zlib-stream or zstd-stream, got {compress!r}")
    target: int | None = None
    if size is not None:
        try:
            target = parse_size(size)
        except ValueError as exc:
            fail(f"--size: {exc}")
        if guilds == 0:
            fail("--size needs at least one guild (--guilds) to send events in")
    try:
        options = SynthOptions(
            guilds=guilds, channels_per_guild=channels, roles_per_guild=roles,
            members_per_guild=members, messages=messages, shards=shards, encoding=encoding,
            compress=compress, seed=seed, target_bytes=target, member_chunk_requests=chunk_requests,
        )  # fmt: skip
    except ValueError as exc:
        fail(str(exc))
    payload = 0

    def seen(n: int) -> None:
        nonlocal payload
        payload = n

    try:
        if target is None:
            count = write_synth(output, options, seen)
        else:
            columns = (BarColumn(), DownloadColumn(binary_units=True), TransferSpeedColumn())
            with Progress(
                "{task.description}", *columns, TimeRemainingColumn(), console=err, transient=True
            ) as bar:
                task = bar.add_task("synth", total=target)

                def step(n: int) -> None:
                    seen(n)
                    bar.update(task, completed=min(n, target))

                count = write_synth(output, options, step)
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    err.print(
        f"wrote {output}: {count} records, {_fmt_bytes(payload)} of payloads "
        f"({_fmt_bytes(output.stat().st_size)} file), {guilds} guild(s), {shards} shard(s), "
        f"seed {seed}"
    )


@app.command()
def demo(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Keep the recorded archive here.")
    ] = None,
) -> None:
    """Offline, no token: replay a bundled session, record a real discord.py bot through
    mitmproxy while a RECONNECT and an INVALID_SESSION hit it, and judge its reactions."""
    import asyncio

    from replayer.demo import run_demo

    result = asyncio.run(run_demo(output, say=lambda line: err.print(line, markup=False)))
    out.print()
    with ArchiveReader(result.archive) as reader:
        summary = ArchiveStats()
        for record in _records(reader):
            summary.add(record)
        _print_stats(result.archive, reader, summary)
    _print_verdicts(result.verdicts, out)
    if not result.verdicts or not all(v.passed for v in result.verdicts):
        raise typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        out.print(f"replayer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Record, replay and break Discord gateway sessions."""


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ReplayerError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(1)
    except BrokenPipeError:  # `replayer export x | head`
        sys.stderr.close()
        sys.exit(0)
