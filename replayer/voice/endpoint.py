"""The voice server endpoint of VOICE_SERVER_UPDATE, and telling a voice connection by its start.

Events > Gateway Events > Voice Server Update: ``endpoint`` is a host (with a port, e.g.
``c-ams08.discord.media:443``) and no scheme; clients connect to ``wss://<endpoint>/?v=8``
(Topics > Voice Connections > Connecting to Voice). A ``null`` endpoint means the voice server is
gone until the next update. discord.py also accepts an endpoint with ``wss://`` in front, so a
scheme given there is kept (a local test server may say ``ws://``). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from replayer.voice.opcodes import VoiceOp

_DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}


@dataclass(frozen=True, slots=True)
class VoiceEndpoint:
    """Where a VOICE_SERVER_UPDATE sends the client."""

    scheme: str  # "wss" unless the endpoint named another
    host: str  # lower case
    port: int

    @property
    def base_url(self) -> str:
        """The URL a client's voice WebSocket opens, without path and query."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(endpoint: object) -> VoiceEndpoint | None:
    """The endpoint of a VOICE_SERVER_UPDATE ``d.endpoint``; None for null or no host."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        return None
    text = endpoint.strip()
    if "://" not in text:
        text = "wss://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port that is not a number, a bad IPv6 literal
        return None
    if not parts.hostname or parts.scheme not in _DEFAULT_PORTS:
        return None
    return VoiceEndpoint(parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme])


def url_address(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of a WebSocket URL, the port filled in from the scheme."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port or _DEFAULT_PORTS.get(parts.scheme, 443)


def is_voice_hello(obj: Any) -> bool:
    """The voice gateway's first server message: op 8 HELLO with ``d.heartbeat_interval`` and no
    ``t`` member (the main gateway's op 8 is a client opcode; its HELLO is op 10 with ``t``)."""
    return (
        isinstance(obj, dict)
        and obj.get("op") == VoiceOp.HELLO
        and "t" not in obj
        and isinstance(obj.get("d"), dict)
        and "heartbeat_interval" in obj["d"]
    )


def is_voice_handshake(obj: Any) -> bool:
    """The voice gateway's first client message: op 0 IDENTIFY or op 7 RESUME whose ``d`` has
    ``server_id``, ``session_id`` and ``token`` (Voice Connections > Establishing / Resuming)."""
    return (
        isinstance(obj, dict)
        and obj.get("op") in (VoiceOp.IDENTIFY, VoiceOp.RESUME)
        and isinstance(obj.get("d"), dict)
        and all(key in obj["d"] for key in ("server_id", "session_id", "token"))
    )
