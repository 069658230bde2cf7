"""A scripted voice server (a stand-in for a Discord voice server, Topics > Voice Connections)
and a raw voice client, for recording tests: plain ws:// on 127.0.0.1, port 0.

The server speaks the handshake as the docs give it: HELLO (op 8) on connect; IDENTIFY (op 0)
-> READY (op 2); SELECT_PROTOCOL (op 1) -> SESSION_DESCRIPTION (op 4), then a binary DAVE
external sender (op 25); HEARTBEAT (op 3) -> HEARTBEAT_ACK (op 6) with the heartbeat's ``t``;
RESUME (op 7) -> RESUMED (op 9). Every server message but HELLO carries the next ``seq`` of the
voice session (kept across a resume). It checks nothing: tokens are whatever the client sends.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from replayer.voice.frames import build_binary, parse_binary
from replayer.voice.opcodes import VoiceOp

__all__ = ["VoiceUpstream", "voice_client_session", "voice_upstream"]

TIMEOUT = 20 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))
HEARTBEAT_INTERVAL_MS = 13750.0
MODE = "aead_xchacha20_poly1305_rtpsize"


@dataclass
class VoiceUpstream:
    port: int = 0
    connections: int = 0
    received: list[int] = field(default_factory=list)  # client opcodes, in order
    _seq: int = 0

    @property
    def endpoint(self) -> str:
        """What its VOICE_SERVER_UPDATE says (a scheme in front: it speaks ws://, not wss://)."""
        return f"ws://127.0.0.1:{self.port}"

    def _next(self, op: int, d: Any) -> str:
        self._seq += 1
        return json.dumps({"op": op, "d": d, "seq": self._seq})

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        await ws.send(
            json.dumps(
                {"op": VoiceOp.HELLO, "d": {"v": 8, "heartbeat_interval": HEARTBEAT_INTERVAL_MS}}
            )
        )
        async for message in ws:
            if isinstance(message, bytes):
                self.received.append(parse_binary(message, from_server=False).op)
                continue
            obj = json.loads(message)
            op, d = obj.get("op"), obj.get("d") or {}
            self.received.append(op)
            if op == VoiceOp.IDENTIFY:
                ready = {"ssrc": 4242, "ip": "127.0.0.1", "port": 50004, "modes": [MODE]}
                await ws.send(self._next(VoiceOp.READY, ready))
            elif op == VoiceOp.SELECT_PROTOCOL:
                session = {"mode": MODE, "secret_key": list(range(32)), "dave_protocol_version": 0}
                await ws.send(self._next(VoiceOp.SESSION_DESCRIPTION, session))
                self._seq += 1
                await ws.send(build_binary(VoiceOp.DAVE_MLS_EXTERNAL_SENDER, b"sender", self._seq))
            elif op == VoiceOp.HEARTBEAT:
                await ws.send(self._next(VoiceOp.HEARTBEAT_ACK, {"t": d.get("t")}))
            elif op == VoiceOp.RESUME:
                await ws.send(self._next(VoiceOp.RESUMED, None))
            elif op == VoiceOp.SPEAKING:
                pass


@asynccontextmanager
async def voice_upstream() -> AsyncIterator[VoiceUpstream]:
    upstream = VoiceUpstream()
    async with serve(upstream.handle, "127.0.0.1", 0) as server:
        upstream.port = next(iter(server.sockets)).getsockname()[1]
        yield upstream


def voice_url(endpoint: str) -> str:
    """The URL a client opens for an endpoint (discord.py: ``wss://{endpoint}/?v=8``; a scheme
    the endpoint names is kept, as discord.py strips a ``wss://`` prefix)."""
    base = endpoint if "://" in endpoint else f"ws://{endpoint}"
    return base.rstrip("/") + "/?v=8"


async def _recv(ws: Any) -> Any:
    message = await asyncio.wait_for(ws.recv(), TIMEOUT)
    return (
        parse_binary(message, from_server=True)
        if isinstance(message, bytes)
        else json.loads(message)
    )


async def voice_client_session(
    endpoint: str,
    *,
    server_id: str,
    session_id: str,
    identify_token: str,
    resume_token: str,
    proxy: str | None = None,
) -> list[int]:
    """A raw voice client: IDENTIFY, SELECT_PROTOCOL, a heartbeat with ``seq_ack``, SPEAKING,
    a DAVE key package; a second connection RESUMEs with the last seq. The server opcodes seen."""
    seen: list[int] = []
    last_seq = 0
    kwargs: dict[str, Any] = {"proxy": proxy} if proxy is not None else {}

    async def expect(ws: Any, op: int) -> None:
        nonlocal last_seq
        while True:
            message = await _recv(ws)
            got = message.op if not isinstance(message, dict) else message["op"]
            seq = message.seq if not isinstance(message, dict) else message.get("seq")
            last_seq = seq if seq is not None else last_seq
            seen.append(got)
            if got == op:
                return

    async with connect(voice_url(endpoint), **kwargs) as ws:
        await expect(ws, VoiceOp.HELLO)
        identify = {
            "server_id": server_id,
            "user_id": "9",
            "session_id": session_id,
            "token": identify_token,
            "max_dave_protocol_version": 0,
        }
        await ws.send(json.dumps({"op": VoiceOp.IDENTIFY, "d": identify}))
        await expect(ws, VoiceOp.READY)
        select = {"protocol": "udp", "data": {"address": "127.0.0.1", "port": 40000, "mode": MODE}}
        await ws.send(json.dumps({"op": VoiceOp.SELECT_PROTOCOL, "d": select}))
        await expect(ws, VoiceOp.SESSION_DESCRIPTION)
        await expect(ws, VoiceOp.DAVE_MLS_EXTERNAL_SENDER)
        await ws.send(build_binary(VoiceOp.DAVE_MLS_KEY_PACKAGE, b"key-package"))
        await ws.send(json.dumps({"op": VoiceOp.HEARTBEAT, "d": {"t": 1001, "seq_ack": last_seq}}))
        await expect(ws, VoiceOp.HEARTBEAT_ACK)
        await ws.send(
            json.dumps({"op": VoiceOp.SPEAKING, "d": {"speaking": 1, "delay": 0, "ssrc": 4242}})
        )
    async with connect(voice_url(endpoint), **kwargs) as ws:
        await expect(ws, VoiceOp.HELLO)
        resume = {
            "server_id": server_id,
            "session_id": session_id,
            "token": resume_token,
            "seq_ack": last_seq,
        }
        await ws.send(json.dumps({"op": VoiceOp.RESUME, "d": resume}))
        await expect(ws, VoiceOp.RESUMED)
    return seen
