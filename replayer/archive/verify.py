"""Integrity checks over a stream of records, beyond what each record's shape says.

The checker is pure: feed it records in file order; it raises ``ArchiveError`` naming the
field of the first record that breaks a rule. Rules: offsets never go back; connection
ids are unique and a resumed connection came earlier; frames, closes and infos name an
open connection; each frame's payload decodes with its connection's encoding and agrees
with the stored ``op``, ``s`` and ``t`` (unless flagged undecoded): a main-gateway payload
as ``{op, d, s, t}``, a voice connection's by the voice rules (``frame_heads.py``), where the
server's ``seq`` also only goes forward (Voice Connections > Resuming Voice Connection: the
client acknowledges the last ``seq`` it received).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

from replayer.archive.frame_heads import frame_head
from replayer.archive.reader import ArchiveReader
from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    HttpRecord,
    Record,
)
from replayer.archive.runs import FrameRun
from replayer.errors import ArchiveError, CodecError, GatewayError
from replayer.gateway.encoding import Encoding
from replayer.gateway.opcodes import Direction


@dataclass
class ArchiveChecker:
    """Checks records one by one; counts what it saw."""

    last_t_ns: int = 0
    encodings: dict[int, Encoding] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)
    kinds: dict[int, ConnectionKind] = field(default_factory=dict)
    voice_seq: dict[int, int] = field(default_factory=dict)  # conn -> last server seq
    connections: int = 0
    frames: int = 0
    closes: int = 0
    http: int = 0

    def check(self, record: Record) -> None:
        if record.t_ns < self.last_t_ns:
            raise ArchiveError(
                f"offset {record.t_ns} ns goes back before the previous record's "
                f"{self.last_t_ns} ns",
                field="t_ns",
            )
        self.last_t_ns = record.t_ns
        match record:
            case FrameRecord():
                self._open_connection(record.conn_id, "frame")
                self._frame(record)
                self.frames += 1
            case ConnectionRecord():
                self._connection(record)
            case ConnectionInfoRecord():
                self._open_connection(record.conn_id, "connection_info")
                self._resumes(record.resumes, record.conn_id, "connection_info.resumes")
                if record.kind is not None:
                    self.kinds[record.conn_id] = record.kind
            case CloseRecord():
                self._open_connection(record.conn_id, "close")
                self.closed.add(record.conn_id)
                self.closes += 1
            case HttpRecord():
                self.http += 1

    def check_run(self, run: FrameRun) -> None:
        """Check a run of frames as :meth:`check` checks each (the same rules, the same
        first error): at once when every rule holds for all of them, which the columns
        and ``json_ok`` tell; else record by record. The error names its record index."""
        n = len(run)
        t_ns = run.t_ns
        conns = set(run.conn_id)
        encodings = self.encodings
        if (
            t_ns[0] >= self.last_t_ns
            and all(map(operator.le, t_ns[:-1], t_ns[1:]))
            and all(c in encodings and c not in self.closed for c in conns)
        ):
            # Only payloads remain: those json_ok vouches for pass, the others are
            # checked here, in order (the first bad one is the first error).
            json_ok = run.json_ok
            # Voice frames have their own rules (seq, binary heads): record by record.
            trusted = all(
                encodings[c] is Encoding.JSON and self.kinds.get(c) is not ConnectionKind.VOICE
                for c in conns
            )
            i = json_ok.find(0) if trusted else 0
            while i >= 0 and i < n:
                if not trusted or not json_ok[i]:
                    try:
                        self._frame(run.record(i))
                    except ArchiveError as exc:
                        raise exc.located(index=run.first_index + i) from None
                i = json_ok.find(0, i + 1) if trusted else i + 1
            self.last_t_ns = t_ns[n - 1]
            self.frames += n
            return
        for i in range(n):
            try:
                self.check(run.record(i))
            except ArchiveError as exc:
                raise exc.located(index=run.first_index + i) from None

    def _connection(self, record: ConnectionRecord) -> None:
        if record.conn_id in self.encodings:
            raise ArchiveError(
                f"connection id {record.conn_id} is used twice", field="connection.conn_id"
            )
        try:
            encoding = Encoding.parse(record.query.encoding)
        except CodecError as exc:
            raise ArchiveError(str(exc), field="connection.query.encoding") from None
        self._resumes(record.resumes, record.conn_id, "connection.resumes")
        self.encodings[record.conn_id] = encoding
        self.kinds[record.conn_id] = record.kind
        self.connections += 1

    def _resumes(self, resumes: int | None, conn_id: int, field_name: str) -> None:
        if resumes is not None and (resumes not in self.encodings or resumes == conn_id):
            raise ArchiveError(
                f"resumes connection {resumes}, which does not come before it", field=field_name
            )

    def _open_connection(self, conn_id: int, kind: str) -> None:
        if conn_id not in self.encodings:
            raise ArchiveError(f"names unknown connection {conn_id}", field=f"{kind}.conn_id")
        if conn_id in self.closed:
            raise ArchiveError(
                f"comes after connection {conn_id} was closed", field=f"{kind}.conn_id"
            )

    def _frame(self, frame: FrameRecord) -> None:
        if frame.flags & FrameFlag.UNDECODED:
            if frame.op is not None or frame.s is not None or frame.t is not None:
                raise ArchiveError(
                    "an undecoded frame must have null op, s and t", field="frame.op"
                )
            return
        kind = self.kinds[frame.conn_id]
        from_server = frame.direction == Direction.SERVER
        try:
            op, s, t = frame_head(
                kind,
                frame.payload,
                binary=frame.frame_type == FrameType.BINARY,
                from_server=from_server,
                encoding=self.encodings[frame.conn_id],
            )
        except GatewayError as exc:
            raise ArchiveError(
                f"payload does not decode ({exc}) but is not flagged undecoded",
                field="frame.payload",
            ) from None
        for name, stored, actual in (("op", frame.op, op), ("s", frame.s, s), ("t", frame.t, t)):
            if stored != actual:
                raise ArchiveError(
                    f"stored {name}={stored!r} but the payload says {actual!r}",
                    field=f"frame.{name}",
                )
        if kind is ConnectionKind.VOICE and from_server and s is not None:
            self._voice_seq(frame.conn_id, s, frame.flags)

    def _voice_seq(self, conn_id: int, seq: int, flags: FrameFlag) -> None:
        """A voice server's ``seq`` only goes forward (16 bits in binary frames: compared
        modulo 2**16, so a wrap to 0 goes forward); an injected message (a fault) is exempt."""
        last = self.voice_seq.get(conn_id)
        if flags & FrameFlag.INJECTED:
            return
        self.voice_seq[conn_id] = seq
        if last is not None and not 0 < (seq - last) & 0xFFFF < 0x8000:
            raise ArchiveError(
                f"voice seq {seq} after {last}: the server's seq only goes forward",
                field="frame.s",
            )


def check_archive(reader: ArchiveReader) -> ArchiveChecker:
    """Check every record ``reader`` has left; the checker, with its counts, when all
    pass. An ``ArchiveError`` names the record at fault (the reader's own errors too)."""
    checker = ArchiveChecker()
    for item in reader.runs(check_json=True):
        if isinstance(item, FrameRun):
            checker.check_run(item)
            continue
        try:
            checker.check(item)
        except ArchiveError as exc:
            raise exc.located(index=reader.records_read) from None
    return checker
