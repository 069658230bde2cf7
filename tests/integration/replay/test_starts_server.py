"""Session starts, identify concurrency and the REST bootstrap over real sockets (#15
items 6 and 10): a raw client that IDENTIFYs too fast gets op 9, /gateway/bot counts the
session starts, and ``replayer replay`` lists the routes it answered with its 404."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from replayer.replay.starts import SessionStartLimit
from tests.integration.replay.test_replay_cli import FAST, replayer
from tests.integration.replay.test_replay_server import recv_json
from tests.unit.replay.conftest import session_lines, write_archive

IDENTIFY = {"op": 2, "d": {"token": "t", "properties": {}, "intents": 1}}


async def serve(tmp_path: Path, **options: Any) -> ReplayServer:
    path = write_archive(tmp_path / "a.rpl", session_lines())
    return ReplayServer(load_script(path), ReplayOptions(speed=0, **options))


async def identified(ws: ClientConnection) -> dict[str, Any]:
    """HELLO, then IDENTIFY: the answer (READY, or op 9)."""
    assert (await recv_json(ws))["op"] == 10
    await ws.send(json.dumps(IDENTIFY))
    return dict(await recv_json(ws))


async def remaining(http: aiohttp.ClientSession, server: ReplayServer) -> int:
    async with http.get(f"{server.rest_base}/gateway/bot") as r:
        return int((await r.json())["session_start_limit"]["remaining"])


async def test_an_identify_within_5_s_gets_op9_and_spends_nothing(tmp_path: Path) -> None:
    server = await serve(tmp_path, session_start_limit=SessionStartLimit(remaining=7))
    async with server, aiohttp.ClientSession() as http:
        assert await remaining(http, server) == 7
        async with connect(server.gateway_url) as first, connect(server.gateway_url) as second:
            assert (await identified(first))["t"] == "READY"
            assert await identified(second) == {"t": None, "s": None, "op": 9, "d": False}
        assert await remaining(http, server) == 6  # the refused IDENTIFY spent nothing
    verdict = {v.name: v for v in server.verdicts()}["identify concurrency"]
    assert verdict.observed.startswith("2 IDENTIFYs, 1 refused with op 9: connection 2")


async def test_without_the_rule_both_get_ready(tmp_path: Path) -> None:
    server = await serve(tmp_path, identify_concurrency=False)
    async with (
        server,
        connect(server.gateway_url) as first,
        connect(server.gateway_url) as second,
    ):
        assert (await identified(first))["t"] == "READY"
        assert (await identified(second))["t"] == "READY"


async def test_no_starts_left_closes_4004(tmp_path: Path) -> None:
    server = await serve(
        tmp_path, session_start_limit=SessionStartLimit(remaining=0), identify_concurrency=False
    )
    async with server, connect(server.gateway_url) as ws:
        assert (await recv_json(ws))["op"] == 10
        await ws.send(json.dumps(IDENTIFY))
        await ws.wait_closed()
        assert ws.close_code == 4004


async def test_put_commands_reach_the_server_and_404s_are_listed(tmp_path: Path) -> None:
    server = await serve(tmp_path)
    async with server, aiohttp.ClientSession() as http:
        url = f"{server.rest_base}/applications/9/commands"
        async with http.put(url, json=[{"name": "ping", "description": "Pong"}]) as r:
            assert r.status == 200
            [made] = await r.json()
        async with http.get(url) as r:
            assert await r.json() == [made]
        async with http.get(f"{server.rest_base}/guilds/1/emojis") as r:
            assert r.status == 404
        assert server.answered_404() == ["GET /api/v10/guilds/1/emojis"]


async def test_replay_prints_the_routes_it_answered_404_once_at_the_end() -> None:
    async def bot(gateway_url: str) -> None:
        rest = gateway_url.replace("ws://", "http://").rstrip("/") + "/api/v10"
        async with aiohttp.ClientSession() as http:
            for path in ("/soundboard-default-sounds", "/stickers/1", "/stickers/1"):
                async with http.get(rest + path) as r:
                    await r.read()
        async with connect(gateway_url) as ws:
            assert (await identified(ws))["t"] == "READY"

    status, _, err = await replayer(*FAST, client=bot)
    assert status == 0, err
    assert err.count("answered 404:") == 1
    assert "answered 404: GET /api/v10/stickers/1 (2)\n" in err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("max_concurrency=0", "max_concurrency: 0 is below 1"),
        ("shards=3", "'shards=3': expected KEY=INTEGER"),
    ],
)
async def test_a_bad_session_start_limit_is_one_line(value: str, message: str) -> None:
    status, _, err = await replayer(*FAST, "--session-start-limit", value)
    assert status != 0
    assert message in err
    assert "Traceback" not in err
