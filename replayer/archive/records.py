"""Archive record types and their msgpack rows (format version 2).

Records are plain slotted dataclasses, to be treated as immutable: a frozen dataclass
costs ~9x more to build (4.7 vs 0.5 us on CPython 3.12), which would dominate reading.

Every record after the header is a msgpack array whose first element is its kind.
The rows are positional for speed; docs/archive-format.md lists each position.
``from_row`` validates a row and names the field at fault in the error.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from replayer.errors import ArchiveError
from replayer.gateway.opcodes import Direction
from replayer.gateway.url import GatewayQuery

Query = GatewayQuery

Headers = tuple[tuple[str, str], ...]


class RecordKind(enum.IntEnum):
    CONNECTION = 1
    FRAME = 2
    CLOSE = 3
    HTTP = 4
    CONNECTION_INFO = 5


class ConnectionKind(enum.StrEnum):
    """Which WebSocket a connection is: the main gateway, or a voice gateway (Topics > Voice
    Connections), whose frames follow the voice opcode table (``replayer.voice``)."""

    GATEWAY = "gateway"
    VOICE = "voice"


class FrameType(enum.IntEnum):
    """WebSocket frame opcode of the message (RFC 6455 section 5.2)."""

    TEXT = 1
    BINARY = 2


class FrameFlag(enum.IntFlag):
    NONE = 0
    UNDECODED = 1  # payload holds bytes that could not be decoded; op, s and t are null
    INJECTED = 2  # sent by the replayer (a fault), not part of the recorded session
    REDACTED = 4  # secrets were replaced in the payload before it was written
    REWRITTEN = 8  # the client received a rewritten copy of this payload (recorder proxy)


class Closer(enum.IntEnum):
    CLIENT = 0
    SERVER = 1


@dataclass(slots=True)
class ConnectionRecord:
    conn_id: int
    t_ns: int
    url: str
    query: Query = field(default_factory=Query)
    headers: Headers = ()
    shard: tuple[int, int] | None = None
    resumes: int | None = None
    kind: ConnectionKind = ConnectionKind.GATEWAY


@dataclass(slots=True)
class ConnectionInfoRecord:
    """Facts about a connection learned after it opened (from IDENTIFY or RESUME)."""

    conn_id: int
    t_ns: int
    shard: tuple[int, int] | None = None
    resumes: int | None = None
    session_id: str | None = None
    kind: ConnectionKind | None = None  # learned from the voice handshake (recorder)


@dataclass(slots=True)
class FrameRecord:
    conn_id: int
    t_ns: int
    direction: Direction
    frame_type: FrameType
    payload: bytes
    op: int | None
    s: int | None
    t: str | None
    wire_size: int
    flags: FrameFlag = FrameFlag.NONE
    error: str | None = None


@dataclass(slots=True)
class CloseRecord:
    conn_id: int
    t_ns: int
    code: int | None
    reason: str = ""
    closed_by: Closer | None = None
    clean: bool = True


@dataclass(slots=True)
class HttpRecord:
    t_ns: int
    method: str
    host: str
    path: str  # path and query, as requested
    status: int
    request_headers: Headers = ()
    response_headers: Headers = ()
    request_body: bytes = b""
    response_body: bytes = b""


Record = ConnectionRecord | ConnectionInfoRecord | FrameRecord | CloseRecord | HttpRecord


# Plain ints in rows: packing an IntEnum goes through a slower path in msgpack.
_CONNECTION, _FRAME, _CLOSE, _HTTP, _CONNECTION_INFO = (int(k) for k in RecordKind)


_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63


def _fits(x: int | None) -> bool:
    # Comparisons, not ``x in range(...)``: that is fast for an int only, and walks the
    # whole range for an IntEnum (an Opcode), which froze the replay's transcript.
    return x is None or _INT64_MIN <= x < _INT64_END


def fitted(record: Record) -> Record | None:
    """A version of ``record`` that msgpack can hold, when it cannot only because of an
    integer over 64 bits a peer sent: a frame's ``op`` or ``s`` (the frame is then kept
    as ``UNDECODED``, bytes intact, with the reason), a shard, a query's ``v``. None when
    nothing like that is wrong."""
    if isinstance(record, FrameRecord):
        if _fits(record.op) and _fits(record.s):
            return None
        return replace(
            record, op=None, s=None, t=None, flags=record.flags | FrameFlag.UNDECODED,
            error="op or s does not fit in 64 bits",
        )  # fmt: skip
    if isinstance(record, ConnectionInfoRecord) and record.shard is not None:
        if all(map(_fits, record.shard)):
            return None
        return replace(record, shard=None)
    if isinstance(record, ConnectionRecord):
        query = record.query.archived()
        return None if query is record.query else replace(record, query=query)
    return None


def _headers_row(headers: Headers) -> list[list[str]]:
    return [[k, v] for k, v in headers]


def _query_row(q: Query) -> dict[str, Any]:
    return {"v": q.v, "encoding": q.encoding, "compress": q.compress}


def to_row(record: Record) -> list[Any]:
    """The msgpack row of ``record``."""
    if type(record) is FrameRecord:  # the hot path of writing
        r = record
        return [
            _FRAME, r.conn_id, r.t_ns, int(r.direction), int(r.frame_type), r.payload,
            r.op, r.s, r.t, r.wire_size, int(r.flags), r.error,
        ]  # fmt: skip
    match record:
        case FrameRecord():
            r = record
            return [
                _FRAME,
                r.conn_id,
                r.t_ns,
                int(r.direction),
                int(r.frame_type),
                r.payload,
                r.op,
                r.s,
                r.t,
                r.wire_size,
                int(r.flags),
                r.error,
            ]
        case ConnectionRecord():
            c = record
            return [
                _CONNECTION,
                c.conn_id,
                c.t_ns,
                c.url,
                _query_row(c.query),
                _headers_row(c.headers),
                list(c.shard) if c.shard else None,
                c.resumes,
                str(c.kind),
            ]
        case ConnectionInfoRecord():
            i = record
            return [
                _CONNECTION_INFO,
                i.conn_id,
                i.t_ns,
                list(i.shard) if i.shard else None,
                i.resumes,
                i.session_id,
                None if i.kind is None else str(i.kind),
            ]
        case CloseRecord():
            x = record
            closed_by = None if x.closed_by is None else int(x.closed_by)
            return [_CLOSE, x.conn_id, x.t_ns, x.code, x.reason, closed_by, x.clean]
        case HttpRecord():
            h = record
            return [
                _HTTP,
                h.t_ns,
                h.method,
                h.host,
                h.path,
                h.status,
                _headers_row(h.request_headers),
                _headers_row(h.response_headers),
                h.request_body,
                h.response_body,
            ]
    raise TypeError(f"not an archive record: {record!r}")


# --- validation ------------------------------------------------------------------------


def _bad(field_name: str, what: str, value: object) -> ArchiveError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ArchiveError(f"expected {what}, got {shown}", field=field_name)


def _int(name: str, v: object) -> int:
    if type(v) is not int:
        raise _bad(name, "an integer", v)
    return v


def _uint(name: str, v: object) -> int:
    if type(v) is not int or v < 0:
        raise _bad(name, "a non-negative integer", v)
    return v


def _opt_int(name: str, v: object) -> int | None:
    return None if v is None else _int(name, v)


def _str(name: str, v: object) -> str:
    if type(v) is not str:
        raise _bad(name, "a string", v)
    return v


def _opt_str(name: str, v: object) -> str | None:
    return None if v is None else _str(name, v)


def _bytes(name: str, v: object) -> bytes:
    if type(v) is not bytes:
        raise _bad(name, "binary data", v)
    return v


def _headers(name: str, v: object) -> Headers:
    if not isinstance(v, list | tuple):
        raise _bad(name, "a list of [name, value] pairs", v)
    out = []
    for pair in v:
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and type(pair[0]) is str
            and type(pair[1]) is str
        ):
            raise _bad(name, "a [name, value] pair of strings", pair)
        out.append((pair[0], pair[1]))
    return tuple(out)


def _shard(name: str, v: object) -> tuple[int, int] | None:
    if v is None:
        return None
    if (
        isinstance(v, list | tuple)
        and len(v) == 2
        and type(v[0]) is int
        and type(v[1]) is int
        and 0 <= v[0] < v[1]
    ):
        return (v[0], v[1])
    raise _bad(name, "null or [shard_id, num_shards] with 0 <= shard_id < num_shards", v)


def _query(name: str, v: object) -> Query:
    if not isinstance(v, dict):
        raise _bad(name, "a map", v)
    return Query(
        v=_opt_int(f"{name}.v", v.get("v")),
        encoding=_str(f"{name}.encoding", v.get("encoding", "json")),
        compress=_opt_str(f"{name}.compress", v.get("compress")),
    )


def _enum[E: enum.IntEnum](name: str, cls: type[E], v: object) -> E:
    try:
        if type(v) is not int:
            raise TypeError
        return cls(v)
    except (ValueError, TypeError):
        raise _bad(name, f"one of {[int(m) for m in cls]}", v) from None


_KNOWN_FLAGS = int(
    FrameFlag.UNDECODED | FrameFlag.INJECTED | FrameFlag.REDACTED | FrameFlag.REWRITTEN
)


def _flags(v: object) -> FrameFlag:
    if type(v) is not int or v < 0 or v & ~_KNOWN_FLAGS:
        raise _bad("frame.flags", f"flag bits within {_KNOWN_FLAGS:#x}", v)
    return FrameFlag(v)


def _frame_checked(row: Sequence[Any]) -> FrameRecord:
    _, conn, t_ns, direction, ftype, payload, op, s, t, wire, flags, error = row
    if type(payload) is not bytes:
        raise _bad("frame.payload", "binary data", payload)
    return FrameRecord(
        conn_id=_uint("frame.conn_id", conn),
        t_ns=_uint("frame.t_ns", t_ns),
        direction=_enum("frame.direction", Direction, direction),
        frame_type=_enum("frame.frame_type", FrameType, ftype),
        payload=payload,
        op=_opt_int("frame.op", op),
        s=_opt_int("frame.s", s),
        t=_opt_str("frame.t", t),
        wire_size=_uint("frame.wire_size", wire),
        flags=_flags(flags),
        error=_opt_str("frame.error", error),
    )


_CONNECTION_KINDS = {str(k): k for k in ConnectionKind}


def _connection_kind(name: str, v: object) -> ConnectionKind:
    kind = _CONNECTION_KINDS.get(v) if type(v) is str else None
    if kind is None:
        raise _bad(name, f"one of {sorted(_CONNECTION_KINDS)}", v)
    return kind


def _connection(row: Sequence[Any]) -> ConnectionRecord:
    _, conn, t_ns, url, query, headers, shard, resumes, kind = row
    return ConnectionRecord(
        conn_id=_uint("connection.conn_id", conn),
        t_ns=_uint("connection.t_ns", t_ns),
        url=_str("connection.url", url),
        query=_query("connection.query", query),
        headers=_headers("connection.headers", headers),
        shard=_shard("connection.shard", shard),
        resumes=None if resumes is None else _uint("connection.resumes", resumes),
        kind=_connection_kind("connection.kind", kind),
    )


def _connection_info(row: Sequence[Any]) -> ConnectionInfoRecord:
    _, conn, t_ns, shard, resumes, session_id, kind = row
    return ConnectionInfoRecord(
        conn_id=_uint("connection_info.conn_id", conn),
        t_ns=_uint("connection_info.t_ns", t_ns),
        shard=_shard("connection_info.shard", shard),
        resumes=None if resumes is None else _uint("connection_info.resumes", resumes),
        session_id=_opt_str("connection_info.session_id", session_id),
        kind=None if kind is None else _connection_kind("connection_info.kind", kind),
    )


def _close(row: Sequence[Any]) -> CloseRecord:
    _, conn, t_ns, code, reason, closed_by, clean = row
    if type(clean) is not bool:
        raise _bad("close.clean", "true or false", clean)
    return CloseRecord(
        conn_id=_uint("close.conn_id", conn),
        t_ns=_uint("close.t_ns", t_ns),
        code=_opt_int("close.code", code),
        reason=_str("close.reason", reason),
        closed_by=None if closed_by is None else _enum("close.closed_by", Closer, closed_by),
        clean=clean,
    )


def _http(row: Sequence[Any]) -> HttpRecord:
    _, t_ns, method, host, path, status, req_h, resp_h, req_b, resp_b = row
    return HttpRecord(
        t_ns=_uint("http.t_ns", t_ns),
        method=_str("http.method", method),
        host=_str("http.host", host),
        path=_str("http.path", path),
        status=_int("http.status", status),
        request_headers=_headers("http.request_headers", req_h),
        response_headers=_headers("http.response_headers", resp_h),
        request_body=_bytes("http.request_body", req_b),
        response_body=_bytes("http.response_body", resp_b),
    )


_DIRECTIONS = {int(d): d for d in Direction}
_FRAME_TYPES = {int(f): f for f in FrameType}
_FLAG_VALUES = {v: FrameFlag(v) for v in range(_KNOWN_FLAGS + 1)}


def _frame_fast(row: Sequence[Any]) -> FrameRecord | None:
    """The record of a well-formed frame row (one combined check), else None."""
    _, conn, t_ns, direction, ftype, payload, op, s, t, wire, flags, error = row
    d = _DIRECTIONS.get(direction) if type(direction) is int else None
    f = _FRAME_TYPES.get(ftype) if type(ftype) is int else None
    fl = _FLAG_VALUES.get(flags) if type(flags) is int else None
    if (
        d is not None
        and f is not None
        and fl is not None
        and type(conn) is int
        and conn >= 0
        and type(t_ns) is int
        and t_ns >= 0
        and type(payload) is bytes
        and (op is None or type(op) is int)
        and (s is None or type(s) is int)
        and (t is None or type(t) is str)
        and type(wire) is int
        and wire >= 0
        and (error is None or type(error) is str)
    ):
        return FrameRecord(conn, t_ns, d, f, payload, op, s, t, wire, fl, error)
    return None


def frame_from_row(row: Sequence[Any]) -> FrameRecord:
    """The hot path of reading: one combined check, then the record. Anything odd goes
    through :func:`_frame_checked`, which names the field at fault."""
    return _frame_fast(row) or _frame_checked(row)


FRAME_FIELDS = (
    "conn_id", "t_ns", "direction", "frame_type", "payload", "op", "s", "t", "wire_size",
    "flags", "error",
)  # fmt: skip


def _python_fast_frame(row: object) -> FrameRecord | None:
    if type(row) is list and len(row) == 12 and type(row[0]) is int and row[0] == _FRAME:
        return _frame_fast(row)
    return None


def _load_fast_frame() -> Callable[[object], FrameRecord | None]:
    """The C accelerator's ``frame_from_row`` (replayer/archive/_fastrows.c) when it was
    built and accepts FrameRecord's layout, else the same check in Python. Setting
    ``REPLAYER_PURE_PYTHON=1`` forces the Python one."""
    if os.environ.get("REPLAYER_PURE_PYTHON"):
        return _python_fast_frame
    try:
        from replayer.archive import _fastrows
    except ImportError:  # built without a C compiler
        return _python_fast_frame
    try:
        _fastrows.configure(FrameRecord, FRAME_FIELDS, _DIRECTIONS, _FRAME_TYPES, _FLAG_VALUES)
    except (TypeError, ValueError):  # another FrameRecord layout (another Python?)
        return _python_fast_frame
    fast: Callable[[object], FrameRecord | None] = _fastrows.frame_from_row
    return fast


# row -> its FrameRecord when it is a well-formed frame row, else None (then from_row).
fast_frame_from_row = _load_fast_frame()


_PARSERS: dict[int, tuple[int, str, Callable[[Sequence[Any]], Record]]] = {
    RecordKind.FRAME: (12, "frame", frame_from_row),
    RecordKind.CONNECTION: (9, "connection", _connection),
    RecordKind.CLOSE: (7, "close", _close),
    RecordKind.HTTP: (10, "http", _http),
    RecordKind.CONNECTION_INFO: (7, "connection_info", _connection_info),
}


def from_row(row: object) -> Record:
    """Validate one msgpack row and build its record; errors name the field."""
    if type(row) is not list or not row:  # (an ExtType is a tuple: not a record)
        raise _bad("kind", "a non-empty array (a record)", row)
    spec = _PARSERS.get(row[0]) if type(row[0]) is int else None
    if spec is None:
        raise _bad("kind", f"a record kind in {sorted(int(k) for k in _PARSERS)}", row[0])
    arity, name, parse = spec
    if len(row) != arity:
        raise ArchiveError(f"a {name} record has {arity} fields, this one {len(row)}", field="kind")
    return parse(row)
