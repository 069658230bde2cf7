"""What an archive offers to replay: per shard, the session's dispatches in order.

Built in one streaming pass over the archive. Items keep the *file offset* of their
record, not the payload, so a replay of a multi-gigabyte archive holds only a small index
in memory and reads payloads as it sends them (:class:`ArchivePayloads`).

A shard's stream is its first session: the connection that IDENTIFYed and got READY, plus
every connection that RESUMEd it (Discord docs: Events > Gateway > Resuming). Dispatches
replayed by Discord after a RESUME (seq not above the highest seen) and RESUMED itself are
left out: the replayer makes its own RESUMED.

Voice connections (``ConnectionKind.VOICE``, Topics > Voice Connections) are skipped on
purpose: their frames follow the voice opcode table, not the gateway's (voice op 9
RESUMED is not an INVALID_SESSION, op 2 READY not an IDENTIFY), and they are no
dispatches to replay; a replay's voice face makes its own voice session (docs/voice.md).
"""

from __future__ import annotations

import operator
import os
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any, Protocol, cast

import msgpack

from replayer.archive.reader import MAX_RECORD_BYTES, ArchiveReader
from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    HttpRecord,
    fast_frame_from_row,
    from_row,
)
from replayer.archive.runs import NIL_S, FrameRun
from replayer.errors import ArchiveError, CodecError
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.opcodes import Direction, Opcode
from replayer.portable import pread
from replayer.replay.faults import Fault, FaultKind, Trigger
from replayer.replay.guild_state import STATE_EVENTS, GuildState

DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250

# Dispatches that answer a client request, and the opcode of that request.
# Discord docs: Events > Gateway Events > Request Guild Members / Request Soundboard Sounds.
ANSWERS: dict[str, int] = {
    "GUILD_MEMBERS_CHUNK": Opcode.REQUEST_GUILD_MEMBERS,
    "SOUNDBOARD_SOUNDS": Opcode.REQUEST_SOUNDBOARD_SOUNDS,
    "CHANNEL_INFO": Opcode.REQUEST_CHANNEL_INFO,
}
_REQUEST_OPS = frozenset(ANSWERS.values())


@dataclass
class ShardScript:
    """One shard's recorded session: READY first, then the dispatches, by position."""

    shard_id: int
    num_shards: int
    encoding: Encoding  # of the recorded payloads
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS
    offsets: array[int] = field(default_factory=lambda: array("q"))  # record offsets
    sizes: array[int] = field(default_factory=lambda: array("I"))  # record sizes, bytes
    t_ns: array[int] = field(default_factory=lambda: array("q"))  # recorded offsets in time
    events: list[str] = field(default_factory=list)  # dispatch names, interned
    # For items answering a client request: (request opcode, index of that request).
    answers: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Recorded server-side incidents (op 7, op 9, a server close or drop), by the number
    # of items before them: (recorded t_ns, the fault that replays it).
    incidents: dict[int, tuple[int, Fault]] = field(default_factory=dict)
    intents: int | None = None  # the recorded IDENTIFY's (None: it sent none)
    # A stream re-routed for another num_shards (replay/sharding.py): READY's guilds.
    ready_guilds: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.offsets)

    def size(self, index: int) -> int:
        """The size in bytes of item ``index``'s record; 0 when not known."""
        sizes = self.sizes
        return sizes[index] if index < len(sizes) else 0


@dataclass
class ReplayScript:
    """Everything a replay needs from an archive, without the payloads."""

    path: Path
    shards: dict[int, ShardScript]
    num_shards: int
    http: list[HttpRecord]
    ready_user: dict[str, Any] | None = None
    application: dict[str, Any] | None = None
    # The intents of every recorded IDENTIFY that got READY (replay/intents.py).
    identify_intents: list[int] = field(default_factory=list)
    # Where the dispatches carrying guild state are, from every connection (members,
    # presences, sounds, voice channels): read when a request is answered from state.
    state_offsets: array[int] = field(default_factory=lambda: array("q"))
    state_etf: bytearray = field(default_factory=bytearray)  # 1: that record is ETF
    _guild_state: GuildState | None = None

    def guild_state(self, payloads: FrameSource) -> GuildState:
        """The archive's guild state, built on first use from ``state_offsets`` (memory:
        what it indexes; the payloads are read one at a time)."""
        if self._guild_state is None:
            state = GuildState()
            for offset, etf in zip(self.state_offsets, self.state_etf, strict=True):
                record = payloads.frame(offset)
                obj = _decode(record, Encoding.ETF if etf else Encoding.JSON)
                if isinstance(obj, dict) and record.t is not None:
                    state.feed(record.t, obj.get("d"))
            self._guild_state = state
        return self._guild_state


class FrameSource(Protocol):
    """Reads the frame record at a file offset (:class:`ArchivePayloads`); ``size``, its
    length in bytes when known (0: not known)."""

    def frame(self, offset: int, size: int = 0) -> FrameRecord: ...


@dataclass
class _Session:
    encoding: Encoding
    shard: tuple[int, int] = (0, 1)
    intents: int | None = None
    script: ShardScript | None = None
    max_s: int = 0
    requests: dict[int, int] = field(default_factory=dict)  # op -> requests seen
    nonces: dict[tuple[int, str], int] = field(default_factory=dict)  # (op, nonce) -> index


def _decode(frame: FrameRecord, encoding: Encoding) -> Any:
    try:
        return decode_payload(frame.payload, encoding)
    except CodecError:
        return None


def load_script(
    path: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None
) -> ReplayScript:
    """Index an archive for replay. Raises ``ArchiveError`` when it has nothing to replay.

    ``progress(bytes_read, file_size)`` is called now and then on large archives."""
    encodings: dict[int, Encoding] = {}
    sessions: dict[int, _Session] = {}  # conn_id -> its session (shared when resumed)
    by_session_id: dict[str, _Session] = {}
    shards: dict[int, ShardScript] = {}
    http: list[HttpRecord] = []
    hello_ms: dict[int, int] = {}
    user: dict[str, Any] | None = None
    application: dict[str, Any] | None = None
    num_shards = 1
    identify_intents: list[int] = []
    state_offsets: array[int] = array("q")
    state_etf = bytearray()
    voice: set[int] = set()  # conn_ids of voice connections: skipped (module docstring)

    def records(reader: ArchiveReader) -> Iterator[tuple[int, int, Any]]:
        """The records the loop below needs to see, with the offsets where each starts and
        ends: the plain
        dispatches of a replayed session's stream are indexed here, from the columns of
        the reader's runs, without a record built (the same as the loop does)."""
        start = reader.end_offset
        for item in reader.runs():
            run = isinstance(item, FrameRun)
            if progress is not None and (run or not reader.records_read % 4096):
                progress(start, reader.size)
            if not isinstance(item, FrameRun):
                yield start, reader.end_offset, item
                start = reader.end_offset
                continue
            offsets = item.offsets
            sizes = array("I", map(operator.sub, [*offsets[1:], reader.end_offset], offsets))
            dispatch = item.dispatch  # 0: not a dispatch the replay sends: the loop's
            n = len(item)
            i = 0
            while i < n:
                j = dispatch.find(0, i)
                if j < 0:
                    j = n
                if j - i > 1 and _index_dispatches(
                    item, sizes, i, j, sessions, encodings, state_offsets, state_etf
                ):
                    i = j
                for k in range(i, j):  # what the loop below does, for these dispatches
                    if item.conn_id[k] in voice:
                        continue
                    t = cast(str, item.t[k])  # a dispatch has a t
                    if t == "READY" or t in ANSWERS:
                        yield offsets[k], offsets[k] + sizes[k], item.record(k)
                        continue
                    offset, conn_id = item.offsets[k], item.conn_id[k]
                    if t in STATE_EVENTS:
                        state_offsets.append(offset)
                        state_etf.append(encodings.get(conn_id) is Encoding.ETF)
                    session = sessions.get(conn_id)
                    if session is None or session.script is None or t == "RESUMED":
                        continue
                    s = item.s[k]
                    if s != NIL_S:
                        if s <= session.max_s:
                            continue  # replayed by Discord after a RESUME: in the stream
                        session.max_s = s
                    script = session.script
                    script.offsets.append(offset)
                    script.sizes.append(sizes[k])
                    script.t_ns.append(item.t_ns[k])
                    script.events.append(t)  # interned by the reader's scan
                if j < n:
                    yield offsets[j], offsets[j] + sizes[j], item.record(j)
                i = j + 1
            start = reader.end_offset

    with ArchiveReader(path) as reader:
        for offset, end, record in records(reader):
            match record:
                case FrameRecord() | CloseRecord() if record.conn_id in voice:
                    continue
                case FrameRecord() if not record.flags & (FrameFlag.UNDECODED | FrameFlag.INJECTED):
                    encoding = encodings.get(record.conn_id, Encoding.JSON)
                    if record.direction == Direction.CLIENT:
                        _client_frame(record, encoding, sessions, by_session_id)
                        continue
                    if record.op == Opcode.HELLO:
                        obj = _decode(record, encoding)
                        interval = (
                            obj.get("d", {}).get("heartbeat_interval")
                            if isinstance(obj, dict)
                            else None
                        )
                        if isinstance(interval, int) and interval > 0:
                            hello_ms[record.conn_id] = interval
                        continue
                    if record.op in (Opcode.RECONNECT, Opcode.INVALID_SESSION):
                        obj = _decode(record, encoding)
                        resumable = isinstance(obj, dict) and obj.get("d") is True
                        kind = (
                            FaultKind.RECONNECT
                            if record.op == Opcode.RECONNECT
                            else FaultKind.INVALID_SESSION
                        )
                        _incident(sessions.get(record.conn_id), record.t_ns, kind, resumable)
                        continue
                    if record.op != Opcode.DISPATCH or record.t is None:
                        continue
                    if record.t in STATE_EVENTS:
                        state_offsets.append(offset)
                        state_etf.append(encoding is Encoding.ETF)
                    session = sessions.get(record.conn_id)
                    if session is None:
                        continue
                    if record.t == "READY":
                        if session.script is not None:
                            continue
                        if session.intents is not None:
                            identify_intents.append(session.intents)
                        obj = _decode(record, encoding)
                        d = obj.get("d") if isinstance(obj, dict) else None
                        if not isinstance(d, dict):
                            continue
                        shard_id, n = session.shard
                        if shard_id in shards:  # a later session of a shard we have
                            continue
                        num_shards = max(num_shards, n)
                        script = ShardScript(shard_id, n, encoding, intents=session.intents)
                        script.heartbeat_interval_ms = hello_ms.get(
                            record.conn_id, DEFAULT_HEARTBEAT_INTERVAL_MS
                        )
                        session.script = shards[shard_id] = script
                        if isinstance(d.get("session_id"), str):
                            by_session_id[d["session_id"]] = session
                        if user is None and isinstance(d.get("user"), dict):
                            user = d["user"]
                        if application is None and isinstance(d.get("application"), dict):
                            application = d["application"]
                    elif session.script is None or record.t == "RESUMED":
                        continue
                    elif record.s is not None and record.s <= session.max_s:
                        continue  # replayed by Discord after a RESUME: already in the stream
                    script = session.script
                    if record.s is not None:
                        session.max_s = record.s
                    position = len(script.offsets)
                    script.offsets.append(offset)
                    script.sizes.append(end - offset)
                    script.t_ns.append(record.t_ns)
                    script.events.append(_intern(record.t))
                    request_op = ANSWERS.get(record.t)
                    if request_op is not None:
                        script.answers[position] = (
                            request_op,
                            _request_index(record, encoding, session, request_op),
                        )
                case ConnectionRecord() if record.kind is ConnectionKind.VOICE:
                    voice.add(record.conn_id)
                case ConnectionInfoRecord() if record.kind is ConnectionKind.VOICE:
                    voice.add(record.conn_id)  # learned late: forget what its frames began
                    sessions.pop(record.conn_id, None)
                case ConnectionRecord():
                    encodings[record.conn_id] = _encoding(record.query.encoding)
                    if record.resumes is not None and record.resumes in sessions:
                        sessions[record.conn_id] = sessions[record.resumes]
                    if record.shard is not None:
                        num_shards = max(num_shards, record.shard[1])
                case ConnectionInfoRecord() if record.conn_id in voice:
                    continue
                case ConnectionInfoRecord():
                    if record.resumes is not None and record.resumes in sessions:
                        sessions[record.conn_id] = sessions[record.resumes]
                case CloseRecord() if record.closed_by is Closer.SERVER:
                    kind = FaultKind.DROP if record.code is None else FaultKind.CLOSE
                    _incident(
                        sessions.get(record.conn_id),
                        record.t_ns,
                        kind,
                        code=record.code,
                        reason=record.reason,
                    )
                case HttpRecord():
                    http.append(record)
                case _:
                    pass
    if not shards:
        raise ArchiveError(
            "nothing to replay: no connection with an IDENTIFY and a READY", path=str(path)
        )
    return ReplayScript(
        Path(path), shards, num_shards, http, user, application, identify_intents,
        state_offsets, state_etf,
    )  # fmt: skip


# Dispatches that _index_dispatches leaves to the record-by-record loop (and None: no t).
_NOT_BULK = frozenset({None, "READY", "RESUMED", *ANSWERS})


def _index_dispatches(
    run: FrameRun,
    sizes: array[int],
    start: int,
    stop: int,
    sessions: dict[int, _Session],
    encodings: dict[int, Encoding],
    state_offsets: array[int],
    state_etf: bytearray,
) -> bool:
    """Index the run's dispatches ``start:stop`` at once when they are the common case:
    one connection's replayed session, ``s`` rising from where the stream is, no event
    load_script treats specially -- what its loop would do, done by column. False:
    nothing done, the loop must do it."""
    conn_ids = run.conn_id[start:stop]
    session = sessions.get(conn_ids[0])
    if session is None or session.script is None:
        return False
    events = cast(list[str], run.t[start:stop])  # dispatches have a t
    s = run.s[start:stop]
    if (
        len(set(conn_ids)) != 1
        or not _NOT_BULK.isdisjoint(events)
        or s[0] <= session.max_s
        or not all(map(operator.lt, s[:-1], s[1:]))
    ):
        return False
    offsets = run.offsets[start:stop]
    if not STATE_EVENTS.isdisjoint(events):
        before = len(state_offsets)
        state_offsets.extend(compress(offsets, map(STATE_EVENTS.__contains__, events)))
        etf = encodings.get(conn_ids[0]) is Encoding.ETF
        state_etf.extend(bytes([etf]) * (len(state_offsets) - before))
    script = session.script
    script.offsets.frombytes(offsets.cast("B"))
    script.sizes.extend(sizes[start:stop])
    script.t_ns.frombytes(run.t_ns[start:stop].cast("B"))
    script.events.extend(events)  # interned by the reader's scan
    session.max_s = s[-1]
    return True


def _incident(
    session: _Session | None,
    t_ns: int,
    kind: FaultKind,
    resumable: bool = False,
    code: int | None = None,
    reason: str = "",
) -> None:
    """A recorded server-side incident in a session's stream, at its current position."""
    if session is None or session.script is None:
        return  # before READY, or outside the replayed session
    script = session.script
    position = len(script.offsets)
    if position == 0 or position in script.incidents:
        return
    fault = Fault(
        kind,
        Trigger(dispatch=position),
        code=code,
        reason=reason,
        resumable=resumable,
        recorded=True,
        source=f"recorded {kind} at {t_ns / 1e9:.3f}s",
    )
    script.incidents[position] = (t_ns, fault)


_INTERNED: dict[str, str] = {}


def _intern(name: str) -> str:
    return _INTERNED.setdefault(name, name)


def _encoding(text: str) -> Encoding:
    try:
        return Encoding.parse(text)
    except CodecError:
        return Encoding.JSON


def _client_frame(
    frame: FrameRecord,
    encoding: Encoding,
    sessions: dict[int, _Session],
    by_session_id: dict[str, _Session],
) -> None:
    if frame.op == Opcode.IDENTIFY:
        obj = _decode(frame, encoding)
        d = obj.get("d") if isinstance(obj, dict) else None
        shard = d.get("shard") if isinstance(d, dict) else None
        session = _Session(encoding)
        if isinstance(shard, list) and len(shard) == 2 and all(isinstance(x, int) for x in shard):
            session.shard = (shard[0], shard[1])
        intents = d.get("intents") if isinstance(d, dict) else None
        if type(intents) is int:
            session.intents = intents
        sessions[frame.conn_id] = session
    elif frame.op == Opcode.RESUME:
        obj = _decode(frame, encoding)
        d = obj.get("d") if isinstance(obj, dict) else None
        session_id = d.get("session_id") if isinstance(d, dict) else None
        if isinstance(session_id, str) and session_id in by_session_id:
            sessions[frame.conn_id] = by_session_id[session_id]
    elif frame.op in _REQUEST_OPS:
        requester = sessions.get(frame.conn_id)
        if requester is None:
            return
        op = int(frame.op)
        index = requester.requests.get(op, 0)
        requester.requests[op] = index + 1
        obj = _decode(frame, encoding)
        d = obj.get("d") if isinstance(obj, dict) else None
        nonce = d.get("nonce") if isinstance(d, dict) else None
        if isinstance(nonce, str):
            requester.nonces[(op, nonce)] = index


def _request_index(frame: FrameRecord, encoding: Encoding, session: _Session, op: int) -> int:
    """Which of the session's recorded requests this dispatch answers: by nonce when it
    has one, else the latest request."""
    obj = _decode(frame, encoding)
    d = obj.get("d") if isinstance(obj, dict) else None
    nonce = d.get("nonce") if isinstance(d, dict) else None
    if isinstance(nonce, str) and (op, nonce) in session.nonces:
        return session.nonces[(op, nonce)]
    return max(session.requests.get(op, 1) - 1, 0)


class ArchiveFile:
    """One archive opened once for a whole replay: every connection reads from it with
    positional reads (``os.pread``), so there is no shared file position and one file
    descriptor serves any number of connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    def read(self, offset: int, size: int) -> bytes:
        return pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


# A read of a record whose size the caller does not know: this much first, then doubled
# until the record is whole (most frame records are smaller).
GUESS_READ_BYTES = 16 << 10


class ArchivePayloads:
    """Reads the frame record at a file offset, one positional read (``os.pread``) each:
    no file position, no read-ahead, no buffer kept between calls. So one instance over
    the replay's :class:`ArchiveFile` serves every connection, interleaved in any order,
    and a connection costs no memory here (given a path, it opens a file of its own).

    Given the record's size (``ShardScript.sizes``), the read is exactly the record;
    without it (0), a guess that grows until the record is whole."""

    def __init__(self, source: ArchiveFile | Path) -> None:
        self._owned = not isinstance(source, ArchiveFile)
        self._file = source if isinstance(source, ArchiveFile) else ArchiveFile(source)

    @property
    def file(self) -> ArchiveFile:
        return self._file

    def frame(self, offset: int, size: int = 0) -> FrameRecord:
        """The frame record at ``offset`` (``size``: its length in bytes, 0 if unknown)."""
        if size > 0:
            data = self._file.read(offset, size)
            try:
                row = msgpack.unpackb(data, raw=False, strict_map_key=False)
            except (ValueError, msgpack.ExtraData, msgpack.OutOfData) as exc:
                raise self._error(offset, exc) from None
        else:
            row = self._guessed(offset)
        record = fast_frame_from_row(row)
        if record is None:
            try:
                parsed = from_row(row)
            except ArchiveError as exc:
                raise self._error(offset, exc) from None
            if not isinstance(parsed, FrameRecord):
                raise ArchiveError(
                    f"expected a frame record at byte {offset}", path=str(self._file.path)
                )
            record = parsed
        return record

    def _guessed(self, offset: int) -> Any:
        want = GUESS_READ_BYTES
        while True:
            data = self._file.read(offset, want)
            unpacker = msgpack.Unpacker(
                raw=False, strict_map_key=False, max_buffer_size=MAX_RECORD_BYTES
            )
            unpacker.feed(data)
            try:
                return unpacker.unpack()
            except msgpack.OutOfData:
                if len(data) < want or want >= MAX_RECORD_BYTES:
                    raise ArchiveError(
                        f"cannot read the frame at byte {offset}: the file ends inside it",
                        path=str(self._file.path),
                    ) from None
                want = min(want * 4, MAX_RECORD_BYTES)
            except (ValueError, msgpack.BufferFull) as exc:
                raise self._error(offset, exc) from None

    def _error(self, offset: int, exc: Exception) -> ArchiveError:
        return ArchiveError(
            f"cannot read the frame at byte {offset}: {exc}", path=str(self._file.path)
        )

    def close(self) -> None:
        if self._owned:
            self._file.close()
