"""Interop with the real client libraries' own decompression code, both ways.

* Our compressors -> discord.py (``DiscordWebSocket.received_message`` with its
  ``utils._ActiveDecompressionContext``; the zlib context is only defined when no zstd
  module is importable, so a private copy of ``discord.utils`` is loaded with zstd
  blocked) and hikari (``_GatewayZlibStreamTransport``, ``_GatewayZstdStreamTransport``,
  ``_GatewayZlibMessageTransport`` reading a fake aiohttp WebSocket via ``receive_json``).
* Streams built the way Discord builds them (zlib ``compressobj`` + ``Z_SYNC_FLUSH``;
  zstd via ``backports.zstd`` with ``FLUSH_BLOCK``; ``zlib.compress`` per payload) -> our
  decoders, after checking that the libraries accept those same streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import logging
import sys
import zlib
from collections import deque
from collections.abc import Callable
from types import ModuleType
from typing import Any
from unittest import mock

import aiohttp
import discord.gateway
import discord.utils
import erlpack
import pytest
from backports import zstd as backports_zstd
from hikari.impl import shard as hikari_shard
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.gateway.codec import FrameDecoder, FrameEncoder
from replayer.gateway.compression import (
    ZLIB_SUFFIX,
    Compression,
    ZlibStreamCompressor,
    ZstdStreamCompressor,
    deflate_payload,
)
from replayer.gateway.encoding import Encoding, encode_payload
from replayer.gateway.payload import Payload

EVENTS = ["MESSAGE_CREATE", "GUILD_CREATE", "TYPING_START", "PRESENCE_UPDATE"]

dispatches = st.lists(
    st.builds(
        lambda t, s, d: {"op": 0, "d": d, "s": s, "t": t},
        st.sampled_from(EVENTS),
        st.integers(1, 10_000),
        st.dictionaries(
            st.text(max_size=10),
            st.text(max_size=200) | st.integers() | st.booleans() | st.none(),
            max_size=6,
        ),
    ),
    min_size=1,
    max_size=6,
)
cut_lists = st.lists(st.lists(st.integers(0, 100_000), max_size=4), max_size=6)


def as_json(payload: dict[str, Any]) -> bytes:
    return encode_payload(payload, Encoding.JSON)


def split(frame: bytes, cuts: list[int]) -> list[bytes]:
    """``frame`` in pieces, the way a message may span WebSocket frames.

    The last piece keeps the whole suffix and no other piece ends in it: clients take a
    frame ending in the suffix for the end of a message, and discord.py looks for the
    suffix in the last frame only (hikari, like our decoder, in the joined frames).
    """
    last = len(frame) - len(ZLIB_SUFFIX)
    points = sorted({cut % (last + 1) for cut in cuts} | {0, len(frame)})
    points = [p for p in points if p in (0, len(frame)) or not frame[:p].endswith(ZLIB_SUFFIX)]
    return [frame[a:b] for a, b in itertools.pairwise(points) if b > a]


def frames_of(compressed: list[bytes], cuts: list[list[int]]) -> list[bytes]:
    return [
        piece
        for index, frame in enumerate(compressed)
        for piece in split(frame, cuts[index] if index < len(cuts) else [])
    ]


# --- discord.py -------------------------------------------------------------------------


def _discord_utils_without_zstd() -> ModuleType:
    """A private copy of ``discord.utils`` as imported where zstd is missing."""
    spec = importlib.util.find_spec("discord.utils")
    assert spec is not None
    assert spec.loader is not None
    blocked = {"zstandard": None, "compression": None, "compression.zstd": None}
    with mock.patch.dict(sys.modules, blocked):
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


DISCORD_ZLIB_CONTEXT: type[Any] = _discord_utils_without_zstd()._ActiveDecompressionContext


class _Parsers(dict[str, Callable[[Any], None]]):
    """``DiscordWebSocket._discord_parsers`` that records every dispatch."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, Any]] = []

    def __missing__(self, event: str) -> Callable[[Any], None]:
        return lambda data: self.seen.append((event, data))


async def discord_py_receive(frames: list[bytes], context: type[Any]) -> tuple[list[str], Any]:
    """Feed binary frames to a real ``DiscordWebSocket``; return the raw messages it logged
    and the dispatches it parsed."""
    with mock.patch.object(discord.utils, "_ActiveDecompressionContext", context):
        ws = discord.gateway.DiscordWebSocket(mock.Mock(), loop=asyncio.get_running_loop())
    assert type(ws._decompressor) is context
    ws.shard_id = 0
    parsers = _Parsers()
    ws._discord_parsers = parsers  # type: ignore[assignment]
    logged: list[str] = []
    ws.log_receive = logged.append  # type: ignore[method-assign,assignment]
    for frame in frames:
        await ws.received_message(frame)
    return logged, parsers.seen


def test_discord_py_uses_zstd_here() -> None:
    # With zstandard installed discord.py asks for zstd-stream.
    assert discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE == "zstd-stream"
    assert DISCORD_ZLIB_CONTEXT.COMPRESSION_TYPE == "zlib-stream"


@settings(max_examples=30, deadline=None)
@given(dispatches, cut_lists)
def test_discord_py_reads_our_zlib_stream(payloads: list[dict[str, Any]], cuts: Any) -> None:
    compressor = ZlibStreamCompressor()
    frames = frames_of([compressor.compress(as_json(p)) for p in payloads], cuts)
    logged, seen = asyncio.run(discord_py_receive(frames, DISCORD_ZLIB_CONTEXT))
    assert [m.encode() for m in logged] == [as_json(p) for p in payloads]
    assert seen == [(p["t"], p["d"]) for p in payloads]


@settings(max_examples=30, deadline=None)
@given(dispatches)
def test_discord_py_reads_our_zstd_stream(payloads: list[dict[str, Any]]) -> None:
    encoder = FrameEncoder(Encoding.JSON, Compression.ZSTD_STREAM)
    frames = []
    for payload in payloads:
        frame, is_binary = encoder.encode(payload)
        assert is_binary
        assert isinstance(frame, bytes)
        frames.append(frame)
    context = discord.utils._ActiveDecompressionContext
    logged, seen = asyncio.run(discord_py_receive(frames, context))
    assert [m.encode() for m in logged] == [as_json(p) for p in payloads]
    assert seen == [(p["t"], p["d"]) for p in payloads]


# --- hikari -----------------------------------------------------------------------------


class FakeWebSocket:
    """The part of ``aiohttp.ClientWebSocketResponse`` hikari's transports read."""

    def __init__(self, messages: list[tuple[aiohttp.WSMsgType, bytes]]) -> None:
        self._messages = deque(messages)

    async def receive(self) -> aiohttp.WSMessage:
        kind, data = self._messages.popleft()
        return aiohttp.WSMessage(kind, data, None)


async def hikari_receive(
    transport_cls: type[Any], messages: list[tuple[aiohttp.WSMsgType, bytes]], count: int
) -> list[bytes]:
    """Read ``count`` payloads through a real hikari transport; return the raw bytes it
    handed to its JSON loader (after checking they load)."""
    raw: list[bytes] = []

    def loads(data: bytes) -> Any:
        raw.append(bytes(data))
        return json.loads(data)

    transport = transport_cls(
        ws=FakeWebSocket(messages),
        exit_stack=contextlib.AsyncExitStack(),
        logger=logging.getLogger("hikari.test"),
        log_filterer=lambda data: data,
        dumps=lambda obj: json.dumps(obj).encode(),
        loads=loads,
    )
    for _ in range(count):
        payload = await transport.receive_json()
        assert isinstance(payload, dict)
    return raw


BINARY = aiohttp.WSMsgType.BINARY
TEXT = aiohttp.WSMsgType.TEXT


@settings(max_examples=30, deadline=None)
@given(dispatches, cut_lists)
def test_hikari_reads_our_zlib_stream(payloads: list[dict[str, Any]], cuts: Any) -> None:
    compressor = ZlibStreamCompressor()
    frames = frames_of([compressor.compress(as_json(p)) for p in payloads], cuts)
    transport = hikari_shard._GatewayZlibStreamTransport
    raw = asyncio.run(hikari_receive(transport, [(BINARY, f) for f in frames], len(payloads)))
    assert raw == [as_json(p) for p in payloads]


@settings(max_examples=30, deadline=None)
@given(dispatches)
def test_hikari_reads_our_zstd_stream(payloads: list[dict[str, Any]]) -> None:
    compressor = ZstdStreamCompressor()
    frames = [(BINARY, compressor.compress(as_json(p))) for p in payloads]
    transport = hikari_shard._GatewayZstdStreamTransport
    raw = asyncio.run(hikari_receive(transport, frames, len(payloads)))
    assert raw == [as_json(p) for p in payloads]


@settings(max_examples=20, deadline=None)
@given(dispatches, st.lists(st.booleans(), min_size=6, max_size=6))
def test_hikari_reads_our_per_payload_zlib(
    payloads: list[dict[str, Any]], compressed: list[bool]
) -> None:
    # After IDENTIFY compress=true a message is either a zlib stream (binary) or plain text.
    plain = FrameEncoder(Encoding.JSON, Compression.NONE)
    deflating = FrameEncoder(Encoding.JSON, Compression.NONE, deflate_payloads=True)
    messages = []
    for payload, deflate in zip(payloads, compressed, strict=False):
        frame, is_binary = (deflating if deflate else plain).encode(payload)
        data = frame if isinstance(frame, bytes) else frame.encode()  # decode_text=False
        messages.append((BINARY if is_binary else TEXT, data))
    transport = hikari_shard._GatewayZlibMessageTransport
    raw = asyncio.run(hikari_receive(transport, messages, len(payloads)))
    assert raw == [as_json(p) for p in payloads]


def test_suffix_split_over_frames_only_discord_py_misses() -> None:
    # Discord keeps the suffix in the last frame of a message. Should it not, discord.py
    # (which checks only the last frame) waits forever; hikari and we join the frames.
    frame = ZlibStreamCompressor().compress(as_json({"op": 11}))
    frames = [frame[:-2], frame[-2:]]
    logged, _ = asyncio.run(discord_py_receive(frames, DISCORD_ZLIB_CONTEXT))
    assert logged == []
    hikari = hikari_shard._GatewayZlibStreamTransport
    raws = asyncio.run(hikari_receive(hikari, [(BINARY, f) for f in frames], 1))
    assert raws == [b'{"op":11}']
    decoder = FrameDecoder(Encoding.JSON, Compression.ZLIB_STREAM)
    assert decode_all(decoder, frames) == [Payload(op=11)]


# --- Discord-style streams -> our decoders ----------------------------------------------


def discord_zlib_stream(messages: list[bytes]) -> list[bytes]:
    """zlib-stream as Discord writes it: one deflate context, Z_SYNC_FLUSH per message."""
    deflater = zlib.compressobj(9)
    return [deflater.compress(m) + deflater.flush(zlib.Z_SYNC_FLUSH) for m in messages]


def discord_zstd_stream(messages: list[bytes]) -> list[bytes]:
    """zstd-stream with libzstd through the stdlib-style API: a flushed block each."""
    compressor = backports_zstd.ZstdCompressor()
    flush = backports_zstd.ZstdCompressor.FLUSH_BLOCK
    return [compressor.compress(m, mode=flush) for m in messages]


def decode_all(decoder: FrameDecoder, frames: list[bytes]) -> list[Payload | None]:
    return [m.payload for frame in frames for m in decoder.feed(frame)]


@settings(max_examples=30, deadline=None)
@given(dispatches, cut_lists)
def test_we_read_a_discord_style_zlib_stream(payloads: list[dict[str, Any]], cuts: Any) -> None:
    raws = [as_json(p) for p in payloads]
    frames = frames_of(discord_zlib_stream(raws), cuts)
    # The libraries accept this stream ...
    logged, _ = asyncio.run(discord_py_receive(frames, DISCORD_ZLIB_CONTEXT))
    assert [m.encode() for m in logged] == raws
    hikari = hikari_shard._GatewayZlibStreamTransport
    assert asyncio.run(hikari_receive(hikari, [(BINARY, f) for f in frames], len(raws))) == raws
    # ... and so do we, message by message, with the wire size of all its frames.
    decoder = FrameDecoder(Encoding.JSON, Compression.ZLIB_STREAM)
    messages = [m for frame in frames for m in decoder.feed(frame)]
    assert [m.raw for m in messages] == raws
    assert [m.payload for m in messages] == [Payload(**p) for p in payloads]
    assert sum(m.wire_size for m in messages) == sum(map(len, frames))


@settings(max_examples=30, deadline=None)
@given(dispatches)
def test_we_read_a_discord_style_zstd_stream(payloads: list[dict[str, Any]]) -> None:
    raws = [as_json(p) for p in payloads]
    frames = discord_zstd_stream(raws)
    logged, _ = asyncio.run(discord_py_receive(frames, discord.utils._ActiveDecompressionContext))
    assert [m.encode() for m in logged] == raws
    hikari = hikari_shard._GatewayZstdStreamTransport
    assert asyncio.run(hikari_receive(hikari, [(BINARY, f) for f in frames], len(raws))) == raws
    decoder = FrameDecoder(Encoding.JSON, Compression.ZSTD_STREAM)
    assert decode_all(decoder, frames) == [Payload(**p) for p in payloads]


@pytest.mark.parametrize("level", [1, 6, 9])
def test_we_read_discord_style_per_payload_zlib(level: int) -> None:
    payloads = [
        {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None},
        {"op": 0, "d": {"v": 10, "guilds": []}, "s": 1, "t": "READY"},
    ]
    frames = [zlib.compress(as_json(p), level) for p in payloads]
    decoder = FrameDecoder(Encoding.JSON, Compression.NONE)
    assert decode_all(decoder, frames) == [Payload(**p) for p in payloads]
    hikari = hikari_shard._GatewayZlibMessageTransport
    raws = asyncio.run(hikari_receive(hikari, [(BINARY, f) for f in frames], len(frames)))
    assert raws == [as_json(p) for p in payloads]
    assert deflate_payload(as_json(payloads[0])) == zlib.compress(as_json(payloads[0]))


def test_etf_over_zlib_stream_reads_with_erlpack() -> None:
    payload = {"op": 0, "d": {"id": 2**62, "name": "gé"}, "s": 4, "t": "GUILD_CREATE"}
    frame, is_binary = FrameEncoder(Encoding.ETF, Compression.ZLIB_STREAM).encode(payload)
    assert is_binary
    assert isinstance(frame, bytes)
    raw = zlib.decompressobj().decompress(frame)
    assert raw == erlpack.pack(payload)
    decoded = FrameDecoder(Encoding.ETF, Compression.ZLIB_STREAM).feed(frame)
    assert [m.payload for m in decoded] == [Payload(**payload)]
