"""Transport compression (zlib-stream, zstd-stream) and per-payload zlib."""

from __future__ import annotations

import itertools
import random
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.errors import CodecError
from replayer.gateway.compression import (
    ZLIB_SUFFIX,
    Compression,
    IdentityCompressor,
    IdentityDecompressor,
    ZlibStreamCompressor,
    ZlibStreamDecompressor,
    ZstdStreamCompressor,
    ZstdStreamDecompressor,
    deflate_payload,
    inflate_payload,
    looks_like_zlib,
    make_compressor,
    make_decompressor,
)

messages_strategy = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets, no empty pieces, and no piece but the last ending
    in the suffix (that would end the message there, for clients as for us)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    points = [p for p in points if p in (0, len(data)) or not data[:p].endswith(ZLIB_SUFFIX)]
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, Compression.NONE),
        ("", Compression.NONE),
        ("none", Compression.NONE),
        ("zlib-stream", Compression.ZLIB_STREAM),
        ("zstd-stream", Compression.ZSTD_STREAM),
    ],
)
def test_parse(text: str | None, expected: Compression) -> None:
    assert Compression.parse(text) is expected


def test_parse_unknown_names_the_value() -> None:
    with pytest.raises(CodecError, match="unknown compression 'gzip'"):
        Compression.parse("gzip")


def test_factories() -> None:
    assert isinstance(make_decompressor(Compression.NONE), IdentityDecompressor)
    assert isinstance(make_decompressor(Compression.ZLIB_STREAM), ZlibStreamDecompressor)
    assert isinstance(make_decompressor(Compression.ZSTD_STREAM), ZstdStreamDecompressor)
    assert isinstance(make_compressor(Compression.NONE), IdentityCompressor)
    assert isinstance(make_compressor(Compression.ZLIB_STREAM), ZlibStreamCompressor)
    assert isinstance(make_compressor(Compression.ZSTD_STREAM), ZstdStreamCompressor)


def test_identity() -> None:
    assert make_decompressor(Compression.NONE).feed(b'{"op":1}') == [b'{"op":1}']
    assert make_compressor(Compression.NONE).compress(b"x") == b"x"


# --- zlib-stream ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(messages_strategy, st.lists(st.lists(st.integers(0, 10_000), max_size=4), max_size=8))
def test_zlib_stream_round_trip_split_frames(messages: list[bytes], cuts: list[list[int]]) -> None:
    compressor = ZlibStreamCompressor()
    decompressor = ZlibStreamDecompressor()
    got: list[bytes] = []
    for index, message in enumerate(messages):
        frame = compressor.compress(message)
        assert frame.endswith(ZLIB_SUFFIX)
        pieces = split(frame, cuts[index] if index < len(cuts) else [])
        for piece in pieces[:-1]:
            assert decompressor.feed(piece) == []
        got.extend(decompressor.feed(pieces[-1]))
    assert got == messages


def test_zlib_stream_message_completes_only_at_the_suffix() -> None:
    frame = ZlibStreamCompressor().compress(b'{"op":10}')
    decompressor = ZlibStreamDecompressor()
    assert decompressor.feed(frame[:-4]) == []
    assert decompressor.feed(frame[-4:-2]) == []
    assert decompressor.feed(frame[-2:]) == [b'{"op":10}']


def test_zlib_stream_corrupt_data_breaks_the_stream() -> None:
    decompressor = ZlibStreamDecompressor()
    with pytest.raises(CodecError, match=r"zlib-stream: corrupt data \(Error -3"):
        decompressor.feed(b"\x78\x9c\xff\xff\xff\x00\x00\xff\xff")
    assert decompressor.broken is not None
    good = ZlibStreamCompressor().compress(b"{}")
    with pytest.raises(CodecError, match="zlib-stream: stream already broken: corrupt data"):
        decompressor.feed(good)


def test_zlib_stream_corrupt_mid_stream() -> None:
    compressor = ZlibStreamCompressor()
    decompressor = ZlibStreamDecompressor()
    assert decompressor.feed(compressor.compress(b"one")) == [b"one"]
    second = bytearray(compressor.compress(b"two" * 50))
    second[0] ^= 0xFF
    with pytest.raises(CodecError, match="zlib-stream"):
        decompressor.feed(bytes(second))


def test_zlib_stream_bomb() -> None:
    frame = ZlibStreamCompressor().compress(b"\0" * 100_000)
    assert len(frame) < 1000
    decompressor = ZlibStreamDecompressor(max_message_size=50_000)
    with pytest.raises(CodecError, match="inflates to more than 50000 bytes"):
        decompressor.feed(frame)


def test_zlib_stream_without_suffix_is_bounded() -> None:
    deflater = zlib.compressobj()
    stream = deflater.compress(random.Random(1).randbytes(5000))
    stream += deflater.flush(zlib.Z_SYNC_FLUSH)
    unfinished = stream[:1050]  # never reaches the suffix
    decompressor = ZlibStreamDecompressor(max_message_size=1000)
    for start in range(0, 1000, 100):
        assert decompressor.feed(unfinished[start : start + 100]) == []
    with pytest.raises(CodecError, match="exceeds 1000 compressed bytes without a sync-flush"):
        decompressor.feed(unfinished[1000:])


def test_zlib_stream_end_of_stream() -> None:
    deflater = zlib.compressobj()
    decompressor = ZlibStreamDecompressor()
    # A finished stream delivers its last message; nothing may follow it.
    assert decompressor.feed(deflater.compress(b"bye") + deflater.flush()) == [b"bye"]
    with pytest.raises(CodecError, match="after the end of the zlib stream"):
        decompressor.feed(b"\x00")


# --- zstd-stream ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(messages_strategy)
def test_zstd_stream_round_trip(messages: list[bytes]) -> None:
    compressor = ZstdStreamCompressor()
    decompressor = ZstdStreamDecompressor()
    got = [message for m in messages for message in decompressor.feed(compressor.compress(m))]
    assert got == messages


def test_zstd_stream_frame_header_only_once() -> None:
    compressor = ZstdStreamCompressor()
    first = compressor.compress(b"a")
    second = compressor.compress(b"b")
    assert first.startswith(b"\x28\xb5\x2f\xfd")  # zstd magic number
    assert not second.startswith(b"\x28\xb5\x2f\xfd")


def test_zstd_stream_large_message_fed_in_slices() -> None:
    message = bytes(range(256)) * 4000 + b"\0" * 3_000_000
    frame = ZstdStreamCompressor().compress(message)
    assert ZstdStreamDecompressor().feed(frame) == [message]


def test_zstd_stream_corrupt() -> None:
    decompressor = ZstdStreamDecompressor()
    with pytest.raises(CodecError, match=r"zstd-stream: corrupt data \(zstd decompressor error"):
        decompressor.feed(b"\x28\xb5\x2f\xfd\x00\x58\xff\xff\xff\xff")
    with pytest.raises(CodecError, match="stream already broken"):
        decompressor.feed(ZstdStreamCompressor().compress(b"{}"))


def test_zstd_stream_not_zstd() -> None:
    with pytest.raises(CodecError, match="zstd-stream: corrupt data"):
        ZstdStreamDecompressor().feed(b'{"op":10}')


def test_zstd_stream_bomb() -> None:
    frame = ZstdStreamCompressor().compress(b"\0" * 10_000_000)
    assert len(frame) < 2000
    with pytest.raises(CodecError, match="inflates to more than 1000000 bytes"):
        ZstdStreamDecompressor(max_message_size=1_000_000).feed(frame)


def test_zstd_stream_data_after_frame_end() -> None:
    whole_frame = zstandard.ZstdCompressor().compress(b"one")
    decompressor = ZstdStreamDecompressor()
    assert decompressor.feed(whole_frame) == [b"one"]
    with pytest.raises(CodecError, match="after the end of the zstd frame"):
        decompressor.feed(ZstdStreamCompressor().compress(b"two"))
    with pytest.raises(CodecError, match="after the end of the zstd frame"):
        ZstdStreamDecompressor().feed(whole_frame + whole_frame)


# --- per-payload zlib -------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=500))
def test_payload_round_trip(message: bytes) -> None:
    data = deflate_payload(message)
    assert looks_like_zlib(data)
    assert inflate_payload(data) == message


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_looks_like_zlib_at_every_level(level: int) -> None:
    assert looks_like_zlib(zlib.compress(b"{}", level))


@pytest.mark.parametrize(
    "data", [b"", b"x", b'{"op":1}', b"\x83t\x00", b"x\x00", b"\x78\xbb", b"xyz", b"  {}"]
)
def test_plain_payloads_do_not_look_like_zlib(data: bytes) -> None:
    assert not looks_like_zlib(data)


def test_inflate_payload_errors() -> None:
    data = deflate_payload(b'{"op":0,"d":{}}')
    with pytest.raises(CodecError, match="zlib payload: truncated"):
        inflate_payload(data[:-3])
    with pytest.raises(CodecError, match="zlib payload: 1 bytes after the stream"):
        inflate_payload(data + b"!")
    with pytest.raises(CodecError, match=r"zlib payload: corrupt data \(Error -3"):
        inflate_payload(b"\x78\x9c\xff\xff")
    with pytest.raises(CodecError, match="inflates to more than 10 bytes"):
        inflate_payload(deflate_payload(b"\0" * 100), max_size=10)
