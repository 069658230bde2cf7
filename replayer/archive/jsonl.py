"""JSON Lines view of an archive: ``export`` writes one JSON object per record with the
payload decoded inline; ``import`` builds an archive from such lines, so fixtures can be
written by hand. Export -> import -> export is lossless: a payload whose exact bytes are
not what the canonical encoding of its decoded form gives also carries ``raw`` (text) or
``raw_b64`` (binary).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from replayer.archive.bounds import MAX_CONTAINER_LEN
from replayer.archive.frame_heads import frame_head
from replayer.archive.header import Header
from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    Headers,
    HttpRecord,
    Query,
    Record,
)
from replayer.errors import CodecError, GatewayError
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.opcodes import Direction

_FLAG_NAMES = {f.name.lower(): f for f in FrameFlag if f.name and f is not FrameFlag.NONE}


def _flags_to_json(flags: FrameFlag) -> list[str]:
    return [name for name, f in _FLAG_NAMES.items() if flags & f]


def _encoding(text: str) -> Encoding:
    try:
        return Encoding.parse(text)
    except CodecError:
        return Encoding.JSON


def _json_form(obj: Any, encoding: Encoding, raw: bytes) -> tuple[Any, bool]:
    """``obj`` as JSON can hold it, and whether importing that gives back ``raw`` exactly.

    Checked through a real JSON round trip: ETF tuples become lists, integer map keys
    become strings, and any such change means the export must carry the raw bytes.
    """
    try:
        jsonable = json.loads(json.dumps(obj, ensure_ascii=False))
    except (TypeError, ValueError):  # e.g. an ETF binary that is not UTF-8
        return None, False
    try:
        return jsonable, encode_payload(jsonable, encoding) == raw
    except CodecError:
        return jsonable, False


def _body_to_json(out: dict[str, Any], key: str, body: bytes) -> None:
    try:
        out[key] = body.decode()
    except UnicodeDecodeError:
        out[key + "_b64"] = base64.b64encode(body).decode()


def _raw_to_json(out: dict[str, Any], raw: bytes) -> None:
    try:
        out["raw"] = raw.decode()
    except UnicodeDecodeError:
        out["raw_b64"] = base64.b64encode(raw).decode()


@dataclass
class Exporter:
    """Turns records into JSON-ready maps; remembers each connection's encoding."""

    encodings: dict[int, Encoding] = field(default_factory=dict)
    voice: set[int] = field(default_factory=set)  # voice connections: binary frames stay raw

    def header(self, header: Header) -> dict[str, Any]:
        return {"kind": "header", **header.to_map()}

    def record(self, record: Record) -> dict[str, Any]:
        match record:
            case FrameRecord():
                return self._frame(record)
            case ConnectionRecord():
                self.encodings[record.conn_id] = _encoding(record.query.encoding)
                self._kind(record.conn_id, record.kind)
                return {
                    "kind": "connection",
                    "conn": record.conn_id,
                    "t_ns": record.t_ns,
                    "url": record.url,
                    "query": {
                        "v": record.query.v,
                        "encoding": record.query.encoding,
                        "compress": record.query.compress,
                    },
                    "headers": [list(h) for h in record.headers],
                    "shard": list(record.shard) if record.shard else None,
                    "resumes": record.resumes,
                    "connection_kind": str(record.kind),
                }
            case ConnectionInfoRecord():
                if record.kind is not None:
                    self._kind(record.conn_id, record.kind)
                return {
                    "kind": "connection_info",
                    "conn": record.conn_id,
                    "t_ns": record.t_ns,
                    "shard": list(record.shard) if record.shard else None,
                    "resumes": record.resumes,
                    "session_id": record.session_id,
                    "connection_kind": None if record.kind is None else str(record.kind),
                }
            case CloseRecord():
                return {
                    "kind": "close",
                    "conn": record.conn_id,
                    "t_ns": record.t_ns,
                    "code": record.code,
                    "reason": record.reason,
                    "closed_by": None
                    if record.closed_by is None
                    else record.closed_by.name.lower(),
                    "clean": record.clean,
                }
            case HttpRecord():
                out: dict[str, Any] = {
                    "kind": "http",
                    "t_ns": record.t_ns,
                    "method": record.method,
                    "host": record.host,
                    "path": record.path,
                    "status": record.status,
                    "request_headers": [list(h) for h in record.request_headers],
                    "response_headers": [list(h) for h in record.response_headers],
                }
                _body_to_json(out, "request_body", record.request_body)
                _body_to_json(out, "response_body", record.response_body)
                return out
        raise TypeError(f"not an archive record: {record!r}")

    def _kind(self, conn_id: int, kind: ConnectionKind) -> None:
        if kind is ConnectionKind.VOICE:
            self.voice.add(conn_id)
        else:
            self.voice.discard(conn_id)

    def _frame(self, frame: FrameRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "frame",
            "conn": frame.conn_id,
            "t_ns": frame.t_ns,
            "dir": frame.direction.label,
            "frame_type": frame.frame_type.name.lower(),
            "op": frame.op,
            "s": frame.s,
            "t": frame.t,
            "wire_size": frame.wire_size,
            "flags": _flags_to_json(frame.flags),
        }
        if frame.error is not None:
            out["error"] = frame.error
        encoding = self.encodings.get(frame.conn_id, Encoding.JSON)
        # A voice binary frame ([seq][op][payload]) is bytes, whatever they look like.
        if frame.frame_type == FrameType.BINARY and frame.conn_id in self.voice:
            out["raw_b64"] = base64.b64encode(frame.payload).decode()
            return out
        if not frame.flags & FrameFlag.UNDECODED:
            try:
                obj = decode_payload(frame.payload, encoding)
            except CodecError:
                pass
            else:
                jsonable, exact = _json_form(obj, encoding, frame.payload)
                if jsonable is not None or obj is None:
                    out["payload"] = jsonable
                if exact:
                    return out
        _raw_to_json(out, frame.payload)
        return out


def _metadata_default(obj: object) -> object:
    if isinstance(obj, bytes):
        return {"$b64": base64.b64encode(obj).decode()}
    raise TypeError(f"{type(obj).__name__} in archive metadata cannot be shown as JSON")


def _metadata_key(key: object) -> object:
    if isinstance(key, bytes):  # JSON keys are text: a bin key is shown as $b64:...
        return "$b64:" + base64.b64encode(key).decode()
    return key if isinstance(key, str | int | float | bool) or key is None else repr(key)


def metadata_json(value: object, *, indent: int | None = None) -> str:
    """Header metadata (any msgpack value, JSON-compatible or not) as one JSON text: bin
    values as ``{"$b64": ...}``, bin map keys as ``"$b64:..."``. Never raises."""
    try:
        return json.dumps(value, ensure_ascii=False, default=_metadata_default, indent=indent)
    except (TypeError, ValueError, RecursionError):
        pass  # a bin (or odd) map key somewhere: convert the keys first

    def keyed(v: object, depth: int) -> object:
        if depth > 200:
            return "..."
        if isinstance(v, dict):
            return {_metadata_key(k): keyed(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [keyed(x, depth + 1) for x in v]
        return v

    try:
        return json.dumps(keyed(value, 0), ensure_ascii=False, default=_metadata_default)
    except (TypeError, ValueError, RecursionError) as exc:
        return json.dumps(f"(metadata not shown: {exc})")


def export_lines(header: Header, records: Iterable[Record]) -> Iterator[str]:
    """One JSON text per record, header first (no newlines inside)."""
    exporter = Exporter()
    head = exporter.header(header)
    metadata = head.pop("metadata")
    yield (
        json.dumps(head, ensure_ascii=False)[:-1] + ', "metadata": ' + metadata_json(metadata) + "}"
    )
    for record in records:
        yield json.dumps(exporter.record(record), ensure_ascii=False)


# --- import ----------------------------------------------------------------------------


class LineError(ValueError):
    """A problem in one JSON line; the caller adds the file and line number."""


# msgpack integers: 64 bits at most (docs/archive-format.md section 1).
INT_MIN, UINT_MAX = -(2**63), 2**64 - 1


def parse_line(line: bytes) -> object:
    """One line of the file as JSON; anything that is not is a ``LineError``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text (byte {exc.start + 1} of the line)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise LineError("not JSON this replayer can read: nested too deeply") from None
    except ValueError as exc:  # an integer of over 4300 digits (int_max_str_digits)
        raise LineError(f"not JSON this replayer can read: {exc}") from None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(key: str, value: str) -> str:
    """``value`` if it can be written as UTF-8 (JSON allows lone surrogates: ``\\ud800``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LineError(f"field {key!r}: a lone surrogate ({_shown(value)}) is not text") from None
    return value


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in obj or (obj[key] is None and default is not ...):
        if default is ...:
            raise LineError(f"missing field {key!r}")
        return default
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kind):
        raise LineError(f"field {key!r}: expected {_kind_name(kind)}, got {_shown(value)}")
    if type(value) is int and not INT_MIN <= value <= UINT_MAX:
        raise LineError(f"field {key!r}: {_shown(value)} does not fit in 64 bits")
    if type(value) is float and not math.isfinite(value):
        raise LineError(f"field {key!r}: expected a finite number, got {value!r}")
    if type(value) is str:
        _text(key, value)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "a bool"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _uint(obj: dict[str, Any], key: str, default: Any = ...) -> Any:
    value = _get(obj, key, int, default)
    if value is not None and value < 0:
        raise LineError(f"field {key!r}: expected a non-negative integer, got {value}")
    return value


def _headers(obj: dict[str, Any], key: str) -> Headers:
    pairs = _get(obj, key, list, [])
    out = []
    for pair in pairs:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        ):
            raise LineError(
                f"field {key!r}: expected [name, value] string pairs, got {_shown(pair)}"
            )
        out.append((_text(key, pair[0]), _text(key, pair[1])))
    return tuple(out)


def _shard(obj: dict[str, Any]) -> tuple[int, int] | None:
    shard = _get(obj, "shard", list, None)
    if shard is None:
        return None
    if not (len(shard) == 2 and all(type(x) is int for x in shard) and 0 <= shard[0] < shard[1]):
        raise LineError(f"field 'shard': expected [shard_id, num_shards], got {shard!r}")
    return (shard[0], shard[1])


def _b64(text: str, key: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise LineError(f"field {key!r}: not valid base64") from None


def _body(obj: dict[str, Any], key: str) -> bytes:
    if key + "_b64" in obj:
        return _b64(_get(obj, key + "_b64", str), key + "_b64")
    body = obj.get(key)
    if body is None:
        return b""
    try:
        if isinstance(body, str):
            return body.encode()
        # A hand-written fixture may give a JSON body as an object or list.
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise LineError(f"field {key!r}: a lone surrogate is not text") from None


_CONNECTION_KINDS = {str(k): k for k in ConnectionKind}


def _connection_kind(obj: dict[str, Any], default: ConnectionKind | None) -> ConnectionKind | None:
    name = _get(obj, "connection_kind", str, None)
    if name is None:
        return default
    kind = _CONNECTION_KINDS.get(name)
    if kind is None:
        raise LineError(
            f"field 'connection_kind': expected {' or '.join(_CONNECTION_KINDS)}, got {name!r}"
        )
    return kind


@dataclass
class Importer:
    """Builds records from JSON maps (exported or hand-written)."""

    encodings: dict[int, Encoding] = field(default_factory=dict)
    kinds: dict[int, ConnectionKind] = field(default_factory=dict)
    last_t_ns: int = 0
    next_conn_id: int = 1

    def _t_ns(self, obj: dict[str, Any]) -> int:
        if "t_ns" in obj:
            t_ns: int = _get(obj, "t_ns", int)
        elif "t_ms" in obj:
            t_ms = _get(obj, "t_ms", (int, float))
            t_ns = round(t_ms * 1_000_000)
            if t_ns > UINT_MAX:
                raise LineError(f"field 't_ms': {t_ms!r} ms does not fit in 64 bits of ns")
        else:
            return self.last_t_ns  # hand-written: "right after the previous record"
        if t_ns < 0:
            raise LineError(f"field 't_ns': negative offset {t_ns}")
        self.last_t_ns = max(self.last_t_ns, t_ns)
        return t_ns

    def record(self, obj: object) -> Record:
        if not isinstance(obj, dict):
            raise LineError(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("kind")
        if kind == "frame":
            return self._frame(obj)
        if kind == "connection":
            return self._connection(obj)
        if kind == "connection_info":
            info = ConnectionInfoRecord(
                conn_id=_uint(obj, "conn"),
                t_ns=self._t_ns(obj),
                shard=_shard(obj),
                resumes=_uint(obj, "resumes", None),
                session_id=_get(obj, "session_id", str, None),
                kind=_connection_kind(obj, None),
            )
            if info.kind is not None:
                self.kinds[info.conn_id] = info.kind
            return info
        if kind == "close":
            closed_by = _get(obj, "closed_by", str, None)
            if closed_by not in (None, "client", "server"):
                raise LineError(
                    f"field 'closed_by': expected client, server or null, got {closed_by!r}"
                )
            return CloseRecord(
                conn_id=_uint(obj, "conn"),
                t_ns=self._t_ns(obj),
                code=_get(obj, "code", int, None),
                reason=_get(obj, "reason", str, ""),
                closed_by=None if closed_by is None else Closer[closed_by.upper()],
                clean=_get(obj, "clean", bool, True),
            )
        if kind == "http":
            return HttpRecord(
                t_ns=self._t_ns(obj),
                method=_get(obj, "method", str, "GET"),
                host=_get(obj, "host", str, "discord.com"),
                path=_get(obj, "path", str),
                status=_get(obj, "status", int, 200),
                request_headers=_headers(obj, "request_headers"),
                response_headers=_headers(obj, "response_headers"),
                request_body=_body(obj, "request_body"),
                response_body=_body(obj, "response_body"),
            )
        raise LineError(
            "field 'kind': expected connection, connection_info, frame, close or http, "
            f"got {kind!r}"
        )

    def _connection(self, obj: dict[str, Any]) -> ConnectionRecord:
        conn_id = _uint(obj, "conn", self.next_conn_id)
        self.next_conn_id = max(self.next_conn_id, conn_id + 1)
        url = _get(obj, "url", str, "wss://gateway.discord.gg/?v=10&encoding=json")
        if "query" in obj:
            q = _get(obj, "query", dict)
            query = Query(
                v=_get(q, "v", int, None),
                encoding=_get(q, "encoding", str, "json"),
                compress=_get(q, "compress", str, None),
            )
        else:
            query = Query.from_url(url)
        try:
            self.encodings[conn_id] = Encoding.parse(query.encoding)
        except CodecError as exc:
            raise LineError(f"field 'query.encoding': {exc}") from None
        kind = _connection_kind(obj, ConnectionKind.GATEWAY) or ConnectionKind.GATEWAY
        self.kinds[conn_id] = kind
        return ConnectionRecord(
            conn_id=conn_id,
            t_ns=self._t_ns(obj),
            url=url,
            query=query,
            headers=_headers(obj, "headers"),
            shard=_shard(obj),
            resumes=_uint(obj, "resumes", None),
            kind=kind,
        )

    def _frame(self, obj: dict[str, Any]) -> FrameRecord:
        conn_id = _uint(obj, "conn")
        encoding = self.encodings.get(conn_id)
        if encoding is None:
            raise LineError(f"field 'conn': connection {conn_id} has no connection line before it")
        direction_name = _get(obj, "dir", str)
        try:
            direction = Direction[direction_name.upper()]
        except KeyError:
            raise LineError(
                f"field 'dir': expected client or server, got {direction_name!r}"
            ) from None
        flags = FrameFlag.NONE
        for name in _get(obj, "flags", list, []):
            if type(name) is not str or name not in _FLAG_NAMES:
                raise LineError(
                    f"field 'flags': unknown flag {_shown(name)} (known: {', '.join(_FLAG_NAMES)})"
                )
            flags |= _FLAG_NAMES[name]
        if "raw_b64" in obj:
            raw = _b64(_get(obj, "raw_b64", str), "raw_b64")
        elif "raw" in obj:
            raw = _get(obj, "raw", str).encode()
        elif "payload" in obj:
            try:
                raw = encode_payload(obj["payload"], encoding)
            except CodecError as exc:
                raise LineError(f"field 'payload': {exc}") from None
        else:
            raise LineError("a frame needs 'payload', 'raw' or 'raw_b64'")
        default_type = "text" if encoding is Encoding.JSON else "binary"
        frame_type_name = _get(obj, "frame_type", str, default_type)
        try:
            frame_type = FrameType[frame_type_name.upper()]
        except KeyError:
            raise LineError(
                f"field 'frame_type': expected text or binary, got {frame_type_name!r}"
            ) from None
        op = s = t = None
        if not flags & FrameFlag.UNDECODED:
            try:
                op, s, t = frame_head(
                    self.kinds.get(conn_id, ConnectionKind.GATEWAY),
                    raw,
                    binary=frame_type is FrameType.BINARY,
                    from_server=direction is Direction.SERVER,
                    encoding=encoding,
                )
            except GatewayError as exc:
                raise LineError(
                    f"field 'payload': {exc} (flag the frame 'undecoded' to keep it raw)"
                ) from None
            for key, value in (("op", op), ("s", s)):
                if value is not None and not INT_MIN <= value <= UINT_MAX:
                    raise LineError(
                        f"field 'payload': {key} {_shown(value)} does not fit in 64 bits"
                    )
            for key, actual in (("op", op), ("s", s), ("t", t)):
                if obj.get(key) is not None and obj[key] != actual:
                    raise LineError(f"field {key!r}: {obj[key]!r} but the payload says {actual!r}")
        return FrameRecord(
            conn_id=conn_id,
            t_ns=self._t_ns(obj),
            direction=direction,
            frame_type=frame_type,
            payload=raw,
            op=op,
            s=s,
            t=t,
            wire_size=_uint(obj, "wire_size", len(raw)),
            flags=flags,
            error=_get(obj, "error", str, None),
        )


_MAX_METADATA_DEPTH = 64


def _check_metadata(value: object, where: str, depth: int = 0) -> None:
    """What msgpack and the reader's limits (archive/bounds.py) take, checked up front."""
    if type(value) is int and not INT_MIN <= value <= UINT_MAX:
        raise LineError(f"field {where!r}: {_shown(value)} does not fit in 64 bits")
    if type(value) is str:
        _text(where, value)
    elif isinstance(value, dict | list):
        if depth >= _MAX_METADATA_DEPTH:
            raise LineError(f"field 'metadata': nested deeper than {_MAX_METADATA_DEPTH}")
        if len(value) > MAX_CONTAINER_LEN:
            raise LineError(
                f"field {where!r}: {len(value)} elements; an archive allows "
                f"{MAX_CONTAINER_LEN} at most"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                _text(where, key)
                _check_metadata(item, f"{where}.{key}", depth + 1)
        else:
            for i, item in enumerate(value):
                _check_metadata(item, f"{where}[{i}]", depth + 1)


def header_from_json(obj: dict[str, Any]) -> Header:
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise LineError(f"field 'metadata': expected an object, got {_shown(metadata)}")
    _check_metadata(metadata, "metadata")
    created = obj.get("created_unix_ns")
    kwargs: dict[str, Any] = {"metadata": metadata}
    if type(created) is int:
        if not INT_MIN <= created <= UINT_MAX:
            raise LineError(f"field 'created_unix_ns': {_shown(created)} does not fit in 64 bits")
        kwargs["created_unix_ns"] = created
    if isinstance(obj.get("tool"), str):
        kwargs["tool"] = _text("tool", obj["tool"])
    return Header(**kwargs)
