"""Canary secrets, one per class that docs/archive-format.md §5 lists, and a client that
sends them through a recording path (proxy, addon, replay): REST calls, a well-formed
session that receives the dispatches holding secrets, and malformed IDENTIFYs; with
``voice``, a voice session at the endpoint VOICE_SERVER_UPDATE gave (IDENTIFY and RESUME
with voice tokens of their own), against a scripted voice server (tests/voice_upstream.py).

Every canary is its own value, so one learned secret cannot hide another's leak.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from replayer.archive.reader import read_records
from replayer.archive.records import (
    ConnectionInfoRecord,
    ConnectionKind,
    ConnectionRecord,
    FrameFlag,
    FrameRecord,
    HttpRecord,
)
from replayer.gateway.opcodes import Direction
from tests.archives import session_lines, write_archive
from tests.voice_upstream import voice_client_session

__all__ = ["CANARIES", "check_archive", "send_secrets", "write_upstream"]

TIMEOUT = 20 * float(os.environ.get("REPLAYER_TIMEOUT_FACTOR", "1"))


def _bot_token(tag: str) -> str:
    """A bot-token-shaped canary, no 12 characters of it shared with another:
    base64url(user id) "." base64url(timestamp) "." HMAC."""
    digest = hashlib.sha256(tag.encode()).digest()
    user_id = str(10**18 + int.from_bytes(digest[:7]))
    parts = (user_id.encode(), digest[7:11], digest[11:31])
    return ".".join(base64.urlsafe_b64encode(p).decode().rstrip("=") for p in parts)


def _secret(tag: str) -> str:
    """A canary no 12 characters of which are in another."""
    return tag + hashlib.sha256(tag.encode()).hexdigest()[:24]


CANARIES: dict[str, str] = {
    "bot token (Authorization header, good IDENTIFY)": _bot_token("good0"),
    "token in the gateway URL": _secret("c01"),
    "interaction token (INTERACTION_CREATE d.token)": _secret("i01"),
    "interaction token (REST path)": _secret("i02"),
    "voice token (VOICE_SERVER_UPDATE d.token)": _secret("c02"),
    "voice token (voice IDENTIFY d.token)": _secret("v01"),
    "voice token (voice RESUME d.token)": _secret("v02"),
    "webhook token (create-webhook response)": _secret("c03"),
    "webhook token (REST path)": _secret("c04"),
    "OAuth2 client_secret (form body)": _secret("c05"),
    "OAuth2 code (form body)": _secret("c06"),
    "OAuth2 access_token (response)": _secret("c07"),
    "OAuth2 refresh_token (response)": _secret("c08"),
    "OAuth2 client_secret (JSON body)": _secret("c09"),
    "bot token in a message body (safety net)": _bot_token("body0"),
    "bot token in IDENTIFY with a string s": _bot_token("str0s"),
    "bot token in IDENTIFY with a float op": _bot_token("flt0p"),
    "bot token in IDENTIFY with a trailing byte": _bot_token("trail"),
    "bot token in IDENTIFY's first duplicate token key": _bot_token("dup01"),
    "bot token in IDENTIFY's second duplicate token key": _bot_token("dup02"),
    "bot token in an IDENTIFY split over two messages": _bot_token("split"),
}
C = CANARIES
# Each malformed IDENTIFY goes on a connection of its own (the gateway closes it 4002).
MALFORMED = [
    template.replace("T1", C[first]).replace("T2", C[second] if second else "")
    for template, first, second in [
        (
            '{"op": 2, "s": "1", "d": {"token": "T1"}}',
            "bot token in IDENTIFY with a string s",
            None,
        ),
        ('{"op": 2.0, "d": {"token": "T1"}}', "bot token in IDENTIFY with a float op", None),
        ('{"op": 2, "d": {"token": "T1"}}x', "bot token in IDENTIFY with a trailing byte", None),
        (
            '{"op": 2, "d": {"token": "T1", "token": "T2"}}',
            "bot token in IDENTIFY's first duplicate token key",
            "bot token in IDENTIFY's second duplicate token key",
        ),
    ]
]
SPLIT = json.dumps({"op": 2, "d": {"token": C["bot token in an IDENTIFY split over two messages"]}})
# Inside the token: neither half holds it whole.
SPLIT_AT = SPLIT.index(C["bot token in an IDENTIFY split over two messages"]) + 15


def write_upstream(path: Path, voice_endpoint: str = "x.discord.media:443") -> Path:
    """An archive, written without redaction, whose dispatches and REST answers hold
    canaries: what a real Discord would send. Its VOICE_SERVER_UPDATE names
    ``voice_endpoint``."""
    extra: list[dict[str, Any]] = [
        {
            "kind": "frame", "conn": 1, "dir": "server", "t_ms": 400,
            "payload": {"op": 0, "s": 7, "t": "INTERACTION_CREATE", "d": {
                "id": "70", "application_id": "9", "type": 2, "version": 1,
                "token": C["interaction token (INTERACTION_CREATE d.token)"],
            }},
        },
        {
            "kind": "frame", "conn": 1, "dir": "server", "t_ms": 410,
            "payload": {"op": 0, "s": 8, "t": "VOICE_SERVER_UPDATE", "d": {
                "guild_id": "1", "endpoint": voice_endpoint,
                "token": C["voice token (VOICE_SERVER_UPDATE d.token)"],
            }},
        },
        {
            "kind": "http", "t_ms": 500, "method": "POST", "path": "/api/v10/oauth2/token",
            "response_body": {
                "access_token": C["OAuth2 access_token (response)"], "token_type": "Bearer",
                "expires_in": 604800, "scope": "identify",
                "refresh_token": C["OAuth2 refresh_token (response)"],
            },
        },
        {
            "kind": "http", "t_ms": 510, "method": "POST", "path": "/api/v10/channels/1/webhooks",
            "response_body": {
                "id": "5", "type": 1, "name": "hook", "channel_id": "1",
                "token": C["webhook token (create-webhook response)"],
            },
        },
    ]  # fmt: skip
    return write_archive(path, session_lines(extra=extra), redact=False)


async def send_secrets(
    rest_base: str, gateway_url: str, proxy: str | None = None, *, voice: bool = False
) -> list[str | None]:
    """Send every canary (REST first, then the gateway; with ``voice``, then a voice session
    at the endpoint the VOICE_SERVER_UPDATE gave); the events of the good session."""
    auth = {"Authorization": f"Bot {C['bot token (Authorization header, good IDENTIFY)']}"}
    form = {
        "grant_type": "authorization_code", "client_id": "9", "redirect_uri": "http://x/cb",
        "code": C["OAuth2 code (form body)"],
        "client_secret": C["OAuth2 client_secret (form body)"],
    }  # fmt: skip
    async with aiohttp.ClientSession(headers=auth, proxy=proxy) as http:
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/gateway/bot", {}),
            ("POST", "/oauth2/token", {"data": form}),
            ("POST", "/oauth2/token/revoke", {
                "json": {"token": C["OAuth2 access_token (response)"],
                         "client_secret": C["OAuth2 client_secret (JSON body)"]},
            }),
            ("POST", "/channels/1/webhooks", {"json": {"name": "hook"}}),
            ("POST", f"/interactions/70/{C['interaction token (REST path)']}/callback",
             {"json": {"type": 4, "data": {"content": "hi"}}}),
            ("POST", f"/webhooks/9/{C['webhook token (REST path)']}?wait=true", {
                "json": {"content": f"my token: {C['bot token in a message body (safety net)']}"},
            }),
        ]  # fmt: skip
        for method, route, kwargs in calls:
            async with http.request(method, rest_base + route, **kwargs) as response:
                await response.read()
    url = gateway_url + "?v=10&encoding=json"
    events, endpoint = await _good_session(url + f"&token={C['token in the gateway URL']}", proxy)
    if voice:
        await voice_client_session(
            endpoint, server_id="1", session_id="voice-session-1", proxy=proxy,
            identify_token=C["voice token (voice IDENTIFY d.token)"],
            resume_token=C["voice token (voice RESUME d.token)"],
        )  # fmt: skip
    for text in MALFORMED:
        await _answered(url, proxy, text)
    await _answered(url, proxy, SPLIT[:SPLIT_AT], SPLIT[SPLIT_AT:])
    return events


async def _good_session(url: str, proxy: str | None) -> tuple[list[str | None], str]:
    """The events up to VOICE_SERVER_UPDATE, and its endpoint."""
    token = C["bot token (Authorization header, good IDENTIFY)"]
    events: list[str | None] = []
    endpoint = ""
    async with websockets.connect(url, proxy=proxy, max_queue=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
        await ws.send(
            json.dumps({"op": 2, "d": {"token": token, "properties": {}, "intents": 4097}})
        )
        while "VOICE_SERVER_UPDATE" not in events:
            payload = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            events.append(payload.get("t"))
            if payload.get("t") == "VOICE_SERVER_UPDATE":
                endpoint = payload["d"]["endpoint"]
    return events, endpoint


async def _answered(url: str, proxy: str | None, *messages: str) -> None:
    """Send ``messages`` after HELLO and wait for the gateway's answer: a 4002 close, or
    READY (a duplicate key is valid JSON). Either means the messages went through."""
    async with websockets.connect(url, proxy=proxy, max_queue=None) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["op"] == 10
        with contextlib.suppress(websockets.ConnectionClosed):
            for message in messages:
                await ws.send(message)
            await asyncio.wait_for(ws.recv(), TIMEOUT)


def check_archive(path: Path, *, voice: bool = False) -> None:
    """No canary, nor any 12 characters of one, is in the file; and each went through
    (the records that carried them are there, redacted). ``voice``: the voice session too,
    recorded as voice connections."""
    data = path.read_bytes()
    leaks = [
        name
        for name, canary in CANARIES.items()
        if any(canary[i : i + 12].encode() in data for i in range(len(canary) - 11))
    ]
    assert not leaks, f"leaked into {path.name}: {leaks}"
    _, records = read_records(path)
    paths = {r.path for r in records if isinstance(r, HttpRecord)}
    for route in ("/oauth2/token", "/channels/1/webhooks", "/interactions/70/[REDACTED]/callback"):
        assert f"/api/v10{route}" in paths, (route, paths)
    frames = [r for r in records if isinstance(r, FrameRecord)]
    redacted = {
        f.t for f in frames if f.direction == Direction.SERVER and f.flags & FrameFlag.REDACTED
    }
    assert {"INTERACTION_CREATE", "VOICE_SERVER_UPDATE"} <= redacted
    client = [f for f in frames if f.direction == Direction.CLIENT and f.flags & FrameFlag.REDACTED]
    assert len(client) >= 1 + len(MALFORMED) + 1  # the good IDENTIFY, each malformed one, a half
    if voice:
        _check_voice(records)


def _check_voice(records: list[Any]) -> None:
    """Two voice connections (the second resumes the first), their IDENTIFY and RESUME
    redacted, known as voice at open or by their handshake."""
    voice = {
        r.conn_id
        for r in records
        if isinstance(r, ConnectionRecord) and r.kind is ConnectionKind.VOICE
    }
    voice |= {
        r.conn_id
        for r in records
        if isinstance(r, ConnectionInfoRecord) and r.kind is ConnectionKind.VOICE
    }
    assert len(voice) == 2, records
    frames = [r for r in records if isinstance(r, FrameRecord) and r.conn_id in voice]
    handshakes = [f for f in frames if f.direction == Direction.CLIENT and f.op in (0, 7)]
    assert [(f.op, bool(f.flags & FrameFlag.REDACTED)) for f in handshakes] == [
        (0, True),
        (7, True),
    ]
    server_ops = [f.op for f in frames if f.direction == Direction.SERVER]
    assert server_ops == [8, 2, 4, 25, 6, 8, 9], server_ops
