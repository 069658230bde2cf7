"""The gateway codecs on hostile bytes and values: decoders raise only ``CodecError``
(``FrameDecoder`` never raises), encoders only ``CodecError``, and what decodes re-encodes."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from replayer.errors import CodecError
from replayer.gateway.codec import FrameDecoder, FrameEncoder
from replayer.gateway.compression import (
    Compression,
    inflate_payload,
    make_compressor,
    make_decompressor,
)
from replayer.gateway.encoding import Encoding, decode_payload, encode_payload
from replayer.gateway.etf import etf_encode

from .conftest import fuzz_pair, fuzz_target


class _Huge(int):
    """An integer of over 4300 digits that hypothesis can still print (as 10**n)."""

    def __new__(cls, digits: int) -> _Huge:
        self = super().__new__(cls, 7 * 10**digits)
        self.digits = digits
        return self

    def __repr__(self) -> str:
        return f"7 * 10**{self.digits}"


# Values past what Discord sends: huge and 64-bit-edge integers, NaN, lone surrogates,
# bytes (not UTF-8), tuples, non-string keys.
value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**64, -(2**63) - 1])
    | st.builds(_Huge, st.sampled_from([4300, 5000]))
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["\ud800", "\x00", "\U0001f600"])
    | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=12,
)
encodings = st.sampled_from(list(Encoding))


@fuzz_target(CodecError)
def decode_bytes(raw: bytes, encoding: Encoding) -> None:
    obj = decode_payload(raw, encoding)
    # What decodes can be written again in its own encoding.
    encode_payload(obj, encoding) if encoding is Encoding.ETF else None


@fuzz_target(CodecError)
def mutated_etf(obj: Any, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(etf_encode(obj))
    for pos, byte in edits:
        data[pos % len(data)] = byte
    decode_payload(bytes(data[: max(1, len(data) - cut)]), Encoding.ETF)


@fuzz_target(CodecError)
def encode_value(obj: Any, encoding: Encoding) -> None:
    raw = encode_payload(obj, encoding)
    decode_payload(raw, encoding)  # what we write, we read


@fuzz_target()
def frame_decoder(
    encoding: Encoding, compression: Compression, frames: list[bytes | str], messages: list[Any]
) -> None:
    # Real compressed frames of encodable messages, interleaved with junk.
    compressor = make_compressor(compression)
    real: list[bytes | str] = []
    for m in messages:
        try:
            real.append(compressor.compress(encode_payload(m, encoding)))
        except CodecError:
            continue
    decoder = FrameDecoder(encoding, compression, max_message_size=1 << 16)
    for frame in [*real[:1], *frames, *real[1:]]:
        for message in decoder.feed(frame):
            assert (message.payload is None) == (message.error is not None)


@fuzz_target(CodecError)
def stream_decompressor(compression: Compression, frames: list[bytes]) -> None:
    decompressor = make_decompressor(compression, 1 << 16)
    for frame in frames:
        decompressor.feed(frame)


@fuzz_target(CodecError)
def zlib_payload(data: bytes) -> None:
    inflate_payload(b"\x78\x9c" + data, 1 << 16)


@fuzz_target(CodecError)
def frame_encoder(encoding: Encoding, compression: Compression, obj: Any) -> None:
    FrameEncoder(encoding, compression).encode({"op": 0, "d": obj, "s": 1, "t": "X"})


frame = st.binary(max_size=60) | st.text(max_size=20) | st.sampled_from([b"\x00\x00\xff\xff"])
test_decode_bytes, test_decode_bytes_long = fuzz_pair(
    decode_bytes,
    raw=st.binary(max_size=80) | st.sampled_from([b"1" * 5000, b'{"op":' + b"9" * 5000 + b"}"]),
    encoding=encodings,
)
test_mutated_etf, test_mutated_etf_long = fuzz_pair(
    mutated_etf,
    obj=value,
    edits=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 8),
)
test_encode_value, test_encode_value_long = fuzz_pair(encode_value, obj=value, encoding=encodings)
test_frame_decoder, test_frame_decoder_long = fuzz_pair(
    frame_decoder,
    encoding=encodings,
    compression=st.sampled_from(list(Compression)),
    frames=st.lists(frame, max_size=5),
    messages=st.lists(value, max_size=3),
)
test_stream_decompressor, test_stream_decompressor_long = fuzz_pair(
    stream_decompressor,
    compression=st.sampled_from(list(Compression)),
    frames=st.lists(st.binary(max_size=60), max_size=5),
)
test_zlib_payload, test_zlib_payload_long = fuzz_pair(zlib_payload, data=st.binary(max_size=60))
test_frame_encoder, test_frame_encoder_long = fuzz_pair(
    frame_encoder, encoding=encodings, compression=st.sampled_from(list(Compression)), obj=value
)
