"""The pure-Python ETF codec: round trips, Erlang's documented bytes, erlpack, errors."""

from __future__ import annotations

import contextlib
import math
import struct
import zlib
from typing import Any

import erlpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.errors import CodecError
from replayer.gateway.etf import MAX_DEPTH, etf_decode, etf_encode

# JSON-like values: what gateway payloads are made of (ints of any size, no NaN).
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)

# What erlpack can pack: its ints stop at C long / unsigned long.
ERLPACK_MIN_INT = -(2**63)
ERLPACK_MAX_INT = 2**64 - 1
erlpack_scalars = (
    st.none()
    | st.booleans()
    | st.integers(ERLPACK_MIN_INT, ERLPACK_MAX_INT)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
erlpack_values = st.recursive(
    erlpack_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


def as_erlpack_unpacks(value: Any) -> Any:
    """What erlpack.unpack returns for ``value``: binaries come back as bytes."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list):
        return [as_erlpack_unpacks(item) for item in value]
    if isinstance(value, tuple):
        return tuple(as_erlpack_unpacks(item) for item in value)
    if isinstance(value, dict):
        return {as_erlpack_unpacks(k): as_erlpack_unpacks(v) for k, v in value.items()}
    return value


# --- round trips ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(json_like)
def test_round_trip_json_like_values(value: Any) -> None:
    assert etf_decode(etf_encode(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(2**4000), max_value=2**4000))
def test_round_trip_integers_of_any_size(value: int) -> None:
    assert etf_decode(etf_encode(value)) == value


def test_round_trip_keeps_types() -> None:
    value = {"t": (1, "a"), "b": b"\xff\xfe", "n": None, "f": -0.0, "big": 2**2048 + 1}
    decoded = etf_decode(etf_encode(value))
    assert decoded == value
    assert isinstance(decoded["t"], tuple)
    assert isinstance(decoded["b"], bytes)
    assert math.copysign(1.0, decoded["f"]) == -1.0


def test_large_tuple_and_large_big() -> None:
    long_tuple = tuple(range(300))
    assert etf_encode(long_tuple)[1] == 105  # LARGE_TUPLE_EXT
    assert etf_decode(etf_encode(long_tuple)) == long_tuple
    huge = -(2 ** (8 * 300))
    assert etf_encode(huge)[1] == 111  # LARGE_BIG_EXT
    assert etf_decode(etf_encode(huge)) == huge


def test_valid_utf8_bytes_decode_as_str() -> None:
    # Binaries are Discord's strings: valid UTF-8 becomes str, anything else stays bytes.
    assert etf_decode(etf_encode(b"abc")) == "abc"
    assert etf_decode(etf_encode(b"\xc3")) == b"\xc3"


# --- documented bytes: term_to_binary/1 --------------------------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (bytes([131, 97, 1]), 1),  # term_to_binary(1)
        (bytes([131, 106]), []),  # term_to_binary([])
        (bytes([131, 98, 255, 255, 255, 255]), -1),  # term_to_binary(-1)
        (bytes([131, 98, 0, 0, 1, 0]), 256),
        (bytes([131, 110, 5, 0, 0, 0, 0, 0, 1]), 2**32),  # term_to_binary(1 bsl 32)
        (bytes([131, 110, 1, 1, 1]), -1),  # SMALL_BIG_EXT -1 (not canonical, still valid)
        (bytes([131, 119, 3]) + b"nil", None),  # OTP 26+: atoms as SMALL_ATOM_UTF8_EXT
        (bytes([131, 119, 4]) + b"true", True),
        (bytes([131, 119, 5]) + b"false", False),
        (bytes([131, 100, 0, 4]) + b"null", None),  # old ATOM_EXT
        (bytes([131, 118, 0, 3]) + b"foo", "foo"),  # ATOM_UTF8_EXT
        (bytes([131, 115, 3]) + b"foo", "foo"),  # SMALL_ATOM_EXT
        (bytes([131, 119, 2]) + "é".encode(), "é"),
        (bytes([131, 107, 0, 3]) + b"abc", "abc"),  # term_to_binary("abc"): STRING_EXT
        (bytes([131, 107, 0, 1, 233]), "é"),  # STRING_EXT bytes are Latin-1 code points
        (bytes([131, 108, 0, 0, 0, 2, 97, 1, 97, 2, 106]), [1, 2]),  # [1, 2] as LIST_EXT
        (bytes([131, 104, 2, 97, 1, 97, 2]), (1, 2)),  # {1, 2}
        (bytes([131, 105, 0, 0, 0, 1, 106]), ([],)),  # LARGE_TUPLE_EXT {[]}
        (bytes([131, 109, 0, 0, 0, 2]) + b"op", "op"),  # <<"op">>
        (
            bytes([131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 2]) + b"op" + bytes([97, 1]),
            {"op": 1},  # #{<<"op">> => 1}
        ),
        (bytes([131, 70]) + struct.pack(">d", 1.5), 1.5),  # NEW_FLOAT_EXT
        (bytes([131, 99]) + b"1.50000000000000000000e+00".ljust(31, b"\0"), 1.5),  # FLOAT_EXT
    ],
)
def test_documented_byte_vectors(data: bytes, value: Any) -> None:
    decoded = etf_decode(data)
    assert decoded == value
    assert type(decoded) is type(value)


def test_compressed_term() -> None:
    # term_to_binary(T, [compressed]) = <<131, 80, Size:32, ZlibData>>
    inner = etf_encode({"op": 10, "d": {"heartbeat_interval": 41250}})[1:]
    data = bytes([131, 80]) + struct.pack(">I", len(inner)) + zlib.compress(inner)
    assert etf_decode(data) == {"op": 10, "d": {"heartbeat_interval": 41250}}


@pytest.mark.parametrize(
    ("value", "data"),
    [
        (1, bytes([131, 97, 1])),
        ([], bytes([131, 106])),
        ({"op": 1}, bytes([131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 2]) + b"op" + bytes([97, 1])),
        (None, bytes([131, 115, 3]) + b"nil"),  # erlpack: SMALL_ATOM_EXT, not ..._UTF8_EXT
        (True, bytes([131, 115, 4]) + b"true"),
        (-1, bytes([131, 98, 255, 255, 255, 255])),
        (2**31, bytes([131, 110, 4, 0, 0, 0, 0, 128])),
        ("é", bytes([131, 109, 0, 0, 0, 2]) + "é".encode()),
        ((1, 2), bytes([131, 104, 2, 97, 1, 97, 2])),
    ],
)
def test_encoded_bytes(value: Any, data: bytes) -> None:
    assert etf_encode(value) == data


# --- against erlpack (Discord's own packer) ---------------------------------------------


@settings(max_examples=250, deadline=None)
@given(erlpack_values)
def test_agrees_with_erlpack(value: Any) -> None:
    packed = erlpack.pack(value)
    assert etf_encode(value) == packed  # byte for byte
    assert etf_decode(packed) == value
    assert erlpack.unpack(etf_encode(value)) == as_erlpack_unpacks(value)


def test_erlpack_differences() -> None:
    # Where we deliberately differ from the Python erlpack; see the module docstring.
    big = 2**64
    with pytest.raises(OverflowError):
        erlpack.pack(big)
    assert etf_decode(etf_encode(big)) == big
    string_ext = bytes([131, 107, 0, 2]) + b"hi"
    assert erlpack.unpack(string_ext) == [104, 105]
    assert etf_decode(string_ext) == "hi"
    assert erlpack.unpack(etf_encode("hi")) == b"hi"
    assert etf_decode(etf_encode("hi")) == "hi"


# --- errors -----------------------------------------------------------------------------


def codec_error(data: bytes) -> str:
    with pytest.raises(CodecError) as info:
        etf_decode(data)
    return str(info.value)


@settings(max_examples=100, deadline=None)
@given(json_like, st.data())
def test_every_truncation_is_a_codec_error(value: Any, data: st.DataObject) -> None:
    encoded = etf_encode(value)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    codec_error(encoded[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_never_escapes_as_another_exception(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        etf_decode(bytes([131]) + data)


def test_error_messages_name_what_and_where() -> None:
    assert codec_error(b"") == "ETF: empty input at byte 0"
    assert "bad version byte 130" in codec_error(bytes([130, 97, 1]))
    assert codec_error(bytes([131, 200])) == "ETF: unsupported tag 200 at byte 1"
    message = codec_error(bytes([131, 109, 0, 0, 0, 5]) + b"ab")
    assert message == "ETF: truncated BINARY_EXT: needs 5 bytes, 2 left at byte 6"
    assert "trailing bytes" in codec_error(bytes([131, 97, 1, 0]))
    assert "at byte 3" in codec_error(bytes([131, 97, 1, 0]))
    assert "truncated INTEGER_EXT" in codec_error(bytes([131, 98, 0]))
    assert "expected a tag at byte 1" in codec_error(bytes([131]))


def test_absurd_lengths_are_refused_without_allocating() -> None:
    assert "exceeds the bytes left" in codec_error(bytes([131, 108, 255, 255, 255, 255, 106]))
    assert "exceeds the bytes left" in codec_error(bytes([131, 116, 255, 255, 255, 255]))
    assert "exceeds the bytes left" in codec_error(bytes([131, 105, 255, 255, 255, 255]))
    assert "truncated BINARY_EXT" in codec_error(bytes([131, 109, 255, 255, 255, 255]))
    assert "truncated LARGE_BIG_EXT" in codec_error(bytes([131, 111, 255, 255, 255, 255, 0]))
    compressed = bytes([131, 80, 255, 255, 255, 255]) + zlib.compress(b"a\x01")
    assert "claims 4294967295 bytes" in codec_error(compressed)


def test_bad_terms() -> None:
    assert "improper list" in codec_error(bytes([131, 108, 0, 0, 0, 1, 97, 1, 97, 2]))
    assert "sign byte" in codec_error(bytes([131, 110, 1, 2, 1]))
    assert "not valid UTF-8" in codec_error(bytes([131, 119, 1, 0xFF]))
    assert "FLOAT_EXT is not a number" in codec_error(bytes([131, 99]) + b"x" * 31)
    # a list as a map key: #{[] => 1}
    assert "unhashable map key (list) at byte 6" in codec_error(
        bytes([131, 116, 0, 0, 0, 1, 106, 97, 1])
    )
    assert "COMPRESSED tag inside" in codec_error(bytes([131, 104, 1, 80]))


def test_corrupt_compressed_term() -> None:
    inner = etf_encode([1, 2, 3])[1:]
    header = bytes([131, 80]) + struct.pack(">I", len(inner))
    assert "corrupt COMPRESSED zlib data" in codec_error(header + b"\x78\x9c\xff\xff")
    assert "truncated COMPRESSED" in codec_error(header + zlib.compress(inner)[:-6])
    wrong_size = bytes([131, 80]) + struct.pack(">I", len(inner) + 1) + zlib.compress(inner)
    assert "not " in codec_error(wrong_size)


def test_deep_nesting_is_refused() -> None:
    deep = (
        bytes([131]) + bytes([108, 0, 0, 0, 1]) * (MAX_DEPTH + 1) + bytes([106]) * (MAX_DEPTH + 2)
    )
    assert "nested deeper than" in codec_error(deep)
    ok = bytes([131]) + bytes([108, 0, 0, 0, 1]) * MAX_DEPTH + bytes([106]) * (MAX_DEPTH + 1)
    assert etf_decode(ok) is not None


def test_encode_errors() -> None:
    with pytest.raises(CodecError, match="cannot encode a value of type set"):
        etf_encode({1, 2})
    with pytest.raises(CodecError, match="cannot encode string"):
        etf_encode("\ud800")
    nested: list[Any] = []
    cursor = nested
    for _ in range(MAX_DEPTH + 1):
        cursor.append([])
        cursor = cursor[0]
    with pytest.raises(CodecError, match="nested deeper"):
        etf_encode(nested)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(CodecError, match="nested deeper"):
        etf_encode(cyclic)


def test_encode_accepts_int_and_str_subclasses() -> None:
    from replayer.gateway.opcodes import Opcode

    assert etf_encode({"op": Opcode.HELLO}) == erlpack.pack({"op": 10})
