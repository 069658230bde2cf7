"""The control API over real HTTP on the replay's own port (docs/faults.md): a fault
POSTed while a raw WebSocket client streams goes out on its connection, and the status
shows it fired and its verdict; bad text is 400 in one line; ``replayer replay`` prints
the control URL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from tests.archives import INTENTS
from tests.unit.replay.conftest import session_lines, write_archive

from .test_replay_cli import replayer
from .test_replay_server import TIMEOUT


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ReplayServer]:
    path = write_archive(tmp_path / "a.rpl", session_lines())
    options = ReplayOptions(speed=0, verdict_window_ms=int(TIMEOUT * 1000), heartbeat_timeout=False)
    async with ReplayServer(load_script(path), options) as s:
        yield s


async def until(
    ws: ClientConnection, op: int, seen: dict[str, Any], s: int | None = None
) -> dict[str, Any]:
    """The next payload of ``op`` (with ``s``, if given), noting READY's session and seq."""
    while True:
        payload = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if payload.get("t") == "READY":
            seen["session"] = payload["d"]["session_id"]
            seen["resume_url"] = payload["d"]["resume_gateway_url"]
        if payload["op"] == 0:
            seen["seq"] = payload["s"]
        if payload["op"] == op and s in (None, payload["s"]):
            return dict(payload)


async def test_a_posted_reconnect_reaches_the_client_and_the_status_shows_its_verdict(
    server: ReplayServer,
) -> None:
    url = server.gateway_url + "?v=10&encoding=json"
    seen: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        async with connect(url, compression=None, max_size=None) as ws:
            await until(ws, 10, seen)
            await ws.send(
                json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": INTENTS}})
            )
            await until(ws, 0, seen, s=6)  # the whole stream
            async with http.post(server.control_url + "faults", data="reconnect") as r:
                assert r.status == 201
                injected = await r.json()
            assert injected == {
                "fault": "reconnect", "kind": "reconnect", "state": "due", "connection": 1,
                "description": "reconnect injected at run time, on connection 1",
            }  # fmt: skip
            assert (await until(ws, 7, seen))["d"] is None
            async with http.get(server.control_url + "status") as r:
                assert r.status == 200
                status = await r.json()
            [conn] = status["connections"]
            assert (conn["id"], conn["state"], conn["session"], conn["last_seq"]) == (
                1,
                "streaming",
                seen["session"],
                6,
            )
            assert conn["sent_away_by"] == "reconnect injected at run time, on connection 1"
            assert [f["fault"] for f in status["faults"]["fired"]] == ["reconnect"]
            assert status["faults"]["pending"] == []
            [verdict] = status["verdicts"]
            assert verdict["result"] is None  # the client has not reacted yet
            await ws.close(4000)
        async with connect(seen["resume_url"] + "?v=10&encoding=json", compression=None) as ws:
            await until(ws, 10, seen)
            resume = {"token": "t", "session_id": seen["session"], "seq": seen["seq"]}
            await ws.send(json.dumps({"op": 6, "d": resume}))
            assert (await until(ws, 0, seen))["t"] == "RESUMED"
            async with http.get(server.control_url + "status") as r:
                status = await r.json()
            await ws.close(4000)
    [verdict] = status["verdicts"]
    assert verdict["name"] == "reconnect injected at run time, on connection 1"
    assert verdict["result"] == "PASS", verdict
    assert verdict["observed"] == f"RESUME (session {seen['session']}, seq 6) on a new connection"
    assert [s["id"] for s in status["sessions"]] == [seen["session"]]


async def test_a_posted_json_fault_with_no_client_is_not_fired(server: ReplayServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(server.control_url + "faults", json={"fault": "close:4000"}) as r:
            assert r.status == 201
            assert (await r.json())["state"] == "not fired"
        async with http.get(server.control_url + "status") as r:
            [verdict] = (await r.json())["verdicts"]
    assert verdict["result"] == "NOT FIRED"
    assert verdict["observed"] == "injected at run time, but no connection is open"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("explode", "400: fault 'explode': field 'kind': 'explode' is not one of"),
        (
            "reconnect@event=READDY",
            "400: fault 'reconnect@event=READDY': field 'event': 'READDY' does not occur",
        ),
        ("", "400: request body: empty"),
    ],
)
async def test_bad_fault_text_is_400_in_one_line(
    server: ReplayServer, body: str, line: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.control_url + "faults", data=body) as r,
    ):
        text = await r.text()
    assert r.status == 400
    assert text.startswith(line[:50]), text
    assert text.count("\n") == 1


async def test_unknown_routes_and_methods(server: ReplayServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.control_url + "faults") as r:
            assert (r.status, r.headers["Allow"]) == (405, "POST")
        async with http.get(server.control_url + "nope") as r:
            assert r.status == 404
            assert "POST /_replayer/faults, GET /_replayer/status" in await r.text()


async def test_replay_prints_the_control_url() -> None:
    _, out, _ = await replayer("--speed", "0", "--exit-when-idle", "--first-client-grace", "0.1s")
    lines = out.splitlines()
    [control] = [line for line in lines if line.startswith("control URL:")]
    [gateway] = [line for line in lines if line.startswith("gateway URL:")]
    port = gateway.rsplit(":", 1)[1].strip("/ ")
    assert control == f"control URL: http://127.0.0.1:{port}/_replayer/"
