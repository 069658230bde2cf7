"""I/O shell of the replay: one aiohttp server, one port, the gateway WebSocket and the
REST routes; each WebSocket drives a sans-I/O :class:`GatewayConnection`.

aiohttp rather than ``websockets`` because the REST face must answer every recorded
exchange, including POST/PATCH/DELETE, and the ``websockets`` server only parses GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import struct
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMessage, WSMsgType, web

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    HttpRecord,
    Record,
)
from replayer.archive.writer import ArchiveWriter
from replayer.errors import CodecError, ReplayerError
from replayer.gateway.close_codes import CloseCode
from replayer.gateway.codec import FrameDecoder, FrameEncoder
from replayer.gateway.compression import Compression
from replayer.gateway.encoding import Encoding
from replayer.gateway.opcodes import Direction
from replayer.gateway.url import GatewayQuery
from replayer.malloc import release_free_memory
from replayer.portable import descriptor_limit
from replayer.replay import control
from replayer.replay.engine import (
    NO_STATUS,
    Abort,
    Close,
    Command,
    GatewayConnection,
    Replay,
    ReplayOptions,
    Send,
    State,
    resume_key,
)
from replayer.replay.faults import Fault, FaultKind, FaultPlan, Phase
from replayer.replay.masking import PROTOCOL_ERROR, MaskCheck
from replayer.replay.observed import Frame, FrameLog, client_frame
from replayer.replay.rest import RestRouter
from replayer.replay.script import ArchiveFile, ArchivePayloads, ReplayScript
from replayer.replay.verdicts import Verdict
from replayer.replay.voice_server import VoiceFace, VoiceOptions

# Client payloads over 4096 bytes get 4002 from the engine; far larger ones are refused
# by aiohttp itself (close 1009) before they are buffered.
MAX_CLIENT_MESSAGE_BYTES = 1 << 20
# A connection that has not sent a complete request head by then is dropped (a client
# trickling its headers would hold a descriptor for ever).
HEADER_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 15.0  # an idle HTTP keep-alive connection
STOP_CLOSE_TIMEOUT_S = 2.0  # how long a client has to answer the 1001 close at shutdown
# Descriptors kept free beyond the connections (the transcript, logs, the next accept).
DESCRIPTOR_RESERVE = 16
GOING_AWAY = 1001

log = logging.getLogger("replayer.replay")


class _OneLine(logging.Filter):
    """aiohttp's server log (malformed HTTP, a handler that failed) in one line: the
    exception's repr instead of its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_http_log = logging.getLogger("replayer.replay.http")
_http_log.addFilter(_OneLine())


class Transcript:
    """The replay itself, recorded in the archive format (both directions)."""

    def __init__(self, path: Path, t0_ns: int, *, overwrite: bool = False) -> None:
        self.writer = ArchiveWriter(path, metadata={"transcript": True}, overwrite=overwrite)
        self.t0_ns = t0_ns
        self.next_conn_id = 1
        self.failures: dict[str, int] = {}  # kind of error -> records not written

    def now(self) -> int:
        return max(0, time.monotonic_ns() - self.t0_ns)

    def write(self, record: Record) -> None:
        """Write one record. A failure (a full disk, a record no archive can hold) is
        logged, once per kind, and never reaches the client's connection: the transcript
        watches the replay, it does not take part."""
        try:
            self.writer.write(record)
        except (ReplayerError, OSError, ValueError) as exc:
            kind = type(exc).__name__
            if kind not in self.failures:
                log.error("transcript %s: %s (the replay goes on)", self.writer.path, exc)
            self.failures[kind] = self.failures.get(kind, 0) + 1

    def close(self) -> None:
        self.writer.close()


class ReplayServer:
    """Serve a :class:`ReplayScript`; use as an async context manager."""

    def __init__(
        self,
        script: ReplayScript,
        options: ReplayOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        transcript: Path | None = None,
        plan: FaultPlan | None = None,
        overwrite_transcript: bool = False,
        frame_log: FrameLog | None = None,
        voice: VoiceOptions | None = None,
    ) -> None:
        """``transcript``: record the replay into this new archive (a file already
        there is an error, :class:`FileExistsError`, unless ``overwrite_transcript``).
        ``frame_log``: keep every frame exchanged there (what ``wait_for`` waits on)."""
        self.script = script
        self.plan = plan
        self.options = options or ReplayOptions()
        self.host = host
        self.port = port
        self.transcript_path = transcript
        self.overwrite_transcript = overwrite_transcript
        self.replay: Replay | None = None
        self.router: RestRouter | None = None
        self.connections_total = 0
        self.connections_open = 0
        self._open_peak = 0  # most connections open at once since memory was last released
        self.changed = asyncio.Event()  # set whenever a connection opens or closes
        self._runner: web.AppRunner | None = None
        self._transcript: Transcript | None = None
        # The archive, opened once and read by every connection (one descriptor, no
        # per-connection buffer: ArchivePayloads keeps nothing between reads).
        self._archive: ArchiveFile | None = None
        self._payloads: ArchivePayloads | None = None
        self._pokes: dict[GatewayConnection, asyncio.Event] = {}
        self._attempts = 0  # WebSocket upgrade requests so far
        self._stopping = asyncio.Event()  # ends black-holed requests
        self._t0_ns = time.monotonic_ns()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()  # open gateway connections
        self._descriptor_budget = 0  # TCP connections the descriptor limit leaves room for
        self.refused_busy = 0  # connections refused for want of descriptors
        self.header_timeout_s = HEADER_TIMEOUT_S
        self.frames = frame_log
        # The control API (replay/control.py), on this port, for loopback peers only.
        self._control_routes = {
            ("POST", control.CONTROL_PREFIX + "faults"): self._post_fault,
            ("GET", control.CONTROL_PREFIX + "status"): self._get_status,
        }
        self._head_timers: dict[int, asyncio.TimerHandle] = {}  # id(handler) -> its deadline
        self.voice_options = voice
        self.voice: VoiceFace | None = None  # the voice face (issue #18), when asked for

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._archive = ArchiveFile(self.script.path)
        self._payloads = ArchivePayloads(self._archive)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, logger=_http_log,
            keepalive_timeout=KEEPALIVE_TIMEOUT_S, shutdown_timeout=STOP_CLOSE_TIMEOUT_S,
        )  # fmt: skip
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        soft = descriptor_limit()
        in_use = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 64
        self._descriptor_budget = 1 << 30 if soft is None else soft - in_use - DESCRIPTOR_RESERVE
        self.options = replace(self.options, gateway_url=self.gateway_url)
        self.replay = Replay(self.script, self.options, self.plan)
        self.replay.on_notice = log.warning  # e.g. intents the recording was made without
        if self.voice_options is not None:
            voice = VoiceFace(
                self._now, host=self.host, ca_dir=self.voice_options.ca_dir,
                plan=self.voice_options.plan, window_ms=self.options.verdict_window_ms,
                heartbeat_interval_ms=self.voice_options.heartbeat_interval_ms,
            )  # fmt: skip
            try:
                await voice.start()
            except BaseException:
                await self.stop()  # the gateway's port is not left open
                raise
            self.voice = voice
            voice.on_main_change = self._poke_all
            self.replay.voice = voice.replay
        self.router = RestRouter(
            self.script, self.gateway_url, self.options.token, self.replay.starts
        )
        if self.transcript_path is not None:
            self._transcript = Transcript(
                self.transcript_path, self._t0_ns, overwrite=self.overwrite_transcript
            )
            if self.voice is not None:  # voice connections are recorded as voice ones
                self.voice.transcript = self._transcript

    def _poke_all(self) -> None:
        """Wake every gateway connection (a voice fault has a dispatch for one)."""
        for poke in self._pokes.values():
            poke.set()

    def answered_404(self) -> list[str]:
        """The REST routes answered with the replay's own 404 so far (``GET /api/v10/x
        (3)``): what a bot asked for that neither the archive nor a default answers."""
        return self.router.answered_404() if self.router is not None else []

    def verdicts(self) -> list[Verdict]:
        """Judge what happened so far; call once, after the clients are done."""
        assert self.replay is not None
        return self.replay.finish(self._now())

    async def stop(self) -> None:
        """Close every client with 1001 (going away), give them ``STOP_CLOSE_TIMEOUT_S``
        to answer, then end everything."""
        self._stopping.set()
        if self.voice is not None:
            await self.voice.stop()
        if self._server is not None:
            self._server.close()
        if self._links:
            closing = [
                link.ws.close(code=GOING_AWAY, message=b"replay stopped") for link in self._links
            ]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*closing, return_exceptions=True), STOP_CLOSE_TIMEOUT_S
                )
            for link in list(self._links):  # no answer to the close: dropped
                transport = link.request.transport
                if transport is not None:
                    transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._transcript is not None:
            self._transcript.close()
            self._transcript = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._archive is not None:
            self._archive.close()
            self._archive = None
            self._payloads = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def _host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._host_for_url}:{self.port}/"

    @property
    def rest_base(self) -> str:
        return f"http://{self._host_for_url}:{self.port}/api/v10"

    @property
    def control_url(self) -> str:
        """Where the control API is (``POST faults``, ``GET status``)."""
        return f"http://{self._host_for_url}:{self.port}{control.CONTROL_PREFIX}"

    # --- control -------------------------------------------------------------------

    def inject(self, fault: Fault) -> control.Injection:
        """A fault at run time (replay/control.py): due now on a connection, or armed.
        Call on the server's loop."""
        assert self.replay is not None
        injection = control.inject(self.replay, fault, list(self._pokes), self._now())
        for poke in self._pokes.values():  # the target sends it; the others re-time
            poke.set()
        return injection

    def status(self) -> dict[str, Any]:
        """Connections, sessions, faults and verdicts so far, as JSON-ready data."""
        assert self.replay is not None
        return {
            "gateway_url": self.gateway_url,
            "rest_base": self.rest_base,
            **control.status(self.replay, list(self._pokes), self._now()),
        }

    async def _control(self, request: web.Request) -> web.StreamResponse:
        if not control.is_loopback(request.remote):
            return web.Response(
                status=403, text="403: the replayer control API answers loopback peers only\n"
            )
        handler = self._control_routes.get((request.method, request.path))
        if handler is not None:
            return await handler(request)
        allowed = [m for m, path in self._control_routes if path == request.path]
        if allowed:
            return web.Response(
                status=405, text=f"405: {request.path} takes {', '.join(allowed)}\n",
                headers={"Allow": ", ".join(allowed)},
            )  # fmt: skip
        routes = ", ".join(f"{m} {path}" for m, path in self._control_routes)
        return web.Response(status=404, text=f"404: no such control route (there are {routes})\n")

    async def _post_fault(self, request: web.Request) -> web.StreamResponse:
        body = await request.content.read(control.MAX_FAULT_BODY_BYTES + 1)
        try:
            injection = self.inject(control.fault_from_body(body))
        except ReplayerError as exc:
            return web.Response(status=400, text=f"400: {exc}\n")
        return web.json_response(injection.to_json(), status=201)

    async def _get_status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.status())

    async def wait_idle(self, grace_s: float, first_client_s: float | None = None) -> None:
        """Return once a client has come and every client has been gone for ``grace_s``;
        or, if ``first_client_s`` is given, once that long has passed without any."""
        if first_client_s is not None and self.connections_total == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_client(), first_client_s)
            if self.connections_total == 0:
                return
        while True:
            while self.connections_total == 0 or self.connections_open > 0:
                self.changed.clear()
                await self.changed.wait()
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), grace_s)
                continue
            return

    async def _first_client(self) -> None:
        while self.connections_total == 0:
            self.changed.clear()
            await self.changed.wait()

    # --- HTTP --------------------------------------------------------------------------

    def _protocol(self) -> asyncio.Protocol:
        """A new TCP connection: aiohttp's handler, given ``header_timeout_s`` to send a
        request head."""
        server = self._runner.server if self._runner is not None else None
        assert server is not None
        handler = server()
        timeout_s = self.header_timeout_s
        # Cancelled by the first request (_handle): a pending timer would keep the handler
        # of a finished connection, and what it holds, alive until it fires.
        key = id(handler)  # unique while the timer (holding the handler) is pending
        self._head_timers[key] = asyncio.get_running_loop().call_later(
            timeout_s, self._head_timeout, key, handler, timeout_s
        )
        return handler

    def _head_timeout(self, key: int, handler: asyncio.Protocol, timeout_s: float) -> None:
        self._head_timers.pop(key, None)
        _head_deadline(handler, timeout_s)

    def _over_budget(self) -> bool:
        """Whether taking one more connection would leave too few descriptors (one per
        connection): it is then refused with 503, said once per burst."""
        server = self._runner.server if self._runner is not None else None
        assert server is not None
        busy = len(server.connections) > self._descriptor_budget
        if busy:
            if not self.refused_busy:
                log.warning(
                    "refusing new connections with 503: %d open, the descriptor limit "
                    "(ulimit -n %d) leaves room for no more",
                    len(server.connections),
                    descriptor_limit(),
                )
            self.refused_busy += 1
        elif self.refused_busy:
            log.warning("accepting connections again (%d were refused)", self.refused_busy)
            self.refused_busy = 0
        return busy

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        timer = self._head_timers.pop(id(request.protocol), None)
        if timer is not None:  # its request head came in time
            timer.cancel()
        if self._over_budget():
            return web.Response(
                status=503, text="503: replayer is out of file descriptors\n",
                headers={"Retry-After": "1", "Connection": "close"},
            )  # fmt: skip
        if request.path.startswith(control.CONTROL_PREFIX):
            return await self._control(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if request.method != "GET":
                # RFC 6455 section 4.1: the opening handshake is a GET.
                return web.Response(
                    status=405, text="405: a WebSocket upgrade must be a GET\n",
                    headers={"Allow": "GET"},
                )  # fmt: skip
            refused = await self._upgrade_fault(request)
            if refused is not None:
                return refused
            return await self._gateway(request)
        assert self.router is not None
        body = await request.read()
        answer = self.router.handle(
            request.method,
            request.path_qs,
            request.headers.get("Authorization"),
            body,
            self._now(),
        )
        if self._transcript is not None:
            self._transcript.write(
                HttpRecord(
                    self._transcript.now(),
                    request.method,
                    request.host,
                    request.path_qs,
                    answer.status,
                    tuple(request.headers.items()),
                    (("Content-Type", answer.content_type),),
                    body,
                    answer.body,
                )
            )
        return web.Response(
            status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type}
        )

    # --- transport faults --------------------------------------------------------------

    async def _upgrade_fault(self, request: web.Request) -> web.StreamResponse | None:
        """A planned refusal of this connection attempt (phase=upgrade / resume-upgrade),
        carried out; None to go on with the upgrade."""
        assert self.replay is not None
        self._attempts += 1
        injector = self.replay.injector
        faults = injector.at_phase(Phase.UPGRADE, self._attempts)
        if resume_key(request.path) is not None:
            faults += injector.at_phase(Phase.RESUME_UPGRADE, self._attempts)
        if not faults:
            return None
        fault, *superseded = faults
        judge = self.replay.judge
        now = self._now()
        for other in superseded:
            judge.not_fired(other, f"superseded: attempt {self._attempts} met {fault.describe()}")
        judge.attempt_refused(now, resume_url=resume_key(request.path) is not None)
        judge.fault_injected(fault, 0, now)
        if fault.kind is FaultKind.HTTP:
            status = fault.code or 503
            return web.Response(status=status, text=f"{status}: replayer fault\n")
        if fault.kind is FaultKind.BLACKHOLE:
            await self._stopping.wait()  # never answered, until the server stops
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=503)  # never sent: the connection is gone

    # --- gateway -----------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        assert self.replay is not None
        ws = web.WebSocketResponse(
            autoping=True, heartbeat=None, compress=False, max_msg_size=MAX_CLIENT_MESSAGE_BYTES,
            timeout=STOP_CLOSE_TIMEOUT_S,
        )  # fmt: skip
        masks = MaskCheck()
        # Bytes a client sent before the handshake's answer reach the frame parser as
        # soon as it exists: check them first.
        masks.feed(getattr(request.protocol, "_message_tail", b""))
        await ws.prepare(request)
        _check_masks(request, masks)
        query = GatewayQuery.from_url(str(request.url))
        self.connections_total += 1
        self.connections_open += 1
        self.changed.set()
        conn_id = 0
        link: _Link | None = None
        try:
            if self._transcript is not None:
                conn_id = self._transcript.next_conn_id
                self._transcript.next_conn_id += 1
                self._transcript.write(
                    ConnectionRecord(
                        conn_id,
                        self._transcript.now(),
                        # "gateway URL as requested": aiohttp reports a WebSocket upgrade
                        # with the http scheme, but the client asked for ws:// (or wss://).
                        str(request.url.with_scheme("wss" if request.secure else "ws")),
                        query.archived(),
                        tuple(request.headers.items()),
                    )
                )
            try:
                encoding = Encoding.parse(query.encoding)
                compression = Compression.parse(query.compress)
            except CodecError as exc:
                # Discord closes a connection whose query it cannot serve with 4002.
                await self._close(ws, conn_id, Close(CloseCode.DECODE_ERROR, str(exc)[:120]))
                return ws
            assert self._payloads is not None
            conn = GatewayConnection(
                self.replay,
                encoding,
                self._payloads,
                path=request.path,
                query=(query.v, query.encoding, query.compress),
            )
            link = _Link(ws, request, FrameEncoder(encoding, compression), conn_id, encoding)
            self._links.add(link)
            if masks.unmasked:
                await self._close(ws, conn_id, Close(PROTOCOL_ERROR, "unmasked client frame"))
                return ws
            await self._drive(conn, link)
        except ConnectionResetError:  # the client reset the connection: it is gone
            if link is not None:
                self._record_close(link, None, Closer.CLIENT, False)
        finally:
            if link is not None:
                self._links.discard(link)
            self.connections_open -= 1
            self._release_memory()
            self.changed.set()
        return ws

    def _release_memory(self) -> None:
        """Once the open connections are down to half of their peak since the last time
        (or none), hand the memory they used back to the system (malloc_trim)."""
        self._open_peak = max(self._open_peak, self.connections_open + 1)
        # Not for a handful (the plugin, conform, a RESUME cycle): trimming costs the loop.
        if self._open_peak >= MIN_TRIM_PEAK and self.connections_open <= self._open_peak // 2:
            self._open_peak = self.connections_open
            release_free_memory()

    def _now(self) -> int:
        return time.monotonic_ns() - self._t0_ns

    def now_ns(self) -> int:
        """The server's clock, as the engine and the judge see it."""
        return self._now()

    async def _drive(self, conn: GatewayConnection, link: _Link) -> None:
        poke = self._pokes[conn] = asyncio.Event()
        receiving: asyncio.Task[WSMessage] = asyncio.ensure_future(link.ws.receive())
        poked: asyncio.Task[bool] = asyncio.ensure_future(poke.wait())
        try:
            await self._execute(conn, link, conn.start(self._now()))
            while conn.state is not State.CLOSED and not link.ws.closed:
                wake = conn.next_wakeup_ns()
                timeout = None if wake is None else max(0.0, (wake - self._now()) / 1e9)
                done, _ = await asyncio.wait(
                    {receiving, poked}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if receiving in done:
                    msg = receiving.result()
                    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                        self._record_client(link, msg.data)
                        if self.frames is not None:
                            data = msg.data
                            raw = data.encode() if isinstance(data, str) else data
                            self.frames.add(client_frame(conn.number, raw, link.encoding))
                        commands = conn.receive(msg.data, self._now())
                        if conn.payload_compression and not link.encoder.deflate_payloads:
                            # IDENTIFY compress=true: from READY on, a zlib stream per message.
                            link.encoder = FrameEncoder(
                                link.encoding, link.encoder.compression, deflate_payloads=True
                            )
                        await self._execute(conn, link, commands)
                        # Not kept while this connection waits (READY and a first batch:
                        # a thousand idle connections would hold theirs).
                        del commands, msg
                        receiving = asyncio.ensure_future(link.ws.receive())
                        continue
                    # CLOSE, CLOSING, CLOSED or ERROR: the client is gone.
                    code = link.ws.close_code
                    clean = msg.type in (
                        WSMsgType.CLOSE,
                        WSMsgType.CLOSING,
                        WSMsgType.CLOSED,
                    ) and code not in (None, 1006)
                    conn.client_closed(code if clean else None, self._now())
                    self._record_close(link, code if clean else None, Closer.CLIENT, clean)
                    return
                if poked in done:
                    poke.clear()
                    poked = asyncio.ensure_future(poke.wait())
                await self._execute(conn, link, conn.tick(self._now()))
            # Fix: the server ended this connection (a close or drop fault, close_at_end,
            # a RESUME elsewhere); say when, so that the judge stops timing its heartbeats.
            conn.client_closed(None, self._now())
            if conn.state is State.CLOSED and not link.ws.closed and not link.aborted:
                # Taken over by a RESUME on another connection (Discord closes the old one).
                await self._close(
                    link.ws,
                    link.conn_id,
                    Close(CloseCode.UNKNOWN_ERROR, "session resumed elsewhere"),
                )
        except (ConnectionResetError, asyncio.CancelledError):
            conn.client_closed(None, self._now())
            raise
        finally:
            receiving.cancel()
            poked.cancel()
            self._pokes.pop(conn, None)

    async def _execute(
        self, conn: GatewayConnection, link: _Link, commands: Iterable[Command]
    ) -> None:
        # The hot path: plain sends are framed here and leave in one transport write per
        # batch (aiohttp's writer costs a call chain and a write per frame). The server
        # never negotiates permessage-deflate (compress=False), so frames need no
        # extension; anything else (a fault's mode, latency, a close) flushes first.
        batch: list[bytes] = []
        append = batch.append
        direct = not link.ws.compress and not conn.latency
        encode = link.encoder.encode_wire
        recording = self._transcript is not None
        frames = self.frames  # the frame log (wait_for, the control API), when kept
        for command in commands:
            if direct and type(command) is Send and not command.mode:
                if not batch:  # nothing awaits until the flush: one check per batch is exact
                    _check_writable(link)  # a frame is logged only if it can go out
                frame, binary = encode(command.raw)
                append(_ws_header(0x2 if binary else 0x1, len(frame)))
                append(frame)
                if recording:
                    self._record_server(link, command, frame, binary)
                if frames is not None:
                    frames.add(
                        Frame(Direction.SERVER, conn.number, command.op, command.t, command.s,
                              command.raw, link.encoding)
                    )  # fmt: skip
                continue
            if batch:
                await _flush(link, batch)
                batch.clear()
            if conn.latency is not None and isinstance(command, Send):
                # Each frame leaves delay +- jitter after it was due, in order: latency,
                # not a slower link (a burst is not spread out).
                delay_ms, jitter_ms = conn.latency
                if link.rng is None:  # made on first use: 2.5 KiB of Mersenne Twister state
                    link.rng = random.Random(link.conn_id)
                jitter = link.rng.randint(-jitter_ms, jitter_ms)
                link.release_at = max(link.release_at, time.monotonic() + (delay_ms + jitter) / 1e3)
                await asyncio.sleep(max(0.0, link.release_at - time.monotonic()))
            if isinstance(command, Send):
                if command.mode == "corrupt-stream":
                    frame_or_text: bytes | str = _CORRUPT_STREAM
                    binary = True
                    await link.ws.send_bytes(_CORRUPT_STREAM)
                else:
                    frame_or_text, binary = link.encoder.encode_raw(command.raw)
                    if command.mode:
                        await _send_in_pieces(link, frame_or_text, binary, command.mode)
                    elif binary:
                        assert isinstance(frame_or_text, bytes)
                        await link.ws.send_bytes(frame_or_text)
                    else:
                        assert isinstance(frame_or_text, str)
                        await link.ws.send_str(frame_or_text)
                self._record_server(link, command, frame_or_text, binary)
                if self.frames is not None:
                    self.frames.add(
                        Frame(Direction.SERVER, conn.number, command.op, command.t, command.s,
                              command.raw, link.encoding)
                    )  # fmt: skip
            elif isinstance(command, Close) and command.code == NO_STATUS:
                # A close frame with no status code: the client sees 1005.
                link.aborted = True
                transport = link.request.transport
                if transport is not None:
                    transport.write(_ws_frame(0x8, b"", fin=True))
                    transport.close()
                self._record_close(link, NO_STATUS, Closer.SERVER, True)
            elif isinstance(command, Close):
                await self._close(link.ws, link.conn_id, command)
            elif isinstance(command, Abort):
                link.aborted = True
                transport = link.request.transport
                if transport is not None:
                    transport.abort()
                self._record_close(link, None, Closer.SERVER, False)
        if batch:
            await _flush(link, batch)
        # A RESUME may have taken a session over from another connection: wake it up.
        assert self.replay is not None
        for other, poke in self._pokes.items():
            if other is not conn and other.state is State.CLOSED:
                poke.set()

    async def _close(self, ws: web.WebSocketResponse, conn_id: int, command: Close) -> None:
        await ws.close(code=command.code, message=command.reason.encode()[:123])
        if self._transcript is not None:
            self._transcript.write(
                CloseRecord(
                    conn_id,
                    self._transcript.now(),
                    command.code,
                    command.reason,
                    Closer.SERVER,
                    True,
                )
            )

    # --- transcript --------------------------------------------------------------------

    def _record_client(self, link: _Link, data: bytes | str) -> None:
        if self._transcript is None:
            return
        from replayer.gateway.codec import FrameDecoder

        raw_frame = data.encode() if isinstance(data, str) else data
        for message in FrameDecoder(link.encoding, Compression.NONE, inflate_payloads=False).feed(
            data
        ):
            payload = message.payload
            self._transcript.write(
                FrameRecord(
                    link.conn_id,
                    self._transcript.now(),
                    Direction.CLIENT,
                    FrameType.TEXT if isinstance(data, str) else FrameType.BINARY,
                    message.raw,
                    None if payload is None else payload.op,
                    None if payload is None else payload.s,
                    None if payload is None else payload.t,
                    len(raw_frame),
                    FrameFlag.NONE if payload is not None else FrameFlag.UNDECODED,
                    message.error,
                )
            )

    def _record_server(self, link: _Link, command: Send, frame: bytes | str, binary: bool) -> None:
        if self._transcript is None:
            return
        self._transcript.write(
            FrameRecord(
                link.conn_id,
                self._transcript.now(),
                Direction.SERVER,
                FrameType.BINARY if binary else FrameType.TEXT,
                command.raw,
                command.op,
                command.s,
                command.t,
                len(frame) if isinstance(frame, bytes) else len(frame.encode()),  # wire bytes
                FrameFlag.INJECTED if command.injected else FrameFlag.NONE,
            )
        )

    def _record_close(self, link: _Link, code: int | None, by: Closer, clean: bool) -> None:
        if self._transcript is not None:
            self._transcript.write(
                CloseRecord(link.conn_id, self._transcript.now(), code, "", by, clean)
            )


class _MaskedOnly:
    """aiohttp's WebSocket frame parser behind a :class:`MaskCheck`: from the first
    unmasked client frame on, nothing more is parsed and the connection is closed with
    1002 (RFC 6455 section 5.1; aiohttp itself accepts unmasked frames)."""

    def __init__(self, parser: Any, masks: MaskCheck, transport: asyncio.BaseTransport) -> None:
        self._parser = parser
        self._masks = masks
        self._transport = transport

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._masks.feed(data):
            result: tuple[bool, bytes] = self._parser.feed_data(data)
            return result
        if not self._transport.is_closing():
            log.warning("an unmasked client frame (RFC 6455 section 5.1): closed with 1002")
            close = PROTOCOL_ERROR.to_bytes(2, "big") + b"unmasked client frame"
            assert isinstance(self._transport, asyncio.WriteTransport)
            self._transport.write(_ws_frame(0x8, close, fin=True))
            self._transport.close()
        return True, b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


def _check_masks(request: web.Request, masks: MaskCheck) -> None:
    """Put the upgraded connection's frame parser behind ``masks``."""
    protocol = request.protocol
    parser = getattr(protocol, "_payload_parser", None)
    transport = request.transport
    if parser is not None and transport is not None:
        protocol._payload_parser = _MaskedOnly(parser, masks, transport)


def _head_deadline(handler: asyncio.Protocol, timeout_s: float) -> None:
    """Drop a connection that has not sent a whole request head in time."""
    transport = getattr(handler, "transport", None)
    if getattr(handler, "_request_count", 1) == 0 and transport is not None:
        log.warning("dropped a connection that sent no request head in %g s", timeout_s)
        transport.abort()


# Not a continuation of any zlib or zstd stream (and not JSON): what breaks a context.
_CORRUPT_STREAM = b"\xff\xfe\xfdreplayer: not a compressed stream\x00\x00\xff\xff"


def _ws_frame(opcode: int, payload: bytes, *, fin: bool) -> bytes:
    """One unmasked WebSocket frame, as a server sends it (RFC 6455 section 5.2)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def _ws_header(opcode: int, n: int) -> bytes:
    """The head of one unmasked final WebSocket frame of ``n`` payload bytes (RFC 6455
    section 5.2)."""
    if n < 126:
        return _HEAD_SHORT.pack(0x80 | opcode, n)
    if n < 1 << 16:
        return _HEAD_16.pack(0x80 | opcode, 126, n)
    return _HEAD_64.pack(0x80 | opcode, 127, n)


_HEAD_SHORT, _HEAD_16, _HEAD_64 = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")
# Bytes the transport may hold before a flush waits for the client to read (aiohttp's
# writer waits past its own 64 KiB limit too).
WRITE_BUFFER_LIMIT = 1 << 16
# Connections open at a peak before their going is worth a malloc_trim.
MIN_TRIM_PEAK = 16


def _check_writable(link: _Link) -> asyncio.Transport:
    """The connection's transport; ``ConnectionResetError`` when it is closing, as aiohttp's
    own writer raises."""
    transport = link.request.transport
    if transport is None or transport.is_closing() or link.ws.closed:
        raise ConnectionResetError("Cannot write to closing transport")
    return transport


async def _flush(link: _Link, parts: list[bytes]) -> None:
    """Write pre-framed WebSocket frames in one go; wait while the client is slow to read.
    A closing connection raises ``ConnectionResetError``, as aiohttp's own writer does."""
    transport = _check_writable(link)
    transport.write(b"".join(parts))
    if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
        protocol = link.request.protocol
        if getattr(protocol, "_paused", False):
            await protocol._drain_helper()


def _pieces(data: bytes) -> list[bytes]:
    """``data`` in three pieces cut at odd offsets (one piece if it is too short)."""
    if len(data) < 3:
        return [data]
    first = max(1, len(data) // 3) | 1
    second = max(first + 1, (2 * len(data)) // 3) | 1
    cuts = sorted({min(first, len(data) - 1), min(second, len(data) - 1)})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


async def _send_in_pieces(link: _Link, frame: bytes | str, binary: bool, mode: str) -> None:
    """One message over several WebSocket frames (fragment), or, for zlib-stream, over
    several messages (split: the client buffers until the 00 00 ff ff suffix)."""
    data = frame if isinstance(frame, bytes) else frame.encode()
    transport = link.request.transport
    if mode == "fragment" and transport is not None:
        pieces = _pieces(data)
        for i, piece in enumerate(pieces):
            opcode = (0x2 if binary else 0x1) if i == 0 else 0x0
            transport.write(_ws_frame(opcode, piece, fin=i == len(pieces) - 1))
    elif mode == "split" and binary:
        for piece in _pieces(data):
            await link.ws.send_bytes(piece)
    elif binary:
        await link.ws.send_bytes(data)
    else:
        await link.ws.send_str(data.decode())


class _Link:
    """What the shell needs to talk to one client."""

    __slots__ = (
        "aborted", "conn_id", "decoder", "encoder", "encoding", "release_at", "request", "rng",
        "ws",
    )  # fmt: skip

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        encoder: FrameEncoder,
        conn_id: int,
        encoding: Encoding,
    ) -> None:
        self.ws = ws
        self.request = request
        self.encoder = encoder
        self.conn_id = conn_id
        self.encoding = encoding
        self.aborted = False  # the TCP connection was dropped on purpose (a fault)
        # Latency jitter, the same on every run (seeded with conn_id); made when needed.
        self.rng: random.Random | None = None
        self.release_at = 0.0  # monotonic time the last delayed frame leaves (latency)
        # For the transcript: clients never compress (Events > Gateway > Encoding and Compression).
        self.decoder = FrameDecoder(encoding, Compression.NONE, inflate_payloads=False)
