"""What ``replayer inspect`` shows, computed without any output: a filter over frame
records, the names of opcodes and close codes by connection kind, and running statistics
of a whole archive."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameRecord,
    HttpRecord,
    Record,
)
from replayer.archive.runs import FrameRun
from replayer.gateway.close_codes import close_code_name
from replayer.gateway.opcodes import Direction, Opcode, opcode_name, parse_opcode
from replayer.voice.close_codes import VOICE_CLOSE_CODES
from replayer.voice.opcodes import VoiceOp, voice_op_name


@dataclass
class ConnectionKinds:
    """Each connection's kind as the records read so far say (``connection``, then any
    ``connection_info``), and the names its opcodes and close codes go by: a voice
    connection's are the voice tables (Opcodes and Status Codes > Voice)."""

    voice: set[int] = field(default_factory=set)

    def see(self, record: Record) -> None:
        if isinstance(record, ConnectionRecord | ConnectionInfoRecord) and record.kind:
            if record.kind is ConnectionKind.VOICE:
                self.voice.add(record.conn_id)
            else:
                self.voice.discard(record.conn_id)

    def kind(self, conn_id: int) -> ConnectionKind:
        return ConnectionKind.VOICE if conn_id in self.voice else ConnectionKind.GATEWAY

    def op_name(self, frame: FrameRecord) -> str:
        if frame.conn_id in self.voice:
            return voice_op_name(frame.op)
        return opcode_name(frame.op)

    def close_name(self, conn_id: int, code: int) -> str:
        row = VOICE_CLOSE_CODES.get(code) if conn_id in self.voice else None
        return row.name if row is not None else close_code_name(code)


def parse_op_filter(texts: Iterable[str]) -> tuple[frozenset[int], frozenset[int]]:
    """``--op`` values as the opcodes they select on main-gateway and on voice connections:
    a name by each table (Opcodes and Status Codes > Gateway / Voice: ``HELLO`` is 10 on the
    gateway, 8 on voice; ``READY`` only a voice opcode), a number on both. ``ValueError``
    for a name neither table has."""
    gateway: set[int] = set()
    voice: set[int] = set()
    for text in texts:
        cleaned = text.strip()
        if cleaned.lstrip("-").isdigit():
            gateway.add(int(cleaned))
            voice.add(int(cleaned))
            continue
        found = False
        with contextlib.suppress(ValueError):
            gateway.add(parse_opcode(cleaned))
            found = True
        member = VoiceOp.__members__.get(cleaned.upper().replace("-", "_"))
        if member is not None:
            voice.add(int(member))
            found = True
        if not found:
            raise ValueError(
                f"unknown opcode {text!r} (a number, or a name of the gateway's opcodes: "
                f"{', '.join(op.name for op in Opcode)}; or of voice's: "
                f"{', '.join(op.name for op in VoiceOp)})"
            )
    return frozenset(gateway), frozenset(voice)


@dataclass(frozen=True)
class FrameFilter:
    """Which frames the timeline shows. Empty sets mean "any". Within a kind the values are
    alternatives (``--op 7 --op 9``: either); across kinds all must hold (``--event READY
    --dir client`` shows nothing: READY is the server's). ``ops`` are the opcodes selected
    on main-gateway connections, ``voice_ops`` on voice ones (:func:`parse_op_filter`)."""

    ops: frozenset[int] = frozenset()
    voice_ops: frozenset[int] = frozenset()
    events: frozenset[str] = frozenset()
    conns: frozenset[int] = frozenset()
    direction: Direction | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def matches(self, frame: FrameRecord, *, voice: bool = False) -> bool:
        """``voice``: the frame is a voice connection's (its op is read by the voice table)."""
        if (self.ops or self.voice_ops) and frame.op not in (self.voice_ops if voice else self.ops):
            return False
        if self.events and (frame.t is None or frame.t.upper() not in self.events):
            return False
        if self.conns and frame.conn_id not in self.conns:
            return False
        if self.direction is not None and frame.direction != self.direction:
            return False
        return self.within(frame.t_ns)

    @property
    def frames_only(self) -> bool:
        """Whether a filter only frames have (op, event, direction) is set."""
        return bool(self.ops or self.voice_ops or self.events or self.direction is not None)

    def within(self, t_ns: int) -> bool:
        """Whether ``t_ns`` is inside the ``since``/``until`` window."""
        if self.since_ns is not None and t_ns < self.since_ns:
            return False
        return self.until_ns is None or t_ns <= self.until_ns

    def shows(self, record: Record, *, voice: bool = False) -> bool:
        """Whether the timeline shows ``record``: a frame that matches, or another record of a
        selected connection inside the window when no frame-only filter is set."""
        if isinstance(record, FrameRecord):
            return self.matches(record, voice=voice)
        if self.frames_only:
            return False
        if self.conns and getattr(record, "conn_id", None) not in self.conns:
            return False
        return self.within(record.t_ns)

    def counts(self, record: Record, *, voice: bool = False) -> bool:
        """Whether the statistics count ``record``: what the timeline shows, and the records of
        each selected connection (its URL, shard and close), so the table of connections stays
        whole."""
        if isinstance(record, ConnectionRecord | ConnectionInfoRecord | CloseRecord):
            return not self.conns or record.conn_id in self.conns
        return self.shows(record, voice=voice)

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return self != FrameFilter()


@dataclass
class ConnectionSummary:
    record: ConnectionRecord
    shard: tuple[int, int] | None = None
    resumes: int | None = None
    session_id: str | None = None
    kind: ConnectionKind = ConnectionKind.GATEWAY
    frames_in: int = 0  # server -> client
    frames_out: int = 0  # client -> server
    close: CloseRecord | None = None


@dataclass
class ArchiveStats:
    """Counts per opcode and event, bytes, duration and each connection."""

    frames: int = 0
    payload_bytes: int = 0
    wire_bytes: int = 0
    last_t_ns: int = 0
    http: int = 0
    by_op: Counter[str] = field(default_factory=Counter)
    by_event: Counter[str] = field(default_factory=Counter)
    connections: dict[int, ConnectionSummary] = field(default_factory=dict)
    # Server-side incidents (op 7, op 9, a close or drop by the server): the replay
    # repeats those of the replayed sessions as faults. Main-gateway connections only.
    incidents: int = 0
    kinds: ConnectionKinds = field(default_factory=ConnectionKinds)

    def add(self, record: Record) -> None:
        self.last_t_ns = max(self.last_t_ns, record.t_ns)
        match record:
            case FrameRecord():
                self.frames += 1
                self.payload_bytes += len(record.payload)
                self.wire_bytes += record.wire_size
                voice = record.conn_id in self.kinds.voice
                name = self.kinds.op_name(record)
                self.by_op[f"{record.direction.label} {'voice ' if voice else ''}{name}"] += 1
                if record.direction == Direction.SERVER and record.op in (7, 9) and not voice:
                    self.incidents += 1
                if record.t is not None:
                    self.by_event[record.t] += 1
                summary = self.connections.get(record.conn_id)
                if summary is not None:
                    if record.direction == Direction.SERVER:
                        summary.frames_in += 1
                    else:
                        summary.frames_out += 1
            case ConnectionRecord():
                self.kinds.see(record)
                self.connections[record.conn_id] = ConnectionSummary(
                    record, shard=record.shard, resumes=record.resumes, kind=record.kind
                )
            case ConnectionInfoRecord():
                self.kinds.see(record)
                summary = self.connections.get(record.conn_id)
                if summary is not None:
                    summary.kind = record.kind or summary.kind
                    summary.shard = record.shard or summary.shard
                    summary.resumes = (
                        record.resumes if record.resumes is not None else summary.resumes
                    )
                    summary.session_id = record.session_id or summary.session_id
            case CloseRecord():
                if record.closed_by is Closer.SERVER and record.conn_id not in self.kinds.voice:
                    self.incidents += 1
                summary = self.connections.get(record.conn_id)
                if summary is not None:
                    summary.close = record
            case HttpRecord():
                self.http += 1

    def add_run(self, run: FrameRun) -> None:
        """What :meth:`add` of each of the run's frames would do, counted by column."""
        if not self.kinds.voice.isdisjoint(run.conn_id):  # voice names: frame by frame
            for i in range(len(run)):
                self.add(run.record(i))
            return
        self.frames += len(run)
        self.payload_bytes += sum(run.payload_len)
        self.wire_bytes += sum(run.wire_size)
        latest = max(run.t_ns)
        self.last_t_ns = max(self.last_t_ns, latest)
        for (direction, op), count in Counter(zip(run.direction, run.op, strict=True)).items():
            self.by_op[f"{Direction(direction).label} {opcode_name(op)}"] += count
            if direction == Direction.SERVER and op in (7, 9):
                self.incidents += count
        self.by_event.update(t for t in run.t if t is not None)
        per_connection = Counter(zip(run.conn_id, run.direction, strict=True))
        for (conn_id, direction), count in per_connection.items():
            summary = self.connections.get(conn_id)
            if summary is not None:
                if direction == Direction.SERVER:
                    summary.frames_in += count
                else:
                    summary.frames_out += count
