"""The archive commands: ``inspect``, ``export``, ``import``, ``import-mitm``, ``verify``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from replayer.archive.inspection import (
    ArchiveStats,
    ConnectionKinds,
    FrameFilter,
    parse_op_filter,
)
from replayer.archive.jsonl import (
    Exporter,
    Importer,
    LineError,
    export_lines,
    header_from_json,
    metadata_json,
    parse_line,
)
from replayer.archive.reader import ArchiveReader
from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    HttpRecord,
    Record,
)
from replayer.archive.runs import FrameRun
from replayer.archive.verify import check_archive
from replayer.archive.writer import ArchiveWriter, publish
from replayer.cli.output import (
    ArchivePath,
    ForceOption,
    complete_records,
    duration_ns,
    err,
    fail,
    fmt_bytes,
    fmt_offset,
    open_text_output,
    out,
    output_file,
    progress_bar,
)
from replayer.cli.pager import line_width, paged
from replayer.cli.root import app
from replayer.errors import ArchiveError, ImportFormatError
from replayer.gateway.opcodes import Direction


def _frame_line(frame: FrameRecord, payload: object, kinds: ConnectionKinds) -> str:
    """One frame: offset, connection, direction, the event (a dispatch) or opcode name, seq,
    size, then its marks and its payload's ``d`` (cut to the width by ``_fit``)."""
    arrow = "C→S" if frame.direction == Direction.CLIENT else "S→C"
    seq = f"s={frame.s}" if frame.s is not None else ""
    name = frame.t if frame.op == 0 and frame.t else kinds.op_name(frame)
    marks = []
    if frame.flags & FrameFlag.UNDECODED:
        marks.append(f"UNDECODED ({frame.error})" if frame.error else "UNDECODED")
    if frame.flags & FrameFlag.INJECTED:
        marks.append("injected")
    if frame.flags & FrameFlag.REDACTED:
        marks.append("redacted")
    if frame.flags & FrameFlag.REWRITTEN:
        marks.append("rewritten for the client")
    tail = f"[{', '.join(marks)}] " if marks else ""
    if isinstance(payload, dict) and "d" in payload:
        tail += json.dumps(payload["d"], ensure_ascii=False, separators=(",", ":"))
    return (
        f"{fmt_offset(frame.t_ns)} c{frame.conn_id:<3}{arrow} {name:<20} {seq:<7}"
        f"{fmt_bytes(len(frame.payload)):>8}  {tail}"
    ).rstrip()


def _fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` with an ellipsis: the tail (payload, URL) goes, a field
    before it never breaks across lines."""
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def _other_line(record: Record, kinds: ConnectionKinds) -> str | None:
    match record:
        case ConnectionRecord():
            q = record.query
            extra = f" resumes c{record.resumes}" if record.resumes is not None else ""
            what = "open voice" if record.kind is ConnectionKind.VOICE else "open"
            return (
                f"{fmt_offset(record.t_ns)} c{record.conn_id:<3}{what} {record.url} "
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
            if record.kind is not None:
                parts.append(f"{record.kind} connection (from its handshake)")
            return f"{fmt_offset(record.t_ns)} c{record.conn_id:<3}info {', '.join(parts)}"
        case CloseRecord():
            by = record.closed_by.name.lower() if record.closed_by is not None else "unknown"
            how = "clean" if record.clean else "abrupt"
            if record.code is None:
                return f"{fmt_offset(record.t_ns)} c{record.conn_id:<3}dropped (no close frame)"
            return (
                f"{fmt_offset(record.t_ns)} c{record.conn_id:<3}close {record.code} "
                f"{kinds.close_name(record.conn_id, record.code)} by {by}, {how}"
                + (f" {record.reason!r}" if record.reason else "")
            )
        case HttpRecord():
            return (
                f"{fmt_offset(record.t_ns)} http {record.method} {record.host}{record.path} "
                f"-> {record.status} ({fmt_bytes(len(record.response_body))})"
            )
    return None


@app.command()
def inspect(
    archive: ArchivePath,
    op: Annotated[
        list[str] | None,
        typer.Option(
            "--op",
            help="Only this opcode (number or name); repeatable. A name goes by each "
            "connection's table (HELLO: 10 on the gateway, 8 on voice), a number matches on both.",
        ),
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
        bool,
        typer.Option(
            "--stats",
            help="Counts per opcode and event, bytes, connections, of what the filters select.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per line (the records export writes), payloads decoded.",
        ),
    ] = False,
    pager: Annotated[
        bool,
        typer.Option(
            "--pager/--no-pager",
            help="On a terminal, page through $PAGER (default 'less -FRX'), as git does.",
        ),
    ] = True,
) -> None:
    """Show an archive's timeline (offset, connection, direction, event or opcode, seq, size,
    payload).

    Each line fits the terminal (80 columns when piped): the payload is cut with an ellipsis;
    --json or export give it whole. The filters select frames: the values of one option are
    alternatives (--op IDENTIFY --op RESUME: either), different options must all hold
    (--event READY --dir client: none, READY is the server's).
    """
    try:
        ops, voice_ops = parse_op_filter(op or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--op") from None
    dir_value: Direction | None = None
    if direction is not None:
        if direction.lower() not in ("client", "server"):
            raise typer.BadParameter("expected 'client' or 'server'", param_hint="--dir")
        dir_value = Direction[direction.upper()]
    flt = FrameFilter(
        ops=ops,
        voice_ops=voice_ops,
        events=frozenset(e.upper() for e in event or []),
        conns=frozenset(conn or []),
        direction=dir_value,
        since_ns=duration_ns(since, "--since") if since else None,
        until_ns=duration_ns(until, "--until") if until else None,
    )
    with ArchiveReader(archive) as reader:
        if stats:
            summary = ArchiveStats()
            if flt.active:  # record by record: the filters look at each
                seen = ConnectionKinds()
                for record in complete_records(reader):
                    seen.see(record)
                    if flt.counts(record, voice=getattr(record, "conn_id", None) in seen.voice):
                        summary.add(record)
            else:
                for item in complete_records(reader, runs=True):
                    if isinstance(item, FrameRun):
                        summary.add_run(item)
                    else:
                        summary.add(item)
            print_stats(archive, reader, summary, filtered=flt.active)
            return
        exporter = Exporter()
        width = line_width()
        with paged(pager) as write:
            shown = 0
            kinds = ConnectionKinds()
            for record in complete_records(reader):
                kinds.see(record)  # shown or not: it says how to name the later frames
                if limit is not None and shown >= limit:
                    break
                if isinstance(record, ConnectionRecord):
                    exporter.record(record)  # each connection's encoding, for its payloads
                if not flt.shows(record, voice=getattr(record, "conn_id", None) in kinds.voice):
                    continue
                if as_json:
                    line = json.dumps(exporter.record(record), ensure_ascii=False)
                elif isinstance(record, FrameRecord):
                    line = _fit(
                        _frame_line(record, exporter.record(record).get("payload"), kinds), width
                    )
                else:
                    other = _other_line(record, kinds)
                    if other is None:
                        continue
                    line = _fit(other, width)
                write(line)
                shown += 1


def print_stats(
    path: Path, reader: ArchiveReader, s: ArchiveStats, *, filtered: bool = False
) -> None:
    h = reader.header
    created = datetime.fromtimestamp(h.created_unix_ns / 1e9, tz=UTC).isoformat(timespec="seconds")
    name = escape(str(path))
    out.print(f"[bold]{name}[/]: format v{h.format_version}, written by {h.tool} at {created}")
    if h.metadata:
        out.print(f"metadata: {metadata_json(h.metadata)}", markup=False)
    out.print(
        f"duration {s.last_t_ns / 1e9:.3f}s, {reader.records_read} records: {s.frames} frames "
        f"({fmt_bytes(s.payload_bytes)} payload, {fmt_bytes(s.wire_bytes)} on the wire), "
        f"{len(s.connections)} connections, {s.http} HTTP exchanges"
        + (" (of what the filters select)" if filtered else "")
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
        "kind",
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
            close = f"{c.close.code} {s.kinds.close_name(cid, c.close.code)} by {by}" + (
                "" if c.close.clean else " (abrupt)"
            )
        conns.add_row(
            f"c{cid}",
            str(c.kind),
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
    if s.incidents:
        _print_incidents(path)


def _print_incidents(path: Path) -> None:
    """The recorded incidents ``replayer replay`` repeats as faults (docs/faults.md)."""
    from replayer.replay.script import load_script

    try:
        script = load_script(path)
    except ArchiveError:
        return  # nothing to replay: nothing is repeated
    incidents = Table(
        "shard",
        "after dispatch",
        "at",
        "incident",
        title="replayed as faults",
        title_justify="left",
    )
    for shard_id, shard in sorted(script.shards.items()):
        for position, (t_ns, fault) in sorted(shard.incidents.items()):
            incidents.add_row(
                str(shard_id), str(position), fmt_offset(t_ns).strip(), fault.describe()
            )
    if incidents.row_count:
        out.print(incidents)
        out.print("(replayer replay --no-recorded-faults leaves them out)", markup=False)


@app.command()
def export(
    archive: ArchivePath,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write here instead of standard output (a directory: a new file in it).",
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Write an archive as JSON Lines, payloads decoded inline (lossless)."""
    if output is not None:
        output = output_file(output, force=force, suffix=".jsonl")
    with ArchiveReader(archive) as reader:
        sink = open_text_output(output, force=force) if output else sys.stdout
        try:
            with progress_bar(f"exporting {archive}", reader.size if output else 0) as progress:
                for n, line in enumerate(export_lines(reader.header, complete_records(reader))):
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
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Archive to write (a directory: a new file in it)."),
    ],
    redact: Annotated[bool, typer.Option(help="Scrub tokens before writing.")] = True,
    force: ForceOption = False,
) -> None:
    """Build an archive from JSON Lines, so fixtures can be written by hand. An existing
    archive is never replaced without --force."""
    output = output_file(output, force=force)
    name = str(source)
    try:
        lines = open(source, "rb")  # noqa: SIM115 - decoded line by line (parse_line)
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
                    obj = parse_line(line)
                    if writer is None:
                        if isinstance(obj, dict) and obj.get("kind") == "header":
                            writer = ArchiveWriter(
                                partial, header=header_from_json(obj), redact=redact,
                                overwrite=True,
                            )  # fmt: skip
                            continue
                        writer = ArchiveWriter(partial, redact=redact, overwrite=True)
                    writer.write(importer.record(obj))
                    count += 1
                except LineError as exc:
                    raise ImportFormatError(str(exc), path=name, line=number) from None
            if writer is None:
                writer = ArchiveWriter(partial, redact=redact, overwrite=True)
            writer.close()
            _publish(partial, output, force)
        except OSError as exc:
            if writer is not None:
                writer.close()
            partial.unlink(missing_ok=True)
            fail(f"{output}: cannot write: {exc.strerror or exc}")
        except BaseException:
            if writer is not None:
                writer.close()
            partial.unlink(missing_ok=True)
            raise
    err.print(f"wrote {output}: {count} records")


@app.command("import-mitm")
def import_mitm(
    flows: Annotated[Path, typer.Argument(help="mitmproxy flow file (mitmdump -w).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Archive to write (a directory: a new file in it)."),
    ],
    redact: Annotated[bool, typer.Option(help="Scrub tokens before writing.")] = True,
    force: ForceOption = False,
) -> None:
    """Convert a mitmproxy flow file holding gateway WebSocket flows into an archive. An
    existing archive is never replaced without --force."""
    from replayer.record.import_mitm import import_flows

    output = output_file(output, force=force)
    partial = output.with_name(output.name + ".partial")
    try:
        summary = import_flows(flows, partial, redact=redact, overwrite=True)
        _publish(partial, output, force)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        fail(f"{output}: cannot write: {exc.strerror or exc}")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    err.print(
        f"wrote {output}: {summary.connections} gateway connections, {summary.messages} messages, "
        f"{summary.http} HTTP exchanges from {summary.flows} flows"
    )


def _publish(partial: Path, output: Path, force: bool) -> None:
    """The finished ``partial`` becomes ``output``; one that appeared meanwhile is kept."""
    try:
        publish(partial, output, overwrite=force)
    except FileExistsError:
        partial.unlink(missing_ok=True)
        fail(f"{output}: already exists (--force replaces it; a directory gets a new file)")


@app.command()
def verify(archive: ArchivePath) -> None:
    """Check an archive's integrity; exit 1 naming the record of the first problem."""
    with ArchiveReader(archive) as reader:
        try:
            checker = check_archive(reader)
        except ArchiveError as exc:
            raise exc.located(path=str(archive)) from None
        index = reader.records_read
        out.print(
            f"ok: {archive}: format v{reader.header.format_version}, {index} records "
            f"({checker.connections} connections, {checker.frames} frames, "
            f"{checker.closes} closes, {checker.http} HTTP exchanges)"
        )
