"""Recording in a worker process: the proxy hands each message over a pipe, and a child
process decodes it and writes the archive.

Why: mitmproxy runs every hook on its one event-loop thread before the message goes on,
so whatever the recorder does per message is latency for the live bot and throughput
lost for the proxy (a no-op ``websocket_message`` hook already costs mitmdump a few
percent on small frames). Decoding, redacting and writing take 40-80 us per message
inside mitmdump; a pipe write takes a few. The worker also isolates the proxy from the
recorder: a crash of the worker (even in a C library) cannot take the proxy down.

Only for observation: with ``rewrite_base`` the proxy must change what the client gets
(the READY rewrite, re-compression), which needs the decoder in the proxy itself, so
``replayer record --mode reverse`` records in-process.

Wire format (one writer, so order is kept): each item is a 16-byte header
``<B kind> <B is_text> <H 0> <I key> <Q t_ns>`` then ``<I length>`` and ``length`` bytes.
Kinds: client message, server message (the content), or a call (a pickled
``(method, args)`` for open, close, http and store_raw). ``t_ns`` is the proxy's
``time.monotonic_ns()`` when it saw the message: CLOCK_MONOTONIC is system-wide, so the
worker records the proxy's times, not its own.

Durability: each item is written to the pipe before the hook returns. If the proxy is
killed (even ``kill -9``), the worker still reads everything the pipe holds, writes it
and closes the archive. The proxy writes the archive's header itself and takes an
exclusive ``flock`` that the worker holds until it exits: :func:`wait_until_written`
waits for it to finish.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from replayer.archive.records import Headers
from replayer.archive.scrub import Scrubber
from replayer.archive.writer import ArchiveWriter, write_all
from replayer.malloc import tune_malloc_for_large_messages
from replayer.record.recorder import DEFAULT_GATEWAY_HOSTS, GatewayRecorder, is_gateway, is_rest

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<BBHIQI")
_pack_header = _HEADER.pack
_HEADER_BYTES = _HEADER.size
_ATOMIC_BYTES = 4096  # PIPE_BUF: a write up to this size reaches the pipe whole
_CLIENT, _SERVER, _CALL = 1, 2, 3
_PIPE_BYTES = 1 << 20  # room for a burst (or one large message) without blocking the proxy
_CALLS = frozenset({"open", "close", "http", "store_raw"})
IDLE_S = 0.002  # how long the worker lets items gather in the pipe once it has caught up
_IDLE_BELOW_BYTES = 64 << 10
SCRUB_KEY_ENV = "REPLAYER_WORKER_SCRUB_KEY"  # the scrubbing key, parent to worker


class WorkerRecorder:
    """The proxy's side: the recorder's interface, forwarding everything to the worker.

    It answers like a :class:`GatewayRecorder` without ``rewrite_base``: the client always
    gets the upstream's bytes (``server_message`` returns None). A write to a worker that
    died raises :class:`BrokenPipeError`; the addon then stops recording.
    """

    rewrite_base: str | None = None

    def __init__(
        self,
        path: Path,
        *,
        redact: bool,
        metadata: dict[str, Any],
        scrub_key: str = "",
        overwrite: bool = False,
    ) -> None:
        """``scrub_key``: pseudonymise what is written (replayer.archive.scrub) with this
        key; it reaches the worker in its environment, not its (visible) arguments."""
        self.path = path
        self.gateway_hosts: frozenset[str] = DEFAULT_GATEWAY_HOSTS
        self.record_rest = True
        self.gateway_upstream: str | None = None
        self._keys: dict[object, int] = {}
        self._next_key = 1
        # The header is written here, so that the archive is whole from the start and a
        # bad path fails in the proxy; the worker appends to the same descriptor, and
        # the exclusive flock taken here is the worker's until it exits.
        writer = ArchiveWriter(path, redact=False, metadata=metadata, overwrite=overwrite)
        fd = writer.detach()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            t0_ns = str(time.monotonic_ns())
            command = [sys.executable, "-m", "replayer.record.worker", str(path), str(fd), t0_ns]
            if not redact:
                command.append("--no-redact")
            env = None
            if scrub_key:
                command.append("--scrub")
                env = {**os.environ, SCRUB_KEY_ENV: scrub_key}
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(fd,), env=env)
        finally:
            os.close(fd)
        assert self.process.stdin is not None
        self._pipe: IO[bytes] | None = self.process.stdin
        self._fd = self._pipe.fileno()
        # Linux only; over /proc/sys/fs/pipe-max-size it fails: the default 64 KiB works too.
        set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
        if set_pipe_size is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._fd, set_pipe_size, _PIPE_BYTES)

    @property
    def pid(self) -> int:
        return self.process.pid

    # --- what the addon asks ------------------------------------------------------------

    def is_gateway(self, host: str, path: str) -> bool:
        return is_gateway(self.gateway_hosts, host, path)

    def is_rest(self, path: str) -> bool:
        return is_rest(path)

    def upstream_for(self, path: str) -> tuple[str, str] | None:
        return None  # no rewrites, so no routing

    def open(self, key: object, url: str, headers: Headers) -> int:
        self._keys[key] = number = self._next_key
        self._next_key += 1
        self._call("open", (number, url, headers))
        return number

    def relay(self, key: object, from_client: bool, content: bytes, is_text: bool) -> None:
        """Hand a message of flow ``key`` to the worker (nothing if the flow is not
        recorded). The addon's hot path: it runs inside mitmproxy's hook for every
        message, so it is one call, with the header packed and written inline."""
        number = self._keys.get(key)
        if number is None:
            return
        if self._pipe is None:
            raise BrokenPipeError("the recorder worker's pipe is closed")
        kind = _CLIENT if from_client else _SERVER
        size = len(content)
        head = _pack_header(kind, is_text, 0, number, time.monotonic_ns(), size)
        try:
            pieces: tuple[bytes, ...]
            if size < _ATOMIC_BYTES - _HEADER_BYTES:
                pieces = (head + content,)
                written = os.write(self._fd, pieces[0])  # one write: whole in the pipe
            else:
                pieces = (head, content)
                written = os.writev(self._fd, pieces)
            if written != _HEADER_BYTES + size:  # interrupted: write the rest
                write_all(self._fd, pieces, written)
        except OSError as exc:
            raise _broken(exc) from exc

    def client_message(self, key: object, content: bytes, is_text: bool) -> None:
        self.relay(key, True, content, is_text)

    def server_message(self, key: object, content: bytes, is_text: bool) -> bytes | None:
        self.relay(key, False, content, is_text)
        return None

    def server_fallback(self, key: object, content: bytes, is_text: bool) -> bytes | None:
        return None

    def store_raw(
        self, key: object, from_client: bool, content: bytes, is_text: bool, error: str
    ) -> None:
        number = self._keys.get(key)
        if number is not None:
            self._call("store_raw", (number, from_client, content, is_text, error))

    def close(
        self, key: object, code: int | None, reason: str, closed_by_client: bool | None
    ) -> None:
        number = self._keys.pop(key, None)
        if number is not None:
            self._call("close", (number, code, reason, closed_by_client))

    def http(
        self,
        method: str,
        host: str,
        path: str,
        status: int,
        request_headers: Headers,
        response_headers: Headers,
        request_body: bytes,
        response_body: bytes,
    ) -> bytes | None:
        if self.record_rest:
            args = (method, host, path, status, request_headers, response_headers)
            self._call("http", (*args, request_body, response_body))
        return None

    # --- the pipe ------------------------------------------------------------------------

    def _call(self, method: str, args: tuple[Any, ...]) -> None:
        if self._pipe is None:
            raise BrokenPipeError("the recorder worker's pipe is closed")
        content = pickle.dumps((method, args), pickle.HIGHEST_PROTOCOL)
        head = _pack_header(_CALL, False, 0, 0, time.monotonic_ns(), len(content))
        try:
            write_all(self._fd, (head, content))
        except OSError as exc:
            raise _broken(exc) from exc

    def close_archive(self, timeout_s: float = 60.0) -> int | None:
        """Close the pipe; the worker writes what it holds and exits. Its exit status, or
        None if it is still writing after ``timeout_s`` (it then finishes on its own)."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError):  # it died: nothing to flush
                pipe.close()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None


def _broken(exc: OSError) -> BrokenPipeError:
    """Any failed write to the pipe ends the hand-over: an item may have been cut short,
    and nothing written after it could be read in step. As BrokenPipeError, the addon
    stops recording and closes the pipe; the worker drops the cut item and writes the
    rest."""
    return exc if isinstance(exc, BrokenPipeError) else BrokenPipeError(f"pipe write: {exc}")


# --- the worker's side -------------------------------------------------------------------


Item = tuple[int, bool, int, int, bytes]  # (kind, is_text, key, t_ns, content)


def read_batches(fd: int, idle_s: float = IDLE_S) -> Iterator[list[Item]]:
    """The whole items of each read from the pipe ``fd``, until end of file (an item
    cut short there is dropped).

    Once it has caught up, it waits ``idle_s`` before reading again instead of blocking
    in ``read``: a process blocked on the pipe must be woken by every write, and on the
    VMs we measured that wake-up made the proxy's pipe write ~4x dearer. Items wait in
    the pipe meanwhile (they are safe there, even if the proxy dies).
    """
    buffer = bytearray()
    size = _HEADER.size
    while chunk := os.read(fd, _PIPE_BYTES):
        buffer += chunk
        batch: list[Item] = []
        pos = 0
        while len(buffer) - pos >= size:
            kind, is_text, _, key, t_ns, length = _HEADER.unpack_from(buffer, pos)
            end = pos + size + length
            if end > len(buffer):
                break
            with memoryview(buffer) as view:  # one copy out of the buffer, not two
                content = bytes(view[pos + size : end])
            batch.append((kind, bool(is_text), key, t_ns, content))
            pos = end
        del buffer[:pos]
        if batch:
            yield batch
        # Only after small reads: with large messages the wake-ups are few anyway, and a
        # pause would let a megabyte message wait for room in the pipe.
        if len(chunk) < _IDLE_BELOW_BYTES:
            time.sleep(idle_s)


def serve(fd: int, writer: ArchiveWriter, t0_ns: int, on_error: Callable[[str], None]) -> int:
    """Read items from the pipe ``fd`` until end of file and record them with
    ``writer``, then close it. Offsets count from ``t0_ns`` (the proxy's clock when it
    created the archive). Returns how many items it read.

    The records of one read from the pipe are written together, after the last of them:
    until then they are still in memory here, and killing the worker alone would lose
    them (as it loses what the pipe holds); killing the proxy loses nothing."""
    now = [t0_ns]
    recorder = GatewayRecorder(writer, clock_ns=lambda: now[0], on_error=on_error)
    items = 0
    writer.hold()
    for batch in read_batches(fd):
        for kind, is_text, key, t_ns, content in batch:
            items += 1
            now[0] = t_ns
            try:
                if kind == _CLIENT:
                    recorder.client_message(key, content, is_text)
                elif kind == _SERVER:
                    recorder.server_message(key, content, is_text)
                elif kind == _CALL:
                    method, args = pickle.loads(content)  # from our own parent, over a pipe
                    if method not in _CALLS:
                        raise ValueError(f"unknown call {method!r}")
                    getattr(recorder, method)(*args)
            except Exception as exc:  # one bad item must not end the recording
                on_error(f"item {items} (kind {kind}) failed: {exc!r}")
                if kind in (_CLIENT, _SERVER):
                    recorder.store_raw(key, kind == _CLIENT, content, is_text, repr(exc))
        try:
            writer.flush()
        except OSError as exc:
            recorder.stop_writing(exc)
    try:
        writer.close()
    except OSError as exc:
        recorder.stop_writing(exc)
    return items


def wait_until_written(path: Path) -> None:
    """Block until no worker is writing ``path`` (it holds an exclusive flock meanwhile)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    """``python -m replayer.record.worker ARCHIVE FD T0_NS [--no-redact] [--scrub]``:
    started by :class:`WorkerRecorder`, with the archive open (header written, flock
    held) as FD; with ``--scrub``, the scrubbing key in ``$REPLAYER_WORKER_SCRUB_KEY``."""
    # Ctrl-C in a terminal reaches the whole process group: the worker ends when the
    # proxy closes the pipe (or dies), after writing everything, not on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_malloc_for_large_messages()
    logging.basicConfig(format="gateway recorder worker: %(message)s")
    path, fd, t0_ns = Path(argv[0]), int(argv[1]), int(argv[2])
    key = os.environ.pop(SCRUB_KEY_ENV, "") if "--scrub" in argv[3:] else ""
    transform = Scrubber(key.encode("utf-8", "surrogateescape")).scrub if key else None
    writer = ArchiveWriter(
        path, redact="--no-redact" not in argv[3:], continue_fd=fd, transform=transform
    )
    serve(sys.stdin.fileno(), writer, t0_ns, on_error=log.error)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
