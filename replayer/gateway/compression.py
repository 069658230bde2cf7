"""Gateway compression: zlib-stream and zstd-stream transports, and per-payload zlib.

Discord docs: Events > Gateway > Encoding and Compression.

* Transport Compression (``compress=zlib-stream`` / ``zstd-stream`` in the URL): one
  compression context for the whole connection, server -> client only. zlib-stream ends
  every message with a ``Z_SYNC_FLUSH`` (suffix ``00 00 ff ff``) and one message may span
  several WebSocket frames; zstd-stream sends each message as one WebSocket message,
  flushed but never ending the zstd frame.
* Payload Compression (IDENTIFY ``compress: true``): some server messages are each a
  complete zlib stream of their own.

Decompressors and compressors are stateful: make one per connection. Every failure is a
:class:`~replayer.errors.CodecError`; a decompressor that failed stays failed, because the
shared context is lost.
"""

from __future__ import annotations

import enum
import zlib
from typing import Protocol

import zstandard

from replayer.errors import CodecError

# Discord docs: Events > Gateway > Encoding and Compression > Transport Compression >
# zlib-stream.
ZLIB_SUFFIX = b"\x00\x00\xff\xff"

# No gateway message comes near this; a bigger one is treated as a decompression bomb.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

# zstd inflates at most ~32768x (a 4-byte RLE block yields 128 KiB). Feeding input in
# slices of max_size / 65536 bytes keeps each slice's output under max_size / 2.
_ZSTD_MAX_RATIO = 65536
_ZSTD_MIN_SLICE = 256


class Compression(enum.StrEnum):
    """Transport compression of one connection (the ``compress`` query parameter)."""

    NONE = "none"
    ZLIB_STREAM = "zlib-stream"
    ZSTD_STREAM = "zstd-stream"

    @classmethod
    def parse(cls, text: str | None) -> Compression:
        """Read the ``compress`` query value; absent or empty means no compression."""
        if not text:
            return cls.NONE
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(member.value for member in cls)
            raise CodecError(f"unknown compression {text!r} (expected one of: {known})") from None


class StreamDecompressor(Protocol):
    """Turns the binary WebSocket frames of one connection into gateway messages."""

    def feed(self, frame: bytes) -> list[bytes]:
        """The complete messages this frame completes (zero or more)."""
        ...


class StreamCompressor(Protocol):
    """Turns gateway messages into the binary WebSocket frames of one connection."""

    def compress(self, message: bytes) -> bytes:
        """The one WebSocket frame that carries ``message``."""
        ...


class _Breakable:
    """Remembers the first error: after it the shared context is useless."""

    name = "stream"

    def __init__(self) -> None:
        self._broken: str | None = None

    @property
    def broken(self) -> str | None:
        """Why this decompressor stopped working, or ``None`` while it works."""
        return self._broken

    def _check(self) -> None:
        if self._broken is not None:
            raise CodecError(f"{self.name}: stream already broken: {self._broken}")

    def _fail(self, reason: str) -> CodecError:
        self._broken = reason
        return CodecError(f"{self.name}: {reason}")


class IdentityDecompressor:
    """No transport compression: every frame is one message."""

    def feed(self, frame: bytes) -> list[bytes]:
        return [bytes(frame)]


class ZlibStreamDecompressor(_Breakable):
    """zlib-stream: one inflate context; a message ends where the stream ends in the suffix.

    Frames are inflated as they arrive (the output is the same as inflating the joined
    frames at the suffix, as clients do), so both the buffered compressed bytes and the
    inflated message are bounded by ``max_message_size``.
    """

    name = "zlib-stream"

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__()
        self._max = max_message_size
        self._inflater = zlib.decompressobj()
        self._parts: list[bytes] = []
        self._size = 0  # inflated bytes of the current message
        self._wire = 0  # compressed bytes of the current message
        self._tail = b""  # last compressed bytes seen, to spot a suffix split over frames

    def feed(self, frame: bytes) -> list[bytes]:
        self._check()
        if not frame:
            return []
        if self._inflater.eof:
            raise self._fail("data after the end of the zlib stream")
        self._wire += len(frame)
        if self._wire > self._max:
            raise self._fail(
                f"message exceeds {self._max} compressed bytes without a sync-flush suffix"
            )
        try:
            out = self._inflater.decompress(frame, self._max - self._size + 1)
        except zlib.error as exc:
            raise self._fail(f"corrupt data ({exc})") from None
        self._size += len(out)
        if self._size > self._max or self._inflater.unconsumed_tail:
            raise self._fail(f"message inflates to more than {self._max} bytes")
        if self._inflater.unused_data:
            raise self._fail("data after the end of the zlib stream")
        if out:
            self._parts.append(out)
        self._tail = (self._tail + frame[-len(ZLIB_SUFFIX) :])[-len(ZLIB_SUFFIX) :]
        if self._tail != ZLIB_SUFFIX and not self._inflater.eof:
            return []
        message = b"".join(self._parts)
        self._parts = []
        self._size = 0
        self._wire = 0
        self._tail = b""
        return [message]


class ZstdStreamDecompressor(_Breakable):
    """zstd-stream: one zstd context; each WebSocket message is one gateway message."""

    name = "zstd-stream"

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        super().__init__()
        self._max = max_message_size
        self._slice = max(_ZSTD_MIN_SLICE, max_message_size // _ZSTD_MAX_RATIO)
        self._inflater = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, frame: bytes) -> list[bytes]:
        self._check()
        parts: list[bytes] = []
        size = 0
        view = memoryview(frame)
        # zstandard cannot cap the output of one call, so the input goes in slices small
        # enough that none of them can inflate past the limit by much.
        for start in range(0, len(view), self._slice):
            if self._inflater.eof:
                # Discord never ends the frame; clients fail on data after its end too.
                raise self._fail("data after the end of the zstd frame")
            try:
                out = self._inflater.decompress(view[start : start + self._slice])
            except zstandard.ZstdError as exc:
                raise self._fail(f"corrupt data ({exc})") from None
            size += len(out)
            if size > self._max:
                raise self._fail(f"message inflates to more than {self._max} bytes")
            if out:
                parts.append(out)
        if self._inflater.unused_data:
            raise self._fail("data after the end of the zstd frame")
        return [b"".join(parts)]


def make_decompressor(
    compression: Compression, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> StreamDecompressor:
    """A fresh decompressor for one connection."""
    if compression is Compression.ZLIB_STREAM:
        return ZlibStreamDecompressor(max_message_size)
    if compression is Compression.ZSTD_STREAM:
        return ZstdStreamDecompressor(max_message_size)
    return IdentityDecompressor()


class IdentityCompressor:
    """No transport compression: the frame is the message."""

    def compress(self, message: bytes) -> bytes:
        return bytes(message)


class ZlibStreamCompressor:
    """zlib-stream as Discord sends it: one deflate context, a sync flush per message."""

    def __init__(self) -> None:
        self._deflater = zlib.compressobj()

    def compress(self, message: bytes) -> bytes:
        return self._deflater.compress(message) + self._deflater.flush(zlib.Z_SYNC_FLUSH)


class ZstdStreamCompressor:
    """zstd-stream as Discord sends it: one zstd frame, a flushed block per message.

    The first message carries the frame header; no frame is ever ended, so decoders that
    read one frame (``compression.zstd``, ``zstandard.decompressobj``) accept the stream.
    """

    def __init__(self) -> None:
        self._deflater = zstandard.ZstdCompressor().compressobj()

    def compress(self, message: bytes) -> bytes:
        head = self._deflater.compress(message)
        return head + self._deflater.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def make_compressor(compression: Compression) -> StreamCompressor:
    """A fresh compressor for one connection."""
    if compression is Compression.ZLIB_STREAM:
        return ZlibStreamCompressor()
    if compression is Compression.ZSTD_STREAM:
        return ZstdStreamCompressor()
    return IdentityCompressor()


# Discord docs: Events > Gateway > Encoding and Compression > Payload Compression (IDENTIFY
# ``compress: true``; JSON only; "not all payloads will be compressed").


def looks_like_zlib(data: bytes) -> bool:
    """Does ``data`` start with a zlib header (``78 xx``, valid check bits, no dictionary)?

    JSON starts with ``{`` and ETF with 131, so this tells a per-payload-compressed
    message from a plain one.
    """
    if len(data) < 2 or data[0] != 0x78:
        return False
    header = data[0] << 8 | data[1]
    return header % 31 == 0 and not data[1] & 0x20


def inflate_payload(data: bytes, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> bytes:
    """Inflate one per-payload-compressed message (a complete zlib stream)."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise CodecError(f"zlib payload: corrupt data ({exc})") from None
    if len(out) > max_size:
        raise CodecError(f"zlib payload: inflates to more than {max_size} bytes")
    if not inflater.eof:
        raise CodecError("zlib payload: truncated (the zlib stream does not end)")
    if inflater.unused_data:
        raise CodecError(f"zlib payload: {len(inflater.unused_data)} bytes after the stream")
    return out


def deflate_payload(message: bytes) -> bytes:
    """Compress one message as a complete zlib stream of its own."""
    return zlib.compress(message)
