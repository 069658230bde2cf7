"""What differs between two archives (or replay transcripts, which are archives), frame by
frame per connection, ignoring what differs on every run.

Connections are paired in the order they opened (the k-th of A with the k-th of B); within a
pair, the frames each side sent are compared in order, client's with client's and server's
with server's (how the two directions interleave depends on timing). Payloads are compared
decoded (JSON or ETF, after transport decompression), so encoding and (re)compression never
count. Ignored: record times, hosts and ports in URLs, the values under the keys in
``IGNORED_KEYS`` (session ids, nonces, Discord's ``_trace``, the token, message timestamps) and
a heartbeat's or its ACK's ``d`` (a sequence number that depends on timing). A voice
connection's frames go by the voice opcode table (its HELLO is op 8, its heartbeats ops 3
and 6, whose ``d`` is a nonce).

Pure: records in, :class:`Difference` rows out.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from replayer.archive.inspection import ConnectionKinds
from replayer.archive.records import (
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    Record,
)
from replayer.errors import CodecError
from replayer.gateway.encoding import Encoding, decode_payload
from replayer.gateway.opcodes import Direction
from replayer.voice.opcodes import VoiceOp

# Keys whose values differ from run to run (Discord docs: Events > Gateway Events > Ready for
# session_id / resume_gateway_url; Request Guild Members and Create Message for nonce).
IGNORED_KEYS = frozenset(
    {
        "session_id",
        "resume_gateway_url",
        "nonce",
        "_trace",
        "token",
        "timestamp",
        "edited_timestamp",
        "joined_at",
    }
)
HEARTBEAT_OPS = frozenset({1, 11})  # HEARTBEAT, HEARTBEAT_ACK: their d is the client's seq
# On a voice connection: HEARTBEAT, HEARTBEAT_ACK, whose d is a nonce (and seq_ack, v8).
VOICE_HEARTBEAT_OPS = frozenset({VoiceOp.HEARTBEAT, VoiceOp.HEARTBEAT_ACK})
_URL_AUTHORITY = re.compile(r"\b((?:wss?|https?)://)[^/\s?#]+")
MISSING = "(none)"


@dataclass(frozen=True)
class Difference:
    """One difference: where (record indices, connection pair, direction, op/event, path)
    and the two values (``MISSING`` where one side has no such frame or key)."""

    conn: int  # the pair's ordinal, 1-based
    direction: Direction | None  # None: the connection itself (URL, close)
    frame: int  # the frame's ordinal in its connection and direction, 1-based; 0: none
    record_a: int | None  # record index in A (the header is record 0)
    record_b: int | None
    what: str  # "HELLO", "DISPATCH MESSAGE_CREATE", "connection", "close"
    path: str  # "d.guilds[0].name"; "" for the whole value
    value_a: Any
    value_b: Any

    def describe(self) -> str:
        where = f"record {_index(self.record_a)} / {_index(self.record_b)}, c{self.conn}"
        if self.direction is not None:
            where += f" {self.direction.label} frame {self.frame}"
        return (
            f"{where} ({self.what}) {self.path or '(whole)'}: "
            f"{_shown(self.value_a)} != {_shown(self.value_b)}"
        )


def _index(i: int | None) -> str:
    return "-" if i is None else str(i)


def _shown(value: Any, limit: int = 120) -> str:
    text = value if value is MISSING else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Frame:
    index: int
    record: FrameRecord
    payload: Any
    name: str  # its opcode's name by its connection's kind (a voice one: the voice table)
    heartbeat: bool

    @property
    def what(self) -> str:
        return f"{self.name} {self.record.t}" if self.record.t else self.name


@dataclass
class _Connection:
    index: int
    record: ConnectionRecord
    frames: dict[Direction, list[_Frame]]
    close: tuple[int, CloseRecord] | None = None


def _connections(records: Sequence[Record]) -> list[_Connection]:
    by_id: dict[int, _Connection] = {}
    order: list[_Connection] = []
    kinds = ConnectionKinds()
    for i, record in enumerate(records, start=1):
        if isinstance(record, ConnectionRecord | ConnectionInfoRecord):
            kinds.see(record)
        match record:
            case ConnectionRecord():
                conn = _Connection(i, record, {Direction.CLIENT: [], Direction.SERVER: []})
                by_id[record.conn_id] = conn
                order.append(conn)
            case FrameRecord() if record.conn_id in by_id:
                conn = by_id[record.conn_id]
                encoding = Encoding.JSON
                with contextlib.suppress(CodecError):
                    encoding = Encoding.parse(conn.record.query.encoding)
                voice = record.conn_id in kinds.voice
                heartbeat = record.op in (VOICE_HEARTBEAT_OPS if voice else HEARTBEAT_OPS)
                frame = _Frame(
                    i,
                    record,
                    _decoded(record, encoding, heartbeat),
                    kinds.op_name(record),
                    heartbeat,
                )
                conn.frames[record.direction].append(frame)
            case CloseRecord() if record.conn_id in by_id:
                by_id[record.conn_id].close = (i, record)
    return order


def _decoded(frame: FrameRecord, encoding: Encoding, heartbeat: bool) -> Any:
    if frame.flags & FrameFlag.UNDECODED:
        return {"undecoded": frame.payload.hex()}
    try:
        return normalize(decode_payload(frame.payload, encoding), heartbeat=heartbeat)
    except CodecError:
        return {"undecodable": frame.payload.hex()}


def normalize(value: Any, *, heartbeat: bool = False) -> Any:
    """``value`` without what differs on every run (the keys of ``IGNORED_KEYS``, a heartbeat's
    ``d``), hosts and ports in URLs as ``HOST``, ETF's bytes as text and tuples as lists (so
    JSON and ETF compare)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
            if name not in IGNORED_KEYS and not (heartbeat and name == "d"):
                out[name] = normalize(item)
        return out
    if isinstance(value, list | tuple):
        return [normalize(item) for item in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return _URL_AUTHORITY.sub(r"\1HOST", value)
    return value


def value_differences(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Each (path, a's value, b's value) where ``a`` and ``b`` differ, in document order."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                yield sub, a[key], MISSING
            elif key not in a:
                yield sub, MISSING, b[key]
            else:
                yield from value_differences(a[key], b[key], sub)
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            sub = f"{path}[{i}]"
            if i >= len(b):
                yield sub, a[i], MISSING
            elif i >= len(a):
                yield sub, MISSING, b[i]
            else:
                yield from value_differences(a[i], b[i], sub)
    elif a != b or type(a) is not type(b):
        yield path, a, b


def diff_records(
    a: Sequence[Record], b: Sequence[Record], *, skip_heartbeats: bool = False
) -> Iterator[Difference]:
    """The differences between the records of two archives, connection pair by pair."""
    conns_a, conns_b = _connections(a), _connections(b)
    for n in range(max(len(conns_a), len(conns_b))):
        ca = conns_a[n] if n < len(conns_a) else None
        cb = conns_b[n] if n < len(conns_b) else None
        if ca is None or cb is None:
            side_a = (ca.index, normalize(ca.record.url)) if ca else None
            side_b = (cb.index, normalize(cb.record.url)) if cb else None
            yield _unpaired(n + 1, None, 0, "connection", side_a, side_b)
            continue
        yield from _diff_connection(n + 1, ca, cb, skip_heartbeats)


def _unpaired(
    n: int,
    direction: Direction | None,
    k: int,
    what: str,
    a: tuple[int, Any] | None,
    b: tuple[int, Any] | None,
) -> Difference:
    """A connection or frame one side has (record index, value) and the other has not."""
    return Difference(
        n,
        direction,
        k,
        a[0] if a else None,
        b[0] if b else None,
        what,
        "",
        a[1] if a else MISSING,
        b[1] if b else MISSING,
    )


def _diff_connection(
    n: int, ca: _Connection, cb: _Connection, skip_heartbeats: bool
) -> Iterator[Difference]:
    qa, qb = ca.record.query, cb.record.query
    for key, va, vb in (("v", qa.v, qb.v), ("encoding", qa.encoding, qb.encoding)):
        if va != vb:
            yield Difference(n, None, 0, ca.index, cb.index, "connection", key, va, vb)
    for direction in (Direction.SERVER, Direction.CLIENT):
        fa, fb = ca.frames[direction], cb.frames[direction]
        if skip_heartbeats:
            fa = [f for f in fa if not f.heartbeat]
            fb = [f for f in fb if not f.heartbeat]
        for k in range(max(len(fa), len(fb))):
            x = fa[k] if k < len(fa) else None
            y = fb[k] if k < len(fb) else None
            if x is None or y is None:
                only = x or y
                assert only is not None
                side_a = (x.index, x.payload) if x else None
                side_b = (y.index, y.payload) if y else None
                yield _unpaired(n, direction, k + 1, only.what, side_a, side_b)
                continue
            what = x.what if x.what == y.what else f"{x.what} / {y.what}"
            for path, va, vb in value_differences(x.payload, y.payload):
                yield Difference(n, direction, k + 1, x.index, y.index, what, path, va, vb)
    close_a = _close_form(ca.close)
    close_b = _close_form(cb.close)
    if close_a != close_b:
        yield Difference(
            n,
            None,
            0,
            ca.close[0] if ca.close else None,
            cb.close[0] if cb.close else None,
            "close",
            "",
            close_a,
            close_b,
        )


def _close_form(close: tuple[int, CloseRecord] | None) -> Any:
    if close is None:
        return "open at end"
    record = close[1]
    by = record.closed_by.name.lower() if record.closed_by is not None else None
    return {"code": record.code, "by": by}
