"""A reference gateway client that does what the Discord docs say, with switches that
make it get one thing wrong: ``replayer conform --client reference`` runs it (it PASSes
the catalogue), ``--client reference --mistake twin`` runs each case's wrong twin.

Run by itself: ``python -m replayer.conform.reference_client [--mistake NAME|twin]``; it
reads the environment a conformance case sets (docs/conformance.md):
``REPLAYER_GATEWAY_URL``, ``REPLAYER_TOKEN``, ``REPLAYER_CASE``, ``REPLAYER_ENCODING``,
``REPLAYER_COMPRESS``, ``REPLAYER_DEAF_TIMEOUT_S``, ``REPLAYER_REQUEST_MEMBERS``, and for
voice ``REPLAYER_VOICE`` (1: join ``REPLAYER_VOICE_CHANNEL`` of ``REPLAYER_VOICE_GUILD``
after that guild's GUILD_CREATE, trusting the CA file ``REPLAYER_VOICE_CA``: its voice part
is ``reference_voice.py``).

What it does (Events > Gateway; Topics > Opcodes and Status Codes): a HEARTBEAT right
after HELLO and then every ``heartbeat_interval``, a zombie check on the missing ACK
(close 4000, RESUME); op 1 answered at once; op 7: close 4000 and RESUME on READY's
``resume_gateway_url``, with the session's query; op 9 true: RESUME; op 9 false: wait 1-5 s
(1.2 s) and IDENTIFY on the gateway URL, at most one IDENTIFY per 5 s (max_concurrency
1); close codes by the table (fatal: stop; 4007, 4009, 1000, 1001: IDENTIFY; others:
RESUME); failed attempts tried again with growing delays, back to the gateway URL after
three refused resume URL attempts; a payload it cannot decode: close 4000, RESUME.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from replayer.conform.reference_voice import VOICE_MISTAKES, ReferenceVoice
from replayer.gateway.codec import FrameDecoder
from replayer.gateway.compression import Compression
from replayer.gateway.encoding import Encoding
from replayer.gateway.etf import etf_encode

MISTAKES = {
    "late-heartbeats": "heartbeats every 2.5 intervals",
    "wait-forever": "never gives up on a connection whose HELLO or READY does not come",
    "give-up": "exits where it should reconnect (op 7 for HELLO, op 9, refusals, 1000)",
    "ignore-heartbeat-request": "does not answer op 1",
    "identify-instead-of-resume": "IDENTIFYs where it should RESUME",
    "resume-after-session-end": "RESUMEs after op 9 false, 4007 or 4009",
    "reconnect-after-fatal": "reconnects after a fatal close code",
    "no-backoff": "tries again at once after a failed connection",
    "ignore-corrupt": "stays on a connection that sent what it cannot decode",
    "close-1000-on-zombie": "closes a zombie connection with 1000 (ends the session)",
    "impatient": "takes an ACK later than 100 ms for a zombie connection",
    "ignore-deaf": "stays on a connection that sends no dispatch",
    "resume-on-gateway-url": "RESUMEs on the gateway URL, not resume_gateway_url",
    "other-query": "RESUMEs with another query (v=9) than the session began with",
    "identify-on-resume-url": "starts a new session on the old resume URL",
    "no-fallback": "retries a refused resume URL for ever",
    "flood": "125 presence updates right after READY (limit: 120 per 60 s)",
    "identify-at-once": "re-IDENTIFYs at once after op 9 false",
    "stale-heartbeat-seq": "heartbeats carry READY's s, not the last one received",
    "split-naive": "reads each zlib-stream WebSocket message as a whole payload",
    "repeat-member-request": "repeats a rate-limited REQUEST_GUILD_MEMBERS at once",
    **VOICE_MISTAKES,
}

# The wrong twin of each catalogue case: the mistake that breaks the rule it judges.
_RESUME_CASES = ("3.1", "3.2", "4.1", "5.1", "5.2", "5.3", "5.4", "5.6", "5.8", "5.17",
                 "5.18", "8.5", "9.3", "11.1", "4.4", "10.7")  # fmt: skip
WRONG_TWIN: dict[str, str] = {
    **dict.fromkeys(_RESUME_CASES, "identify-instead-of-resume"),
    **dict.fromkeys(("5.5", "5.10", "5.11", "5.12", "5.13", "5.14"), "reconnect-after-fatal"),
    **dict.fromkeys(("4.2", "4.3", "5.7", "5.9"), "resume-after-session-end"),
    **dict.fromkeys(("1.4", "3.3", "5.15", "5.16", "6.1", "6.3"), "give-up"),
    **dict.fromkeys(("1.2", "1.3", "6.2"), "wait-forever"),
    **dict.fromkeys(("8.2", "10.1", "10.2", "10.3", "10.4"), "other-query"),
    "6.5": "ignore-corrupt",
    **dict.fromkeys(("6.6", "7.1"), "close-1000-on-zombie"),
    "1.1": "late-heartbeats",
    "2.1": "late-heartbeats",
    "2.2": "ignore-heartbeat-request",
    "6.4": "no-backoff",
    "6.7": "impatient",
    "7.2": "ignore-deaf",
    "8.1": "resume-on-gateway-url",
    "8.3": "identify-on-resume-url",
    "8.4": "no-fallback",
    "9.1": "flood",
    "9.2": "identify-at-once",
    "10.5": "stale-heartbeat-seq",
    "10.6": "split-naive",
    "12.1": "repeat-member-request",
    "13.1": "voice-no-seq-ack",
    **dict.fromkeys(("13.2", "13.8"), "voice-identify-not-resume"),
    "13.3": "voice-resume-ended-session",
    **dict.fromkeys(("13.4", "13.5", "13.6", "13.7"), "voice-reconnect-always"),
    **dict.fromkeys(("13.9", "13.10", "13.11"), "voice-ignore-server-update"),
    "13.12": "voice-ignore-dave",
    **dict.fromkeys(("13.13", "13.14", "13.15"), "voice-silent-after-reconnect"),
}

FATAL = frozenset({4004, 4010, 4011, 4012, 4013, 4014})  # no reconnect
NEW_SESSION = frozenset({4007, 4009, 1000, 1001})  # reconnect with IDENTIFY
OPEN_TIMEOUT_S = 2.0  # a connection attempt that gets no answer is given up
READY_TIMEOUT_S = 1.5  # ... and so is a connection whose HELLO, READY or RESUMED is late
BACKOFF_S = 0.25  # failed attempts: 0.25, 0.5, 1, ... s (clear of the back-off rule's 100 ms slack)
INVALID_SESSION_WAIT_S = 1.2  # Gateway Events > Invalid Session: a random 1-5 s
IDENTIFY_SPACING_S = 5.1  # Identifying: max_concurrency (1) IDENTIFY per 5 s
FALLBACK_AFTER = 3  # refused resume URL attempts before the gateway URL
IMPATIENT_ACK_S = 0.1
# Events > Gateway > Gateway Intents: GUILDS, GUILD_MESSAGES, GUILD_MESSAGE_TYPING,
# DIRECT_MESSAGES (no privileged one: the bundled recordings grant none).
INTENTS = 1 | 1 << 9 | 1 << 11 | 1 << 12
GUILD_VOICE_STATES = 1 << 7  # asked for too when it joins voice (VOICE_STATE_UPDATE)


@dataclass
class Settings:
    gateway_url: str
    token: str
    encoding: Encoding = Encoding.JSON
    compress: Compression = Compression.NONE
    deaf_timeout_s: float | None = None
    request_members: bool = False
    mistake: str | None = None
    voice: bool = False
    voice_guild: str | None = None  # None: the first guild
    voice_channel: str | None = None
    voice_ca: str | None = None  # the voice face's CA certificate (None: the system's)

    @classmethod
    def from_env(cls, env: dict[str, str], mistake: str | None) -> Settings:
        if mistake == "twin":
            mistake = WRONG_TWIN.get(env.get("REPLAYER_CASE", ""))
        deaf = env.get("REPLAYER_DEAF_TIMEOUT_S")
        return cls(
            gateway_url=env["REPLAYER_GATEWAY_URL"],
            token=env.get("REPLAYER_TOKEN", "x"),
            encoding=Encoding.parse(env.get("REPLAYER_ENCODING") or "json"),
            compress=Compression.parse(env.get("REPLAYER_COMPRESS") or None),
            deaf_timeout_s=float(deaf) if deaf else None,
            request_members=env.get("REPLAYER_REQUEST_MEMBERS", "") == "1",
            mistake=mistake,
            voice=env.get("REPLAYER_VOICE", "") == "1",
            voice_guild=env.get("REPLAYER_VOICE_GUILD") or None,
            voice_channel=env.get("REPLAYER_VOICE_CHANNEL") or None,
            voice_ca=env.get("REPLAYER_VOICE_CA") or env.get("SSL_CERT_FILE") or None,
        )


class _Again(Exception):
    """This connection is over: go on with ``how`` ("resume", "identify" or "stop")."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


@dataclass
class ReferenceClient:
    settings: Settings
    session_id: str | None = None
    seq: int | None = None
    ready_seq: int | None = None
    resume_url: str | None = None
    old_resume_url: str | None = None
    failures: int = 0  # failed connections in a row
    refused_resume: int = 0  # refused resume URL attempts in a row
    last_identify_s: float | None = None
    guild_id: str | None = None
    zombie: bool = False  # this connection was closed for a missing ACK
    voice: ReferenceVoice | None = None  # once it has asked to join voice
    user_id: str = ""

    def say(self, text: str) -> None:
        print(f"reference client: {text}", flush=True)

    def wrong(self, mistake: str) -> bool:
        return self.settings.mistake == mistake

    async def run(self) -> int:
        try:
            async with aiohttp.ClientSession() as http:
                how = "identify"
                while how != "stop":
                    if self.failures and not self.wrong("no-backoff"):
                        await asyncio.sleep(BACKOFF_S * 2 ** (self.failures - 1))
                    self.failures += 1  # until READY or RESUMED
                    how = await self._attempt(http, how)
        finally:
            if self.voice is not None:
                await self.voice.close()
        self.say("stopped")
        return 0

    def _url(self, how: str) -> str:
        base = self.settings.gateway_url
        if how == "resume" and self.resume_url and not self.wrong("resume-on-gateway-url"):
            if self.refused_resume < FALLBACK_AFTER or self.wrong("no-fallback"):
                base = self.resume_url
        elif how == "identify" and self.wrong("identify-on-resume-url") and self.old_resume_url:
            base = self.old_resume_url
        v = "9" if how == "resume" and self.wrong("other-query") else "10"
        query = f"?v={v}&encoding={self.settings.encoding}"
        if self.settings.compress is not Compression.NONE:
            query += f"&compress={self.settings.compress}"
        return base.rstrip("/") + "/" + query

    async def _attempt(self, http: aiohttp.ClientSession, how: str) -> str:
        if how == "identify" and self.session_id is None:
            await self._identify_slot()
        url = self._url(how)
        on_resume_url = self.resume_url is not None and url.startswith(self.resume_url)
        try:
            async with asyncio.timeout(None if self.wrong("wait-forever") else OPEN_TIMEOUT_S):
                ws = await http.ws_connect(url, autoping=True, max_msg_size=0, compress=0)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.say(f"connection attempt failed: {exc!r}")
            if on_resume_url:
                self.refused_resume += 1
            return "stop" if self.wrong("give-up") else how
        if on_resume_url:
            self.refused_resume = 0
        try:
            return await self._connection(ws, how)
        except _Again as again:
            return again.how
        finally:
            await ws.close()

    def _decoder(self) -> FrameDecoder:
        return FrameDecoder(self.settings.encoding, self.settings.compress)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, op: int, d: Any) -> None:
        payload = {"op": op, "d": d}
        with contextlib.suppress(ConnectionError):
            if self.settings.encoding is Encoding.ETF:
                await ws.send_bytes(etf_encode(payload))
            else:
                await ws.send_str(json.dumps(payload))

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse, decoder: FrameDecoder, timeout: float | None
    ) -> list[Any]:
        """The payloads of the next WebSocket message; a close ends the connection."""
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            raise
        if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            data: bytes | str = msg.data
            zlib = self.settings.compress is Compression.ZLIB_STREAM
            unflushed = isinstance(data, bytes) and not data.endswith(b"\x00\x00\xff\xff")
            if self.wrong("split-naive") and zlib and unflushed:
                self.say("a zlib-stream message without its flush suffix: giving up")
                await ws.close(code=4000)
                raise _Again(self._after_drop())
            decoded = decoder.feed(data)
            if any(m.payload is None for m in decoded):
                self.say(f"cannot decode: {decoded[0].error}")
                if self.wrong("ignore-corrupt"):
                    return []
                await ws.close(code=4000)
                raise _Again(self._after_drop())
            return [m.payload for m in decoded]
        if self.zombie:  # closed by its heartbeat task
            raise _Again(self._after_drop())
        code = ws.close_code
        self.say(f"closed by the server: {code}")
        raise _Again(self._after_close(code))

    def _after_drop(self) -> str:
        """After a connection it gave up on itself: RESUME if there is a session."""
        if self.session_id and not self.wrong("identify-instead-of-resume"):
            return "resume"
        return "identify"

    def _after_close(self, code: int | None) -> str:
        if code in FATAL:
            return "identify" if self.wrong("reconnect-after-fatal") else "stop"
        if self.session_id is None:
            return "identify"
        if code in NEW_SESSION:
            if self.wrong("give-up") and code in (1000, 1001):
                return "stop"
            if self.wrong("resume-after-session-end"):
                return "resume"
            self._forget_session()
            return "identify"
        return "identify" if self.wrong("identify-instead-of-resume") else "resume"

    def _forget_session(self) -> None:
        self.old_resume_url = self.resume_url
        self.session_id = self.seq = self.resume_url = None

    async def _connection(self, ws: aiohttp.ClientWebSocketResponse, how: str) -> str:
        decoder = self._decoder()
        self.zombie = False
        hello_timeout = None if self.wrong("wait-forever") else READY_TIMEOUT_S
        try:
            first = await self._receive(ws, decoder, hello_timeout)
        except TimeoutError:
            self.say("no HELLO: trying again")
            return how
        hello = first[0] if first else None
        if hello is None or hello.op == 7:  # op 7 may come in place of HELLO
            self.say("op 7 instead of HELLO")
            if self.wrong("give-up"):
                return "stop"
            await ws.close(code=4000)
            return how
        interval_s = hello.d["heartbeat_interval"] / 1000
        if how == "resume" and self.session_id is None:
            how = "identify"
        acked = asyncio.Event()
        acked.set()
        beats = asyncio.ensure_future(self._heartbeats(ws, interval_s, acked))
        try:
            if how == "resume":
                assert self.seq is not None
                resume = {"token": self.settings.token, "session_id": self.session_id,
                          "seq": self.seq}  # fmt: skip
                await self._send(ws, 6, resume)
            else:
                await self._identify(ws)
            return await self._read(ws, decoder, acked, beats)
        finally:
            if not self.zombie:  # else: let it finish its close (with its code)
                beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    async def _identify_slot(self) -> None:
        """Identifying: at most max_concurrency (here 1) IDENTIFY per 5 s: wait for the
        slot before connecting (a connection waiting after HELLO would miss its ACKs)."""
        if self.last_identify_s is not None and not self.wrong("identify-at-once"):
            wait_s = self.last_identify_s + IDENTIFY_SPACING_S - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)

    async def _identify(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.last_identify_s = time.monotonic()
        properties = {"os": sys.platform, "browser": "replayer", "device": "replayer"}
        intents = INTENTS | (GUILD_VOICE_STATES if self.settings.voice else 0)
        await self._send(ws, 2, {"token": self.settings.token, "properties": properties,
                                 "intents": intents})  # fmt: skip

    def _heartbeat_seq(self) -> int | None:
        return self.ready_seq if self.wrong("stale-heartbeat-seq") else self.seq

    async def _heartbeats(
        self, ws: aiohttp.ClientWebSocketResponse, interval_s: float, acked: asyncio.Event
    ) -> None:
        """Every interval a HEARTBEAT; no ACK by the next one (the ``impatient`` mistake:
        within 100 ms) is a zombie connection: close it (not with 1000) and RESUME."""
        loop = asyncio.get_running_loop()
        period_s = interval_s * (2.5 if self.wrong("late-heartbeats") else 1)
        check_s = IMPATIENT_ACK_S if self.wrong("impatient") else period_s
        while True:
            acked.clear()
            sent_s = loop.time()
            await self._send(ws, 1, self._heartbeat_seq())
            await asyncio.sleep(check_s)
            if not acked.is_set():
                self.say("no HEARTBEAT_ACK: a zombie connection, closing it")
                self.zombie = True
                await ws.close(code=1000 if self.wrong("close-1000-on-zombie") else 4000)
                return
            await asyncio.sleep(max(0.0, sent_s + period_s - loop.time()))

    async def _read(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        decoder: FrameDecoder,
        acked: asyncio.Event,
        beats: asyncio.Future[None],
    ) -> str:
        ready = False
        last_dispatch_s = time.monotonic()
        give_up_s = last_dispatch_s + READY_TIMEOUT_S  # READY or RESUMED by then
        while True:
            timeout = None
            if not ready and not self.wrong("wait-forever"):
                timeout = max(0.0, give_up_s - time.monotonic())
            deaf = self.settings.deaf_timeout_s
            if ready and deaf is not None and not self.wrong("ignore-deaf"):
                timeout = max(0.0, last_dispatch_s + deaf - time.monotonic())
            try:
                payloads = await self._receive(ws, decoder, timeout)
            except TimeoutError:
                what = "no READY" if not ready else "no dispatch (a deaf connection)"
                self.say(f"{what}: closing")
                await ws.close(code=4000)
                return self._after_drop()
            for p in payloads:
                if p.op == 0:
                    last_dispatch_s = time.monotonic()
                    self.seq = p.s if p.s is not None else self.seq
                    if p.t in ("READY", "RESUMED"):
                        self.failures = 0
                        ready = True
                    if p.t == "READY":
                        await self._ready(ws, p.d)
                    elif p.t == "GUILD_CREATE" and self.guild_id is None:
                        self.guild_id = str(p.d["id"])
                        if self.settings.request_members:
                            await self._request_members(ws)
                    if p.t == "GUILD_CREATE" and self.settings.voice and self.voice is None:
                        await self._join_voice(ws, str(p.d["id"]))
                    elif p.t == "VOICE_STATE_UPDATE" and self.voice is not None:
                        self.voice.state_update(p.d)
                    elif p.t == "VOICE_SERVER_UPDATE" and self.voice is not None:
                        self.voice.server_update(p.d)
                    elif p.t == "RATE_LIMITED":
                        await self._rate_limited(ws, p.d)
                elif p.op == 11:
                    acked.set()
                elif p.op == 1 and not self.wrong("ignore-heartbeat-request"):
                    await self._send(ws, 1, self._heartbeat_seq())
                elif p.op == 7:
                    await ws.close(code=4000)
                    return "identify" if self.wrong("identify-instead-of-resume") else "resume"
                elif p.op == 9:
                    return await self._invalid_session(ws, bool(p.d))

    async def _join_voice(self, ws: aiohttp.ClientWebSocketResponse, guild_id: str) -> None:
        """Topics > Voice Connections > Retrieving Voice Server Information: op 4 with the
        channel; the two voice dispatches that answer it go to the voice part."""
        wanted = self.settings.voice_guild
        if wanted is not None and guild_id != wanted:
            return
        self.voice = ReferenceVoice(
            self.settings.voice_ca, self.say, self.settings.mistake, user_id=self.user_id
        )
        d = {"guild_id": guild_id, "channel_id": self.settings.voice_channel,
             "self_mute": False, "self_deaf": False}  # fmt: skip
        self.say(f"joining voice channel {self.settings.voice_channel} of guild {guild_id}")
        await self._send(ws, 4, d)

    async def _ready(self, ws: aiohttp.ClientWebSocketResponse, d: Any) -> None:
        self.user_id = str(d.get("user", {}).get("id", ""))
        self.session_id = str(d["session_id"])
        self.resume_url = str(d["resume_gateway_url"])
        self.ready_seq = self.seq
        if self.wrong("flood"):
            presence: dict[str, Any] = {
                "since": None,
                "activities": [],
                "status": "online",
                "afk": False,
            }
            for _ in range(125):
                await self._send(ws, 3, presence)

    async def _request_members(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        request = {"guild_id": self.guild_id, "query": "a", "limit": 10, "nonce": "conform"}
        await self._send(ws, 8, request)

    async def _rate_limited(self, ws: aiohttp.ClientWebSocketResponse, d: Any) -> None:
        """Events > Gateway Events > Rate Limited: try again after ``retry_after``."""
        if d.get("opcode") != 8:
            return
        if not self.wrong("repeat-member-request"):
            await asyncio.sleep(float(d.get("retry_after", 1)))
        await self._request_members(ws)

    async def _invalid_session(self, ws: aiohttp.ClientWebSocketResponse, resumable: bool) -> str:
        if resumable and self.session_id is not None:
            await ws.close(code=4000)
            return "identify" if self.wrong("identify-instead-of-resume") else "resume"
        if self.wrong("give-up"):
            return "stop"
        if self.wrong("resume-after-session-end") and self.session_id is not None:
            await ws.close(code=4000)
            return "resume"
        await ws.close(code=4000)
        self._forget_session()
        if not self.wrong("identify-at-once"):
            await asyncio.sleep(INVALID_SESSION_WAIT_S)
        return "identify"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mistake",
        choices=[*sorted(MISTAKES), "twin"],
        default=os.environ.get("REPLAYER_MISTAKE") or None,
        help="get one thing wrong; twin: the mistake the case (REPLAYER_CASE) catches",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(dict(os.environ), args.mistake)
    client = ReferenceClient(settings)
    client.say(f"case {os.environ.get('REPLAYER_CASE', '-')}, mistake {settings.mistake}")
    try:
        return asyncio.run(client.run())
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
