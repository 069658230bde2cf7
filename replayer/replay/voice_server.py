"""I/O shell of the replay's voice face: a TLS WebSocket server on two loopback ports (the
second is where a ``voice-server-update:new-endpoint`` fault sends the client) and a UDP
responder; each voice WebSocket drives a sans-I/O :class:`VoiceConnection`.

With a transcript (``replay --transcript``), each voice WebSocket is recorded as a voice
connection (``ConnectionKind.VOICE``, docs/archive-format.md): its frames in both
directions under their voice opcodes and ``seq``, and its close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import WSMsgType, web

from replayer.archive.records import (
    Closer,
    CloseRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    FrameType,
    Record,
)
from replayer.gateway.opcodes import Direction
from replayer.gateway.url import GatewayQuery
from replayer.replay.engine import Abort, Close
from replayer.replay.voice.engine import (
    VoiceCommand,
    VoiceConnection,
    VoiceReplay,
    VoiceSend,
    VoiceState,
)
from replayer.replay.voice.faults import VoicePlan
from replayer.replay.voice_ca import VoiceTls, local_ca
from replayer.voice.messages import VoiceMessageError, read_voice_message

log = logging.getLogger("replayer.replay.voice")
ENDPOINTS = 2  # listening ports: the first, and the "new endpoint" of a fault
STOP_CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class VoiceOptions:
    """The voice face of a replay (``ReplayServer(voice=...)``)."""

    ca_dir: Path | None = None  # None: $REPLAYER_HOME/ca or ~/.replayer/ca
    plan: VoicePlan | None = None
    heartbeat_interval_ms: int | None = None  # None: Discord's 13750


class VoiceTranscript(Protocol):
    """Where the face records its connections: the replay's transcript (server.py), whose
    connection numbers the main gateway's and the voice face's connections share."""

    next_conn_id: int

    def now(self) -> int: ...

    def write(self, record: Record) -> None: ...


class _Recording:
    """One voice WebSocket in the transcript: its frames and its one close."""

    def __init__(self, transcript: VoiceTranscript, request: web.Request) -> None:
        self.transcript = transcript
        self.conn_id = transcript.next_conn_id
        transcript.next_conn_id += 1
        self.closed = False
        # "as requested": aiohttp reports the upgrade with the http scheme; the client
        # asked for wss:// (the face speaks TLS only).
        url = str(request.url.with_scheme("wss" if request.secure else "ws"))
        transcript.write(
            ConnectionRecord(
                self.conn_id,
                transcript.now(),
                url,
                GatewayQuery.from_url(url).archived(),
                tuple(request.headers.items()),
                kind=ConnectionKind.VOICE,
            )
        )

    def frame(self, direction: Direction, data: str | bytes, *, injected: bool = False) -> None:
        raw = data.encode() if isinstance(data, str) else data
        binary = isinstance(data, bytes)
        op: int | None = None
        seq: int | None = None
        flags = FrameFlag.INJECTED if injected else FrameFlag.NONE
        error = None
        try:
            head = read_voice_message(raw, binary=binary, from_server=direction is Direction.SERVER)
            op, seq = head.op, head.seq
        except VoiceMessageError as exc:  # a client's garbage is recorded as it came
            flags, error = flags | FrameFlag.UNDECODED, str(exc)
        self.transcript.write(
            FrameRecord(
                self.conn_id, self.transcript.now(), direction,
                FrameType.BINARY if binary else FrameType.TEXT, raw, op, seq, None, len(raw),
                flags, error,
            )
        )  # fmt: skip

    def close(self, code: int | None, by: Closer, clean: bool, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.transcript.write(
            CloseRecord(self.conn_id, self.transcript.now(), code, reason, by, clean)
        )


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, face: VoiceFace) -> None:
        self.face = face
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        replay = self.face.replay
        if replay is None or self.transport is None:
            return
        host = str(addr[0])
        answer = replay.datagram(data, (host, int(addr[1])), self.face.now_ns())
        if answer is not None:
            self.transport.sendto(answer, addr)


class VoiceFace:
    """The voice gateway of a replay; ``start`` binds, ``stop`` closes everything."""

    def __init__(
        self,
        now_ns: Callable[[], int],
        *,
        host: str = "127.0.0.1",
        ca_dir: Path | None = None,
        plan: VoicePlan | None = None,
        window_ms: int = 15_000,
        heartbeat_interval_ms: int | None = None,
    ) -> None:
        self.now_ns = now_ns
        self.host = host
        self.ca_dir = ca_dir
        self.plan = plan
        self.window_ms = window_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.tls: VoiceTls | None = None
        self.replay: VoiceReplay | None = None
        self.ports: list[int] = []
        self.udp_port = 0
        self.on_main_change: Callable[[], None] | None = None  # pokes the main gateway
        self.transcript: VoiceTranscript | None = None  # records the voice connections
        self._runner: web.AppRunner | None = None
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._pokes: dict[VoiceConnection, asyncio.Event] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._recordings: dict[web.WebSocketResponse, _Recording] = {}

    @property
    def _host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Creating the CA (an RSA key) takes a moment: not on the event loop.
        self.tls = await loop.run_in_executor(None, local_ca, self.ca_dir)
        context = self.tls.server_context()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        for _ in range(ENDPOINTS):
            listening = await loop.create_server(server, self.host, 0, ssl=context)
            self._servers.append(listening)
            self.ports.append(listening.sockets[0].getsockname()[1])
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(self.host, 0)
        )
        self._udp = transport
        self.udp_port = transport.get_extra_info("sockname")[1]
        endpoints = tuple(f"{self._host_for_url}:{port}" for port in self.ports)
        kwargs = {}
        if self.heartbeat_interval_ms is not None:
            kwargs["heartbeat_interval_ms"] = self.heartbeat_interval_ms
        self.replay = VoiceReplay(
            endpoints, (self.host, self.udp_port), self.plan, window_ms=self.window_ms, **kwargs
        )
        self.replay.on_change = self._changed

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for ws in self._sockets:
            if (recording := self._recordings.get(ws)) is not None:
                recording.close(1001, Closer.SERVER, True, "replay stopped")
        closing = [ws.close(code=1001, message=b"replay stopped") for ws in self._sockets]
        if closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*closing, return_exceptions=True), STOP_CLOSE_TIMEOUT_S
                )
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def _changed(self) -> None:
        for poke in self._pokes.values():
            poke.set()
        if self.on_main_change is not None:
            self.on_main_change()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self.replay is not None
        ws = web.WebSocketResponse(compress=True, max_msg_size=1 << 20, autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        if self.transcript is not None:
            self._recordings[ws] = _Recording(self.transcript, request)
        version = request.query.get("v", "")
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = int(sockname[1]) if sockname else None
        conn = VoiceConnection(
            self.replay, version=int(version) if version.isdigit() else None, port=port
        )
        try:
            await self._drive(conn, ws, request)
        except ConnectionResetError:
            conn.client_closed(None, self.now_ns())
        finally:
            self._sockets.discard(ws)
            self._pokes.pop(conn, None)
            if (recording := self._recordings.pop(ws, None)) is not None:
                recording.close(None, Closer.CLIENT, False)  # gone without a close frame
        return ws

    async def _drive(
        self, conn: VoiceConnection, ws: web.WebSocketResponse, request: web.Request
    ) -> None:
        poke = self._pokes[conn] = asyncio.Event()
        receiving = asyncio.ensure_future(ws.receive())
        poked = asyncio.ensure_future(poke.wait())
        try:
            over = await self._execute(ws, request, conn.start(self.now_ns()))
            while not over and conn.state is not VoiceState.CLOSED and not ws.closed:
                done, _ = await asyncio.wait(
                    {receiving, poked}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiving in done:
                    msg = receiving.result()
                    recording = self._recordings.get(ws)
                    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                        code = ws.close_code
                        clean = msg.type is not WSMsgType.ERROR and code not in (None, 1006)
                        if recording is not None:
                            recording.close(code if clean else None, Closer.CLIENT, clean)
                        conn.client_closed(code if clean else None, self.now_ns())
                        return
                    if recording is not None:
                        recording.frame(Direction.CLIENT, msg.data)
                    over = await self._execute(ws, request, conn.receive(msg.data, self.now_ns()))
                    receiving = asyncio.ensure_future(ws.receive())
                    continue
                poke.clear()
                poked = asyncio.ensure_future(poke.wait())
                over = await self._execute(ws, request, conn.tick(self.now_ns()))
            if not over and not ws.closed:
                # Taken over by a RESUME on another connection.
                if (recording := self._recordings.get(ws)) is not None:
                    recording.close(4006, Closer.SERVER, True, "session resumed elsewhere")
                await ws.close(code=4006, message=b"session resumed elsewhere")
            conn.client_closed(None, self.now_ns())
        finally:
            receiving.cancel()
            poked.cancel()

    async def _execute(
        self, ws: web.WebSocketResponse, request: web.Request, commands: Iterable[VoiceCommand]
    ) -> bool:
        """Carry the commands out; True once the connection is over."""
        recording = self._recordings.get(ws)
        for command in commands:
            if isinstance(command, VoiceSend):
                if recording is not None:
                    recording.frame(Direction.SERVER, command.data, injected=command.injected)
                if isinstance(command.data, bytes):
                    await ws.send_bytes(command.data)
                else:
                    await ws.send_str(command.data)
            elif isinstance(command, Close):
                if recording is not None:
                    recording.close(command.code, Closer.SERVER, True, command.reason)
                await ws.close(code=command.code, message=command.reason.encode()[:123])
                return True
            elif isinstance(command, Abort):
                if recording is not None:
                    recording.close(None, Closer.SERVER, False)  # a voice-drop: no close frame
                if request.transport is not None:
                    request.transport.abort()
                return True
        return False
