"""Frames <-> payloads for one connection: FrameDecoder and FrameEncoder."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.gateway.codec import DecodedMessage, FrameDecoder, FrameEncoder, read_json_head
from replayer.gateway.compression import (
    Compression,
    ZlibStreamCompressor,
    ZstdStreamCompressor,
    deflate_payload,
)
from replayer.gateway.encoding import Encoding, encode_payload
from replayer.gateway.etf import etf_encode
from replayer.gateway.payload import Payload, parse_payload

HELLO = Payload(op=10, d={"heartbeat_interval": 41250})
ALL_MODES = [(e, c) for e in Encoding for c in Compression]

payloads = st.builds(
    Payload,
    op=st.integers(0, 50),
    d=st.none()
    | st.integers()
    | st.text(max_size=30)
    | st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
    s=st.none() | st.integers(0, 2**31),
    t=st.none() | st.text(max_size=20),
)


def only(messages: list[DecodedMessage]) -> DecodedMessage:
    assert len(messages) == 1
    return messages[0]


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "compression"), ALL_MODES)
@settings(max_examples=25, deadline=None)
@given(batch=st.lists(payloads, min_size=1, max_size=5))
def test_round_trip(encoding: Encoding, compression: Compression, batch: list[Payload]) -> None:
    encoder = FrameEncoder(encoding, compression)
    decoder = FrameDecoder(encoding, compression)
    for payload in batch:
        frame, is_binary = encoder.encode(payload)
        assert is_binary is (compression is not Compression.NONE or encoding is Encoding.ETF)
        assert isinstance(frame, bytes) is is_binary
        message = only(decoder.feed(frame))
        assert message.payload == payload
        assert message.error is None
        assert message.raw == encode_payload(payload.to_obj(), encoding)
        assert message.wire_size == len(frame if isinstance(frame, bytes) else frame.encode())


@settings(max_examples=25, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=5))
def test_round_trip_per_payload_zlib(batch: list[Payload]) -> None:
    encoder = FrameEncoder(Encoding.JSON, Compression.NONE, deflate_payloads=True)
    decoder = FrameDecoder(Encoding.JSON, Compression.NONE)
    for payload in batch:
        frame, is_binary = encoder.encode(payload)
        assert is_binary
        assert isinstance(frame, bytes)
        message = only(decoder.feed(frame))
        assert message.payload == payload
        assert message.wire_size == len(frame)


# --- decoding ---------------------------------------------------------------------------


def test_text_and_binary_json() -> None:
    decoder = FrameDecoder(Encoding.JSON, Compression.NONE)
    text = only(decoder.feed('{"op":10,"d":{"heartbeat_interval":41250}}'))
    binary = only(decoder.feed(b'{"op":10,"d":{"heartbeat_interval":41250}}'))
    assert text.payload == binary.payload == HELLO
    assert text.raw == binary.raw == b'{"op":10,"d":{"heartbeat_interval":41250}}'


def test_unknown_opcode_survives() -> None:
    message = only(FrameDecoder(Encoding.JSON, Compression.NONE).feed('{"op":99,"d":[1]}'))
    assert message.payload == Payload(op=99, d=[1])


def test_etf_frame() -> None:
    raw = etf_encode({"op": 0, "d": {"id": 2**60}, "s": 3, "t": "READY"})
    message = only(FrameDecoder(Encoding.ETF, Compression.NONE).feed(raw))
    assert message.payload == Payload(op=0, d={"id": 2**60}, s=3, t="READY")


def test_per_payload_zlib_is_inflated() -> None:
    raw = b'{"op":0,"d":{},"s":1,"t":"READY"}'
    frame = zlib.compress(raw)
    message = only(FrameDecoder(Encoding.JSON, Compression.NONE).feed(frame))
    assert message.raw == raw
    assert message.payload == Payload(op=0, d={}, s=1, t="READY")
    assert message.wire_size == len(frame)


def test_per_payload_inflation_can_be_turned_off() -> None:
    frame = deflate_payload(b'{"op":1}')
    decoder = FrameDecoder(Encoding.JSON, Compression.NONE, inflate_payloads=False)
    message = only(decoder.feed(frame))
    assert message.payload is None
    assert message.raw == frame
    assert message.error is not None
    assert message.error.startswith("JSON: not valid UTF-8")


def test_corrupt_per_payload_zlib_keeps_the_frame() -> None:
    frame = deflate_payload(b'{"op":1}')[:-2]
    message = only(FrameDecoder(Encoding.JSON, Compression.NONE).feed(frame))
    assert message == DecodedMessage(frame, None, message.error, len(frame))
    assert message.error is not None
    assert message.error.startswith("zlib payload: truncated")


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b'{"op":', "JSON: Expecting value at char 6"),
        (b"[1, 2]", "payload is a list, not a map"),
        (b'{"d":1}', "payload 'op' is None, not an integer"),
        (b'{"op":1,"s":"x"}', "payload 's' is 'x', not an integer or null"),
    ],
)
def test_undecodable_payload_keeps_raw(frame: bytes, error: str) -> None:
    message = only(FrameDecoder(Encoding.JSON, Compression.NONE).feed(frame))
    assert message == DecodedMessage(frame, None, error, len(frame))


def test_zlib_stream_message_over_several_frames() -> None:
    frame = ZlibStreamCompressor().compress(b'{"op":10,"d":{"heartbeat_interval":41250}}')
    pieces = [frame[:3], frame[3:7], frame[7:]]
    decoder = FrameDecoder(Encoding.JSON, Compression.ZLIB_STREAM)
    assert decoder.feed(pieces[0]) == []
    assert decoder.feed(pieces[1]) == []
    message = only(decoder.feed(pieces[2]))
    assert message.payload == HELLO
    assert message.wire_size == len(frame)


def test_text_frame_on_a_compressed_connection_is_not_decompressed() -> None:
    compressor = ZlibStreamCompressor()
    decoder = FrameDecoder(Encoding.JSON, Compression.ZLIB_STREAM)
    first = compressor.compress(b'{"op":11}')
    assert decoder.feed(first[:5]) == []
    assert only(decoder.feed('{"op":1,"d":5}')).payload == Payload(op=1, d=5)
    assert only(decoder.feed(first[5:])).payload == Payload(op=11)


@pytest.mark.parametrize(
    ("compression", "compressor"),
    [
        (Compression.ZLIB_STREAM, ZlibStreamCompressor),
        (Compression.ZSTD_STREAM, ZstdStreamCompressor),
    ],
)
def test_corrupt_stream_keeps_every_byte(compression: Compression, compressor: Any) -> None:
    stream = compressor()
    decoder = FrameDecoder(Encoding.JSON, compression)
    assert only(decoder.feed(stream.compress(b'{"op":11}'))).payload == Payload(op=11)
    second = stream.compress(b'{"op":0,"d":"' + b"x" * 200 + b'"}')
    corrupt = bytes([second[0] ^ 0xFF]) + second[1:]
    if compression is Compression.ZLIB_STREAM:
        assert decoder.feed(corrupt[:2]) == []  # buffered: the error comes with a later byte
        rest = corrupt[2:]
    else:
        rest = corrupt
    message = only(decoder.feed(rest))
    assert message.payload is None
    assert message.raw == corrupt
    assert message.wire_size == len(corrupt)
    assert message.error is not None
    assert message.error.startswith(f"{compression}: ")
    assert decoder.broken == message.error
    # Later frames come back as they are, with the reason.
    later = stream.compress(b'{"op":11}')
    after = only(decoder.feed(later))
    assert after == DecodedMessage(later, None, after.error, len(later))
    assert after.error == f"stream broken by an earlier frame: {message.error}"
    # Text frames are not part of the stream and still decode.
    assert only(decoder.feed('{"op":11}')).payload == Payload(op=11)


# --- encoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "compression"), ALL_MODES)
def test_frame_kind(encoding: Encoding, compression: Compression) -> None:
    frame, is_binary = FrameEncoder(encoding, compression).encode(HELLO)
    if encoding is Encoding.JSON and compression is Compression.NONE:
        assert frame == '{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}'
        assert not is_binary
    else:
        assert is_binary
        assert isinstance(frame, bytes)


def test_encode_mapping_as_is() -> None:
    frame, _ = FrameEncoder(Encoding.JSON, Compression.NONE).encode({"op": 11})
    assert frame == '{"op":11}'


def test_encode_raw_that_is_not_utf8_goes_binary() -> None:
    assert FrameEncoder(Encoding.JSON, Compression.NONE).encode_raw(b"\xff") == (b"\xff", True)


def test_encoder_keeps_one_stream() -> None:
    encoder = FrameEncoder(Encoding.JSON, Compression.ZLIB_STREAM)
    first, _ = encoder.encode({"op": 11})
    second, _ = encoder.encode({"op": 11})
    assert isinstance(first, bytes)
    assert isinstance(second, bytes)
    assert first != second  # the second message refers back to the first
    inflater = zlib.decompressobj()
    assert inflater.decompress(first + second) == b'{"op":11}{"op":11}'


# --- head-only reading of large JSON payloads (the recorder's fast path) ---------------

_KEY_ORDERS = [("t", "s", "op"), ("op", "s", "t"), ("s", "op", "t"), ("op", "t", "s")]
event_names = st.none() | st.from_regex(r"[A-Z_]{1,30}", fullmatch=True)


def _json_in_order(order: tuple[str, ...], values: dict[str, Any], d: Any, sep: str) -> bytes:
    head = "".join(f'"{k}"{sep}:{sep}{json.dumps(values[k])},{sep}' for k in order)
    return ("{" + sep + head + f'"d":{sep}' + json.dumps(d) + sep + "}").encode()


@settings(max_examples=200, deadline=None)
@given(
    order=st.sampled_from(_KEY_ORDERS),
    op=st.integers(-(2**40), 2**40),
    s=st.none() | st.integers(0, 2**53),
    t=event_names,
    d=st.none() | st.integers() | st.text() | st.dictionaries(st.text(), st.text()),
    sep=st.sampled_from(["", " ", "\n  "]),
)
def test_json_head_agrees_with_a_full_parse(
    order: tuple[str, ...], op: int, s: int | None, t: str | None, d: Any, sep: str
) -> None:
    raw = _json_in_order(order, {"op": op, "s": s, "t": t}, d, sep)
    full = parse_payload(json.loads(raw))
    assert read_json_head(raw) == (full.op, full.s, full.t)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=80) | st.text(max_size=80).map(str.encode))
def test_json_head_never_raises(raw: bytes) -> None:
    head = read_json_head(raw)
    if head is not None:  # then of the right types
        op, s, t = head
        assert type(op) is int
        assert s is None or type(s) is int
        assert t is None or t.isascii()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"op":0,"d":{}}',  # s and t missing
        b'{"op":0,"s":1,"t":"X"}',  # no d
        b'{"d":{},"op":0,"s":1,"t":"X"}',  # d first
        b'{"op":0,"op":1,"t":null,"d":1}',  # a key twice
        b'{"op":"0","s":1,"t":null,"d":1}',  # op a string
        b'{"op":0,"s":1,"t":2,"d":1}',  # t a number
        b'{"op":0,"s":1,"t":"A\\u0042","d":1}',  # an escape in t
        b'{"op":0,"s":1,"t":null,"d":1',  # cut short
        b'[{"op":0,"s":1,"t":null,"d":1}]',  # not an object
    ],
)
def test_json_head_refuses_other_shapes(raw: bytes) -> None:
    assert read_json_head(raw) is None


def test_head_only_decoding_of_large_payloads() -> None:
    big = {"op": 0, "s": 7, "t": "GUILD_CREATE", "d": {"members": ["m" * 10] * 500}}
    ready = {"t": "READY", "s": 1, "op": 0, "d": {"session_id": "abc", "pad": "x" * 6000}}
    small = {"op": 0, "s": 8, "t": "MESSAGE_CREATE", "d": {"content": "hi"}}
    decoder = FrameDecoder(
        Encoding.JSON, Compression.NONE, head_only_bytes=4096, full_events=frozenset({"READY"})
    )
    frames = [json.dumps(x, separators=(",", ":")) for x in (big, ready, small)]
    got = [only(decoder.feed(frame)) for frame in frames]
    assert [m.head_only for m in got] == [True, False, False]
    assert got[0].payload == Payload(op=0, d=None, s=7, t="GUILD_CREATE")
    assert got[1].payload is not None
    assert got[1].payload.d["session_id"] == "abc"
    assert got[2].payload == Payload(op=0, d={"content": "hi"}, s=8, t="MESSAGE_CREATE")
    assert [m.raw for m in got] == [f.encode() for f in frames]
    # Off by default, and never for ETF.
    assert not only(FrameDecoder(Encoding.JSON, Compression.NONE).feed(frames[0])).head_only
    etf = FrameDecoder(Encoding.ETF, Compression.NONE, head_only_bytes=1)
    assert not only(etf.feed(etf_encode(big))).head_only


def test_a_large_payload_with_another_head_is_parsed_in_full() -> None:
    decoder = FrameDecoder(Encoding.JSON, Compression.NONE, head_only_bytes=16)
    message = only(decoder.feed('{"d":{"x":1},"op":0,"s":3,"t":"X"}'))
    assert not message.head_only
    assert message.payload == Payload(op=0, d={"x": 1}, s=3, t="X")


@pytest.mark.parametrize("text", ['{"op":1,"d":5}', "not json", '{"t":"\u00e9","op":0,"d":1}'])
def test_feed_text_is_feed_of_the_decoded_string(text: str) -> None:
    by_bytes = FrameDecoder(Encoding.JSON, Compression.NONE).feed_text(text.encode())
    by_str = FrameDecoder(Encoding.JSON, Compression.NONE).feed(text)
    assert by_bytes == by_str


def test_a_text_frame_that_is_not_utf8_is_kept_raw() -> None:
    message = only(FrameDecoder(Encoding.JSON, Compression.NONE).feed_text(b'{"op":1,"d":"\xff"}'))
    assert message.payload is None
    assert message.raw == b'{"op":1,"d":"\xff"}'
    assert message.error is not None
    assert "UTF-8" in message.error
