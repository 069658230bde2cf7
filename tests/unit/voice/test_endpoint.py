"""VOICE_SERVER_UPDATE endpoints and the voice handshake's first messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.voice.endpoint import (
    VoiceEndpoint,
    is_voice_handshake,
    is_voice_hello,
    parse_endpoint,
    url_address,
)


@pytest.mark.parametrize(
    ("endpoint", "parsed"),
    [
        ("c-ams08-abcd.discord.media:443", VoiceEndpoint("wss", "c-ams08-abcd.discord.media", 443)),
        ("Smart.Discord.Media", VoiceEndpoint("wss", "smart.discord.media", 443)),
        ("wss://x.discord.media:2053", VoiceEndpoint("wss", "x.discord.media", 2053)),
        ("ws://127.0.0.1:7001", VoiceEndpoint("ws", "127.0.0.1", 7001)),
        ("[::1]:9", VoiceEndpoint("wss", "::1", 9)),
        (None, None),
        ("", None),
        ("host:notaport", None),
        ("ftp://x:1", None),
        (443, None),
    ],
)
def test_endpoints(endpoint: object, parsed: VoiceEndpoint | None) -> None:
    assert parse_endpoint(endpoint) == parsed


def test_base_url_is_what_the_client_opens() -> None:
    assert VoiceEndpoint("wss", "x.discord.media", 443).base_url == "wss://x.discord.media:443"
    assert VoiceEndpoint("wss", "::1", 9).base_url == "wss://[::1]:9"


@given(st.text(max_size=60))
def test_any_endpoint_text_parses_or_is_none(text: str) -> None:
    parsed = parse_endpoint(text)
    if parsed is not None:
        assert url_address(parsed.base_url) == (parsed.host, parsed.port)


def test_url_address_fills_in_the_port() -> None:
    assert url_address("wss://x.discord.media/?v=8") == ("x.discord.media", 443)
    assert url_address("ws://127.0.0.1/?v=8") == ("127.0.0.1", 80)
    assert url_address("ws://127.0.0.1:70000/") is None


def test_the_voice_hello_is_not_the_gateway_hello() -> None:
    assert is_voice_hello({"op": 8, "d": {"v": 8, "heartbeat_interval": 13750}})
    assert not is_voice_hello({"op": 8, "d": {"heartbeat_interval": 1}, "s": None, "t": None})
    assert not is_voice_hello({"op": 10, "d": {"heartbeat_interval": 41250}})
    assert not is_voice_hello({"op": 8, "d": None})
    assert not is_voice_hello([8])


def test_the_voice_identify_and_resume_name_server_session_and_token() -> None:
    d = {"server_id": "1", "session_id": "s", "token": "t"}
    assert is_voice_handshake({"op": 0, "d": d})
    assert is_voice_handshake({"op": 7, "d": d})
    assert not is_voice_handshake({"op": 2, "d": d})  # the main gateway's IDENTIFY
    assert not is_voice_handshake({"op": 0, "d": {"token": "t"}})
    assert not is_voice_handshake("op")
