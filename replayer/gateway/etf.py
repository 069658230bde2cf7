"""Erlang External Term Format (ETF), the subset Discord's gateway uses (``encoding=etf``).

Discord docs: Events > Gateway > Encoding and Compression > Using ETF Encoding. Layouts follow
Erlang's "External Term Format" chapter (erts/doc). The encoder writes what Discord's
``erlpack`` packer writes, byte for byte, for every value erlpack can pack.

Decoding maps terms to Python values like this:

* atoms ``nil``/``null`` -> ``None``, ``true``/``false`` -> ``bool``, other atoms -> ``str``;
* BINARY_EXT -> ``str`` when it is valid UTF-8 (Discord's strings), else ``bytes``;
* STRING_EXT (Erlang's compact "list of bytes") -> ``str``, one character per byte
  (Latin-1: each byte is a code point). discord.js's erlpack also yields a string; the
  Python erlpack yields a list of ints;
* tuples -> ``tuple`` (Discord sends none; kept distinct from lists so re-encoding is exact);
* LIST_EXT -> ``list`` (the tail must be NIL: improper lists are an error), MAP_EXT -> ``dict``.

Encoding follows erlpack's packer: ``None``/``True``/``False`` -> SMALL_ATOM_EXT (as erlpack,
not OTP 26's SMALL_ATOM_UTF8_EXT); ``int`` -> SMALL_INTEGER_EXT (0..255), INTEGER_EXT (int32),
else SMALL_BIG_EXT/LARGE_BIG_EXT (also past erlpack's 64-bit limit); ``float`` -> NEW_FLOAT_EXT;
``str``/``bytes`` -> BINARY_EXT; ``list`` -> LIST_EXT (empty: NIL_EXT); ``tuple`` ->
SMALL/LARGE_TUPLE_EXT (as erlpack); mappings -> MAP_EXT.

Malformed input always raises :class:`~replayer.errors.CodecError` naming the byte offset.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Any

from replayer.errors import CodecError

VERSION = 131

NEW_FLOAT_EXT = 70
COMPRESSED = 80
SMALL_INTEGER_EXT = 97
INTEGER_EXT = 98
FLOAT_EXT = 99
ATOM_EXT = 100
SMALL_TUPLE_EXT = 104
LARGE_TUPLE_EXT = 105
NIL_EXT = 106
STRING_EXT = 107
LIST_EXT = 108
BINARY_EXT = 109
SMALL_BIG_EXT = 110
LARGE_BIG_EXT = 111
MAP_EXT = 116
SMALL_ATOM_EXT = 115
ATOM_UTF8_EXT = 118
SMALL_ATOM_UTF8_EXT = 119

# Nesting deeper than this is refused (Discord payloads nest a dozen levels at most).
MAX_DEPTH = 256
# A COMPRESSED term may not claim to inflate to more than this.
MAX_UNCOMPRESSED = 64 * 1024 * 1024

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_F64 = struct.Struct(">d")

_ATOMS: dict[str, Any] = {"nil": None, "null": None, "true": True, "false": False}
_ATOM_TAGS = frozenset({SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT, ATOM_EXT, ATOM_UTF8_EXT})
_TAG_NAMES: dict[int, str] = {
    SMALL_ATOM_EXT: "SMALL_ATOM_EXT",
    SMALL_ATOM_UTF8_EXT: "SMALL_ATOM_UTF8_EXT",
    ATOM_EXT: "ATOM_EXT",
    ATOM_UTF8_EXT: "ATOM_UTF8_EXT",
    SMALL_BIG_EXT: "SMALL_BIG_EXT",
    LARGE_BIG_EXT: "LARGE_BIG_EXT",
    SMALL_TUPLE_EXT: "SMALL_TUPLE_EXT",
    LARGE_TUPLE_EXT: "LARGE_TUPLE_EXT",
}


def _error(what: str, pos: int) -> CodecError:
    return CodecError(f"ETF: {what} at byte {pos}")


def _truncated(what: str, pos: int, size: int, total: int) -> CodecError:
    return _error(f"truncated {what}: needs {size} bytes, {max(total - pos, 0)} left", pos)


def etf_decode(data: bytes) -> Any:
    """Decode one complete ETF term (version byte first). Trailing bytes are an error."""
    data = bytes(data)
    if not data:
        raise _error("empty input", 0)
    if data[0] != VERSION:
        raise _error(f"bad version byte {data[0]} (expected {VERSION})", 0)
    if len(data) > 1 and data[1] == COMPRESSED:
        return _decode_compressed(data)
    value, pos = _decode_term(data, 1)
    if pos != len(data):
        raise _error(f"{len(data) - pos} trailing bytes after the term", pos)
    return value


def _decode_compressed(data: bytes) -> Any:
    # <<131, 80, UncompressedSize:32, ZlibData>>: the whole term, zlib-compressed.
    if len(data) < 6:
        raise _truncated("COMPRESSED size", 2, 4, len(data))
    (size,) = _U32.unpack_from(data, 2)
    if size > MAX_UNCOMPRESSED:
        raise _error(f"COMPRESSED term claims {size} bytes (limit {MAX_UNCOMPRESSED})", 2)
    inflater = zlib.decompressobj()
    try:
        inner = inflater.decompress(data[6:], size + 1)
    except zlib.error as exc:
        raise _error(f"corrupt COMPRESSED zlib data ({exc})", 6) from None
    if len(inner) > size:
        raise _error(f"COMPRESSED term inflates to more than the {size} bytes it claims", 6)
    if not inflater.eof:
        raise _error(f"truncated COMPRESSED zlib data ({len(inner)} of {size} bytes)", 6)
    if len(inner) < size:
        raise _error(f"COMPRESSED term inflates to {len(inner)} bytes, not {size}", 6)
    if inflater.unused_data:
        raise _error(f"{len(inflater.unused_data)} trailing bytes after the zlib data", 6)
    value, pos = _decode_term(inner, 0)
    if pos != len(inner):
        raise _error(f"{len(inner) - pos} trailing bytes inside the COMPRESSED term", 6 + pos)
    return value


def _decode_term(data: bytes, start: int) -> tuple[Any, int]:
    """Decode the term at ``start``; return it and the offset just after it.

    A closure over ``data`` keeps the hot path to local-variable lookups; map keys and
    values that are binaries or small integers (most of a Discord payload) are decoded
    inline, without a call.
    """
    total = len(data)
    u32 = _U32.unpack_from

    def binary(pos: int) -> tuple[str | bytes, int]:
        # pos is at the BINARY_EXT tag.
        if pos + 5 > total:
            raise _truncated("BINARY_EXT length", pos + 1, 4, total)
        end = pos + 5 + u32(data, pos + 1)[0]
        if end > total:
            raise _truncated("BINARY_EXT", pos + 5, end - pos - 5, total)
        chunk = data[pos + 5 : end]
        try:
            return chunk.decode("utf-8"), end
        except UnicodeDecodeError:
            return chunk, end

    def term(pos: int, depth: int) -> tuple[Any, int]:
        if pos >= total:
            raise _error("truncated input: expected a tag", pos)
        tag = data[pos]
        if tag == BINARY_EXT:
            return binary(pos)
        if tag == SMALL_INTEGER_EXT:
            if pos + 2 > total:
                raise _truncated("SMALL_INTEGER_EXT", pos + 1, 1, total)
            return data[pos + 1], pos + 2
        if tag == MAP_EXT:
            if pos + 5 > total:
                raise _truncated("MAP_EXT arity", pos + 1, 4, total)
            arity = u32(data, pos + 1)[0]
            if arity * 2 > total - pos - 5:
                raise _error(f"MAP_EXT arity {arity} exceeds the bytes left", pos)
            if depth >= MAX_DEPTH:
                raise _error(f"terms nested deeper than {MAX_DEPTH}", pos)
            pos += 5
            result: dict[Any, Any] = {}
            for _ in range(arity):
                key_pos = pos
                if pos < total and data[pos] == BINARY_EXT:
                    key, pos = binary(pos)
                else:
                    key, pos = term(pos, depth + 1)
                value: Any
                if pos < total and data[pos] == BINARY_EXT:
                    value, pos = binary(pos)
                elif pos + 1 < total and data[pos] == SMALL_INTEGER_EXT:
                    value = data[pos + 1]
                    pos += 2
                else:
                    value, pos = term(pos, depth + 1)
                try:
                    result[key] = value
                except TypeError:
                    raise _error(f"unhashable map key ({type(key).__name__})", key_pos) from None
            return result, pos
        if tag in _ATOM_TAGS:
            return atom(tag, pos)
        if tag == LIST_EXT:
            if pos + 5 > total:
                raise _truncated("LIST_EXT length", pos + 1, 4, total)
            count = u32(data, pos + 1)[0]
            # Each element takes at least one byte, and the NIL tail one more.
            if count + 1 > total - pos - 5:
                raise _error(f"LIST_EXT length {count} exceeds the bytes left", pos)
            if depth >= MAX_DEPTH:
                raise _error(f"terms nested deeper than {MAX_DEPTH}", pos)
            pos += 5
            items = []
            for _ in range(count):
                item, pos = term(pos, depth + 1)
                items.append(item)
            if pos >= total:
                raise _truncated("LIST_EXT tail", pos, 1, total)
            if data[pos] != NIL_EXT:
                raise _error("improper list (tail is not NIL_EXT)", pos)
            return items, pos + 1
        if tag == NIL_EXT:
            return [], pos + 1
        if tag == INTEGER_EXT:
            if pos + 5 > total:
                raise _truncated("INTEGER_EXT", pos + 1, 4, total)
            return _I32.unpack_from(data, pos + 1)[0], pos + 5
        if tag in (SMALL_BIG_EXT, LARGE_BIG_EXT):
            return big(tag, pos)
        if tag == NEW_FLOAT_EXT:
            if pos + 9 > total:
                raise _truncated("NEW_FLOAT_EXT", pos + 1, 8, total)
            return _F64.unpack_from(data, pos + 1)[0], pos + 9
        if tag in (SMALL_TUPLE_EXT, LARGE_TUPLE_EXT):
            return tuple_(tag, pos, depth)
        if tag == FLOAT_EXT:
            # 31 bytes: the float printed with "%.20e", NUL-padded (pre-R11B Erlang).
            if pos + 32 > total:
                raise _truncated("FLOAT_EXT", pos + 1, 31, total)
            text = data[pos + 1 : pos + 32].rstrip(b"\x00")
            try:
                return float(text.decode("ascii")), pos + 32
            except (UnicodeDecodeError, ValueError):
                raise _error(f"FLOAT_EXT is not a number: {text!r}", pos + 1) from None
        if tag == STRING_EXT:
            if pos + 3 > total:
                raise _truncated("STRING_EXT length", pos + 1, 2, total)
            end = pos + 3 + _U16.unpack_from(data, pos + 1)[0]
            if end > total:
                raise _truncated("STRING_EXT", pos + 3, end - pos - 3, total)
            # Each byte is one character code (0-255): Latin-1.
            return data[pos + 3 : end].decode("latin-1"), end
        if tag == COMPRESSED:
            raise _error("COMPRESSED tag inside a term (only allowed at the top)", pos)
        raise _error(f"unsupported tag {tag}", pos)

    def atom(tag: int, pos: int) -> tuple[Any, int]:
        name = _TAG_NAMES[tag]
        if tag in (SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT):
            if pos + 2 > total:
                raise _truncated(f"{name} length", pos + 1, 1, total)
            begin = pos + 2
            end = begin + data[pos + 1]
        else:
            if pos + 3 > total:
                raise _truncated(f"{name} length", pos + 1, 2, total)
            begin = pos + 3
            end = begin + _U16.unpack_from(data, pos + 1)[0]
        if end > total:
            raise _truncated(name, begin, end - begin, total)
        # ATOM_EXT and SMALL_ATOM_EXT are Latin-1; the *_UTF8_EXT tags are UTF-8.
        codec = "utf-8" if tag in (SMALL_ATOM_UTF8_EXT, ATOM_UTF8_EXT) else "latin-1"
        try:
            text = data[begin:end].decode(codec)
        except UnicodeDecodeError:
            raise _error(f"{name} is not valid UTF-8", begin) from None
        return _ATOMS.get(text, text), end

    def big(tag: int, pos: int) -> tuple[int, int]:
        name = _TAG_NAMES[tag]
        if tag == SMALL_BIG_EXT:
            if pos + 3 > total:
                raise _truncated(f"{name} header", pos + 1, 2, total)
            size = data[pos + 1]
            sign_pos = pos + 2
        else:
            if pos + 6 > total:
                raise _truncated(f"{name} header", pos + 1, 5, total)
            size = u32(data, pos + 1)[0]
            sign_pos = pos + 5
        sign = data[sign_pos]
        if sign > 1:
            raise _error(f"{name} sign byte is {sign}, not 0 or 1", sign_pos)
        begin = sign_pos + 1
        if begin + size > total:
            raise _truncated(name, begin, size, total)
        magnitude = int.from_bytes(data[begin : begin + size], "little")
        return (-magnitude if sign else magnitude), begin + size

    def tuple_(tag: int, pos: int, depth: int) -> tuple[tuple[Any, ...], int]:
        name = _TAG_NAMES[tag]
        if tag == SMALL_TUPLE_EXT:
            if pos + 2 > total:
                raise _truncated(f"{name} arity", pos + 1, 1, total)
            arity = data[pos + 1]
            begin = pos + 2
        else:
            if pos + 5 > total:
                raise _truncated(f"{name} arity", pos + 1, 4, total)
            arity = u32(data, pos + 1)[0]
            begin = pos + 5
        if arity > total - begin:
            raise _error(f"{name} arity {arity} exceeds the bytes left", pos)
        if depth >= MAX_DEPTH:
            raise _error(f"terms nested deeper than {MAX_DEPTH}", pos)
        elements = []
        for _ in range(arity):
            element, begin = term(begin, depth + 1)
            elements.append(element)
        return tuple(elements), begin

    return term(start, 0)


def etf_encode(obj: Any) -> bytes:
    """Encode ``obj`` as erlpack's packer does. Unsupported types raise CodecError."""
    out = bytearray((VERSION,))
    _pack(obj, out, 0)
    return bytes(out)


def _pack(obj: Any, out: bytearray, depth: int) -> None:
    # Order matters: bool is an int, and str/int subclasses (enums) encode as their base.
    if obj is None:
        out += b"s\x03nil"  # erlpack writes atoms as SMALL_ATOM_EXT
    elif obj is True:
        out += b"s\x04true"
    elif obj is False:
        out += b"s\x05false"
    elif isinstance(obj, str):
        try:
            encoded = obj.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CodecError(f"ETF: cannot encode string: {exc}") from None
        out.append(BINARY_EXT)
        out += _U32.pack(len(encoded))
        out += encoded
    elif isinstance(obj, int):
        _pack_int(obj, out)
    elif isinstance(obj, float):
        out.append(NEW_FLOAT_EXT)
        out += _F64.pack(obj)
    elif isinstance(obj, Mapping):
        if depth >= MAX_DEPTH:
            raise CodecError(f"ETF: cannot encode values nested deeper than {MAX_DEPTH}")
        out.append(MAP_EXT)
        out += _U32.pack(len(obj))
        for key, value in obj.items():
            _pack(key, out, depth + 1)
            _pack(value, out, depth + 1)
    elif isinstance(obj, list):
        if not obj:
            out.append(NIL_EXT)
            return
        if depth >= MAX_DEPTH:
            raise CodecError(f"ETF: cannot encode values nested deeper than {MAX_DEPTH}")
        out.append(LIST_EXT)
        out += _U32.pack(len(obj))
        for item in obj:
            _pack(item, out, depth + 1)
        out.append(NIL_EXT)
    elif isinstance(obj, tuple):
        if depth >= MAX_DEPTH:
            raise CodecError(f"ETF: cannot encode values nested deeper than {MAX_DEPTH}")
        if len(obj) < 256:
            out.append(SMALL_TUPLE_EXT)
            out.append(len(obj))
        else:
            out.append(LARGE_TUPLE_EXT)
            out += _U32.pack(len(obj))
        for item in obj:
            _pack(item, out, depth + 1)
    elif isinstance(obj, bytes | bytearray):
        out.append(BINARY_EXT)
        out += _U32.pack(len(obj))
        out += obj
    else:
        raise CodecError(f"ETF: cannot encode a value of type {type(obj).__name__}")


def _pack_int(value: int, out: bytearray) -> None:
    if 0 <= value <= 255:
        out.append(SMALL_INTEGER_EXT)
        out.append(value)
    elif -(2**31) <= value < 2**31:
        out.append(INTEGER_EXT)
        out += _I32.pack(value)
    else:
        magnitude = abs(value)
        size = (magnitude.bit_length() + 7) // 8
        if size < 256:
            out.append(SMALL_BIG_EXT)
            out.append(size)
        else:
            out.append(LARGE_BIG_EXT)
            out += _U32.pack(size)
        out.append(1 if value < 0 else 0)
        out += magnitude.to_bytes(size, "little")
