"""What ``replayer inspect`` shows, computed without any output: a filter over frame
records and running statistics of a whole archive."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameRecord,
    HttpRecord,
    Record,
)
from replayer.archive.runs import FrameRun
from replayer.gateway.opcodes import Direction, opcode_name


@dataclass(frozen=True)
class FrameFilter:
    """Which frames the timeline shows. Empty sets mean "any"."""

    ops: frozenset[int] = frozenset()
    events: frozenset[str] = frozenset()
    conns: frozenset[int] = frozenset()
    direction: Direction | None = None
    since_ns: int | None = None
    until_ns: int | None = None

    def matches(self, frame: FrameRecord) -> bool:
        if self.ops and frame.op not in self.ops:
            return False
        if self.events and (frame.t is None or frame.t.upper() not in self.events):
            return False
        if self.conns and frame.conn_id not in self.conns:
            return False
        if self.direction is not None and frame.direction != self.direction:
            return False
        if self.since_ns is not None and frame.t_ns < self.since_ns:
            return False
        return self.until_ns is None or frame.t_ns <= self.until_ns


@dataclass
class ConnectionSummary:
    record: ConnectionRecord
    shard: tuple[int, int] | None = None
    resumes: int | None = None
    session_id: str | None = None
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
    # repeats those of the replayed sessions as faults.
    incidents: int = 0

    def add(self, record: Record) -> None:
        self.last_t_ns = max(self.last_t_ns, record.t_ns)
        match record:
            case FrameRecord():
                self.frames += 1
                self.payload_bytes += len(record.payload)
                self.wire_bytes += record.wire_size
                self.by_op[f"{record.direction.label} {opcode_name(record.op)}"] += 1
                if record.direction == Direction.SERVER and record.op in (7, 9):
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
                self.connections[record.conn_id] = ConnectionSummary(
                    record, shard=record.shard, resumes=record.resumes
                )
            case ConnectionInfoRecord():
                summary = self.connections.get(record.conn_id)
                if summary is not None:
                    summary.shard = record.shard or summary.shard
                    summary.resumes = (
                        record.resumes if record.resumes is not None else summary.resumes
                    )
                    summary.session_id = record.session_id or summary.session_id
            case CloseRecord():
                if record.closed_by is Closer.SERVER:
                    self.incidents += 1
                summary = self.connections.get(record.conn_id)
                if summary is not None:
                    summary.close = record
            case HttpRecord():
                self.http += 1

    def add_run(self, run: FrameRun) -> None:
        """What :meth:`add` of each of the run's frames would do, counted by column."""
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
