"""The reference client's voice part: a voice connection that does what the voice docs
say, with switches that make it get one thing wrong (the voice cases' wrong twins).

Given the main gateway's VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE (Topics > Voice
Connections > Retrieving Voice Server Information), it connects to ``wss://<endpoint>/?v=8``
(TLS, trusting the CA file it is given), IDENTIFYs, discovers its address over UDP, selects
``aead_xchacha20_poly1305_rtpsize``, says SPEAKING and sends an RTP packet every 20 ms
(header and a dummy payload: the face counts packets, it never decrypts them). Heartbeats
``{t, seq_ack}`` every ``heartbeat_interval`` (Heartbeating, since v8). Op 21 / 24: op 23
with the transition id (Protocol Transitions). Closes by the Voice Close Event Codes table:
4015 RESUME with ``seq_ack`` = the last ``seq``; 4006, 4009 (and 1000, 1001) a new session;
4014, 4021, 4022 wait for a new VOICE_SERVER_UPDATE; the rest stop. A connection gone
without a close frame: RESUME. A new VOICE_SERVER_UPDATE: close, IDENTIFY with its token at
its endpoint; ``endpoint: null``: close and wait (Gateway Events > Voice Server Update).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from replayer.voice.close_codes import VoiceReconnect, voice_close_rule
from replayer.voice.ip_discovery import REQUEST, RESPONSE, build_discovery, parse_discovery
from replayer.voice.opcodes import VoiceOp

VOICE_MISTAKES = {
    "voice-no-seq-ack": "voice heartbeats without seq_ack (the v4 habit on v8)",
    "voice-identify-not-resume": "a new voice session where it should RESUME (4015, a drop)",
    "voice-resume-ended-session": "RESUMEs a voice session 4006 / 4009 ended",
    "voice-reconnect-always": "reconnects to voice after 4014, 4017, 4021, 4022",
    "voice-ignore-server-update": "stays on its voice connection after a VOICE_SERVER_UPDATE",
    "voice-ignore-dave": "does not answer op 21 / 24 with op 23",
    "voice-silent-after-reconnect": "sends no audio once back on a new voice connection",
}

MODE = "aead_xchacha20_poly1305_rtpsize"
FRAME_S = 0.02  # one RTP packet per 20 ms of audio
DISCOVERY_TIMEOUT_S = 2.0
RECONNECT_DELAY_S = 0.1


def rtp_packet(ssrc: int, seq: int) -> bytes:
    """An RTP packet (RFC 3550: version 2, payload type 0x78) with a dummy payload."""
    timestamp = (seq * 960) & 0xFFFFFFFF
    header = bytes([0x80, 0x78]) + (seq & 0xFFFF).to_bytes(2, "big")
    return header + timestamp.to_bytes(4, "big") + ssrc.to_bytes(4, "big") + b"\xf8\xff\xfe"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.answers.put_nowait(data)


class _Moved(Exception):
    """A new VOICE_SERVER_UPDATE came: this voice connection is over."""


@dataclass
class ReferenceVoice:
    """One guild's voice connection, driven by the main gateway's voice dispatches."""

    ca_file: str | None
    say: Callable[[str], None]
    mistake: str | None = None
    user_id: str = ""
    session_id: str | None = None  # VOICE_STATE_UPDATE's
    server_id: str | None = None
    token: str | None = None
    endpoint: str | None = None
    last_seq: int = -1  # the last numbered voice message received
    ssrc: int | None = None
    connections: int = 0
    rtp_seq: int = 0
    speaking: bool = False  # send audio
    updates: int = 0  # VOICE_SERVER_UPDATEs so far
    seen_updates: int = 0  # ... when the last voice connection began
    _update: asyncio.Event = field(default_factory=asyncio.Event)  # a VOICE_SERVER_UPDATE came
    _task: asyncio.Task[None] | None = None
    _udp: asyncio.DatagramTransport | None = None
    _udp_protocol: _Udp | None = None

    def wrong(self, mistake: str) -> bool:
        return self.mistake == mistake

    # --- the main gateway's dispatches ---------------------------------------------

    def state_update(self, d: dict[str, Any]) -> None:
        if str(d.get("user_id")) == self.user_id and d.get("channel_id") is not None:
            self.session_id = str(d["session_id"])

    def server_update(self, d: dict[str, Any]) -> None:
        """A VOICE_SERVER_UPDATE: the first starts the voice connection; a later one moves
        it (or, ``endpoint: null``, ends it until the next)."""
        first = self.token is None
        if not first and self.wrong("voice-ignore-server-update"):
            self.say("voice: a new VOICE_SERVER_UPDATE, ignored")
            return
        self.server_id = str(d["guild_id"])
        self.token = str(d["token"])
        self.endpoint = d.get("endpoint")
        self.updates += 1
        self._update.set()
        if first:
            self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._udp is not None:
            self._udp.close()

    # --- the voice connection ----------------------------------------------------------

    async def _run(self) -> None:
        ssl_context = ssl.create_default_context(cafile=self.ca_file)
        connector = aiohttp.TCPConnector(ssl=ssl_context)
        audio = asyncio.ensure_future(self._audio())
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                how = "identify"
                while how != "stop":
                    if how == "wait" or self.endpoint is None:
                        self.say("voice: waiting for a new VOICE_SERVER_UPDATE")
                        while self.updates == self.seen_updates or self.endpoint is None:
                            self._update.clear()
                            await self._update.wait()
                        how = "identify"
                    how = await self._connection(http, how)
                    if how in ("identify", "resume"):
                        await asyncio.sleep(RECONNECT_DELAY_S)
        except Exception as exc:
            self.say(f"voice: stopped on {exc!r}")
            raise
        finally:
            audio.cancel()
        self.say("voice: stopped")

    async def _connection(self, http: aiohttp.ClientSession, how: str) -> str:
        self._update.clear()
        self.seen_updates = self.updates
        self.connections += 1
        url = f"wss://{self.endpoint}/?v=8"
        self.say(f"voice: connection {self.connections} to {url} ({how})")
        try:
            ws = await http.ws_connect(url, autoping=True, max_msg_size=0)
        except (aiohttp.ClientError, OSError) as exc:
            self.say(f"voice: connection attempt failed: {exc!r}")
            return how
        beats: asyncio.Future[None] | None = None
        try:
            hello = await ws.receive()
            if hello.type is not aiohttp.WSMsgType.TEXT:
                return self._after_close(ws.close_code)
            interval_s = json.loads(hello.data)["d"]["heartbeat_interval"] / 1000
            beats = asyncio.ensure_future(self._heartbeats(ws, interval_s))
            if how == "resume":
                d = {"server_id": self.server_id, "session_id": self.session_id,
                     "token": self.token, "seq_ack": self.last_seq}  # fmt: skip
                await self._send(ws, VoiceOp.RESUME, d)
            else:
                self.last_seq = -1
                d = {"server_id": self.server_id, "user_id": self.user_id,
                     "session_id": self.session_id, "token": self.token,
                     "max_dave_protocol_version": 0}  # fmt: skip
                await self._send(ws, VoiceOp.IDENTIFY, d)
            return await self._read(ws)
        except _Moved:
            self.speaking = False
            await ws.close(code=1000)
            return "identify"  # endpoint null: _run waits for the next
        finally:
            if beats is not None:
                beats.cancel()
            await ws.close()

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, op: int, d: Any) -> None:
        with contextlib.suppress(ConnectionError):
            await ws.send_str(json.dumps({"op": op, "d": d}))

    async def _heartbeats(self, ws: aiohttp.ClientWebSocketResponse, interval_s: float) -> None:
        nonce = 0
        while True:
            nonce += 1
            d: dict[str, Any] = {"t": nonce}
            if not self.wrong("voice-no-seq-ack"):
                d["seq_ack"] = self.last_seq
            await self._send(ws, VoiceOp.HEARTBEAT, d)
            await asyncio.sleep(interval_s)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        while True:
            receiving = asyncio.ensure_future(ws.receive())
            moved = asyncio.ensure_future(self._update.wait())
            await asyncio.wait({receiving, moved}, return_when=asyncio.FIRST_COMPLETED)
            moved.cancel()
            if not receiving.done():
                receiving.cancel()
                self.say("voice: a new VOICE_SERVER_UPDATE: leaving this voice server")
                raise _Moved
            msg = receiving.result()
            if msg.type is aiohttp.WSMsgType.BINARY:
                continue  # DAVE's binary messages: this client negotiates no DAVE
            if msg.type is not aiohttp.WSMsgType.TEXT:
                self.speaking = False
                code = msg.data if msg.type is aiohttp.WSMsgType.CLOSE else ws.close_code
                return self._after_close(code)
            payload = json.loads(msg.data)
            if isinstance(payload.get("seq"), int):
                self.last_seq = payload["seq"]
            await self._handle(ws, payload.get("op"), payload.get("d"))

    async def _handle(self, ws: aiohttp.ClientWebSocketResponse, op: Any, d: Any) -> None:
        if op == VoiceOp.READY:
            self.ssrc = int(d["ssrc"])
            address, port = await self._discover(str(d["ip"]), int(d["port"]), self.ssrc)
            data = {"address": address, "port": port, "mode": MODE}
            await self._send(ws, VoiceOp.SELECT_PROTOCOL, {"protocol": "udp", "data": data})
        elif op == VoiceOp.SESSION_DESCRIPTION:
            await self._send(ws, VoiceOp.SPEAKING, {"speaking": 1, "delay": 0, "ssrc": self.ssrc})
            self._speak()
        elif op == VoiceOp.RESUMED:
            self._speak()
        elif op in (VoiceOp.DAVE_PREPARE_TRANSITION, VoiceOp.DAVE_PREPARE_EPOCH) and (
            isinstance(d, dict) and not self.wrong("voice-ignore-dave")
        ):
            ready = {"transition_id": d.get("transition_id")}
            await self._send(ws, VoiceOp.DAVE_TRANSITION_READY, ready)

    def _speak(self) -> None:
        if self.connections > 1 and self.wrong("voice-silent-after-reconnect"):
            self.say("voice: back, but silent")
            return
        self.speaking = True

    def _after_close(self, code: int | None) -> str:
        """Voice Close Event Codes (``voice_close_rule``): what to do after the server
        closed with ``code``; no close frame (None, 1006): RESUME."""
        self.say(f"voice: closed by the server: {code}")
        if code in (None, 1006):
            return "identify" if self.wrong("voice-identify-not-resume") else "resume"
        rule = voice_close_rule(code)
        if rule is VoiceReconnect.RESUME:
            return "identify" if self.wrong("voice-identify-not-resume") else "resume"
        if rule is VoiceReconnect.NEW_SESSION:
            return "resume" if self.wrong("voice-resume-ended-session") else "identify"
        if self.wrong("voice-reconnect-always"):
            return "identify"
        return "wait" if rule is VoiceReconnect.WAIT_FOR_SERVER_UPDATE else "stop"

    async def _discover(self, ip: str, port: int, ssrc: int) -> tuple[str, int]:
        """IP discovery (Voice Connections > IP Discovery) on the one UDP socket."""
        if self._udp is None:
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.create_datagram_endpoint(_Udp, remote_addr=(ip, port))
            self._udp, self._udp_protocol = transport, protocol
        assert self._udp_protocol is not None
        self._udp.sendto(build_discovery(REQUEST, ssrc))
        async with asyncio.timeout(DISCOVERY_TIMEOUT_S):
            while True:
                answer = parse_discovery(await self._udp_protocol.answers.get())
                if answer is not None and answer.type == RESPONSE:
                    return answer.address, answer.port

    async def _audio(self) -> None:
        """An RTP packet every 20 ms while speaking."""
        while True:
            await asyncio.sleep(FRAME_S)
            if self.speaking and self._udp is not None and self.ssrc is not None:
                self.rtp_seq += 1
                self._udp.sendto(rtp_packet(self.ssrc, self.rtp_seq))
