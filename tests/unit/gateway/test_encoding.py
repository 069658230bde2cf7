"""Payload encodings: parsing the query value, JSON and ETF encode/decode."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.errors import CodecError
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, Encoding.JSON), ("", Encoding.JSON), ("json", Encoding.JSON), ("etf", Encoding.ETF)],
)
def test_parse(text: str | None, expected: Encoding) -> None:
    assert Encoding.parse(text) is expected


def test_parse_unknown_names_the_value() -> None:
    with pytest.raises(CodecError, match="unknown encoding 'msgpack'"):
        Encoding.parse("msgpack")


def test_values_are_the_query_strings() -> None:
    assert str(Encoding.ETF) == "etf"
    assert f"{Encoding.JSON}" == "json"


@settings(max_examples=150, deadline=None)
@given(json_values, st.sampled_from(list(Encoding)))
def test_round_trip(value: Any, encoding: Encoding) -> None:
    assert decode_payload(encode_payload(value, encoding), encoding) == value


def test_json_is_compact_utf8() -> None:
    raw = encode_payload({"op": 0, "d": {"content": "héllo ✓"}}, Encoding.JSON)
    assert raw == '{"op":0,"d":{"content":"héllo ✓"}}'.encode()


def test_etf_uses_etf() -> None:
    assert encode_payload({"op": 1}, Encoding.ETF)[0] == 131


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"op":', "JSON: Expecting value at char 6"),
        (b"\xff{}", "JSON: not valid UTF-8 at byte 0"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON: nested too deeply"),
    ],
)
def test_json_decode_errors(raw: bytes, message: str) -> None:
    with pytest.raises(CodecError) as info:
        decode_payload(raw, Encoding.JSON)
    assert str(info.value) == message


def test_etf_decode_errors_are_codec_errors() -> None:
    with pytest.raises(CodecError, match="ETF: "):
        decode_payload(b'{"op":1}', Encoding.ETF)


def test_encode_errors() -> None:
    with pytest.raises(CodecError, match="JSON: cannot encode"):
        encode_payload({"x": object()}, Encoding.JSON)
    with pytest.raises(CodecError, match="JSON: cannot encode"):
        encode_payload("\ud800", Encoding.JSON)
    with pytest.raises(CodecError, match="ETF: cannot encode"):
        encode_payload({"x": object()}, Encoding.ETF)
