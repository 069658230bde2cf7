"""Raw websockets clients against a ReplayServer (and `replayer replay`) for issue #15's
items 8 and 9: a wrong payload closes with 4001, large_threshold outside 50-250 too,
IDENTIFY compress=true gets a zlib stream per message, a second all-members request
within 30 s gets RATE_LIMITED with its meta; each switch turns its rule off."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from replayer.replay.engine import ReplayOptions
from replayer.replay.script import load_script
from replayer.replay.server import ReplayServer
from tests.archives import session_lines, write_archive
from tests.clients.conftest import TIMEOUT
from tests.integration.replay.test_replay_cli import replayer

MEMBERS = [{"user": {"id": str(100 + i), "username": f"user{i}"}, "roles": []} for i in range(3)]
EXTRA = [
    {"kind": "frame", "conn": 1, "dir": "server", "t_ms": 400,
     "payload": {"op": 0, "s": 7, "t": "GUILD_CREATE", "d": {"id": "5", "members": MEMBERS}}},
]  # fmt: skip
EVERYONE = {"guild_id": "5", "query": "", "limit": 0}


@asynccontextmanager
async def serving(tmp_path: Path, **options: Any) -> AsyncIterator[ReplayServer]:
    path = tmp_path / "a.rpl"
    if not path.exists():
        write_archive(path, session_lines(extra=EXTRA))
    script = load_script(path)
    async with ReplayServer(script, ReplayOptions(speed=0, **options)) as server:
        yield server


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message = await ws.recv()
    if isinstance(message, bytes):
        message = zlib.decompress(message).decode()
    return dict(json.loads(message))


async def until(ws: ClientConnection, t: str) -> dict[str, Any]:
    while True:
        payload = await recv(ws)
        if payload.get("t") == t:
            return payload


async def session(url: str, **identify: Any) -> ClientConnection:
    ws = await connect(url + "?v=10&encoding=json", compression=None, open_timeout=TIMEOUT)
    assert (await recv(ws))["op"] == 10
    d = {"token": "t", "properties": {}, "intents": 1 | 1 << 1, **identify}
    await ws.send(json.dumps({"op": 2, "d": d}))
    return ws


async def read_all(ws: ClientConnection) -> None:
    while True:
        await recv(ws)


async def closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await read_all(ws)
    rcvd = closed.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


async def test_a_wrong_request_closes_4001_and_the_switch_lets_it_by(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ws = await session(server.gateway_url)
        await until(ws, "READY")
        await ws.send(json.dumps({"op": 8, "d": {"guild_id": "5", "nonce": "n"}}))
        assert await closed_with(ws) == (
            4001,
            "REQUEST_GUILD_MEMBERS has neither query nor user_ids",
        )
    async with serving(tmp_path, validate_payloads=False) as server:
        ws = await session(server.gateway_url)
        await until(ws, "READY")
        await ws.send(json.dumps({"op": 8, "d": {"guild_id": "5", "nonce": "n"}}))
        await ws.send(json.dumps({"op": 1, "d": None}))
        while (await recv(ws))["op"] != 11:  # still connected: the heartbeat is ACKed
            pass
        await ws.close()


@pytest.mark.parametrize("threshold", [10, 300])
async def test_large_threshold_outside_50_250_closes_4001(tmp_path: Path, threshold: int) -> None:
    async with serving(tmp_path) as server:
        ws = await session(server.gateway_url, large_threshold=threshold)
        code, reason = await closed_with(ws)
        assert code == 4001
        assert f"large_threshold {threshold}" in reason


@pytest.mark.parametrize(("option", "binary"), [(True, True), (False, False)])
async def test_identify_compress_true_gets_a_zlib_stream_per_message(
    tmp_path: Path, option: bool, binary: bool
) -> None:
    async with serving(tmp_path, payload_compression=option) as server:
        ws = await session(server.gateway_url, compress=True)
        first = await ws.recv()
        assert isinstance(first, bytes) is binary
        raw = zlib.decompress(first) if isinstance(first, bytes) else first.encode()
        assert json.loads(raw)["t"] == "READY"
        await ws.close()


async def test_second_all_members_request_is_rate_limited_with_its_meta(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ws = await session(server.gateway_url)
        await until(ws, "READY")
        await ws.send(json.dumps({"op": 8, "d": {**EVERYONE, "nonce": "first"}}))
        chunk = await until(ws, "GUILD_MEMBERS_CHUNK")
        assert [m["user"]["id"] for m in chunk["d"]["members"]] == ["100", "101", "102"]
        await ws.send(json.dumps({"op": 8, "d": {**EVERYONE, "nonce": "second"}}))
        limited = await until(ws, "RATE_LIMITED")
        assert limited["d"]["opcode"] == 8
        assert 29 < limited["d"]["retry_after"] <= 30
        assert limited["d"]["meta"] == {"guild_id": "5", "nonce": "second"}
        await ws.close()


def _requests_twice(check: Callable[[dict[str, Any]], None]) -> Callable[[str], Any]:
    async def client(url: str) -> None:
        ws = await session(url, intents=1 | 1 << 1 | 1 << 9)
        ready = await until(ws, "READY")
        guild = ready["d"]["guilds"][0]["id"] if ready["d"]["guilds"] else None
        assert guild is not None
        for nonce in ("a", "b"):
            request = {"guild_id": guild, "query": "", "limit": 0, "nonce": nonce}
            await ws.send(json.dumps({"op": 8, "d": request}))
            check(await until_answer(ws))
        await ws.close(4000)

    return client


async def until_answer(ws: ClientConnection) -> dict[str, Any]:
    while True:
        payload = await recv(ws)
        if payload.get("t") in ("GUILD_MEMBERS_CHUNK", "RATE_LIMITED"):
            return payload


FAST = ["--speed", "0", "--exit-when-idle", "--idle-grace", "300ms", "--verdict-window", "1s"]


async def test_cli_member_rate_limit_switch() -> None:
    """`replayer replay` with --member-rate-limit 0s answers both requests; by default the
    second is rate-limited (and the verdict table says so)."""
    answers: list[str] = []
    status, out, err = await replayer(
        *FAST, client=_requests_twice(lambda p: answers.append(str(p["t"])))
    )
    assert status == 0, err
    assert answers == ["GUILD_MEMBERS_CHUNK", "RATE_LIMITED"]
    assert "member requests within the rate limit" in out + err
    answers.clear()
    status, _, err = await replayer(
        *FAST, "--member-rate-limit", "0s",
        client=_requests_twice(lambda p: answers.append(str(p["t"]))),
    )  # fmt: skip
    assert status == 0, err
    assert answers == ["GUILD_MEMBERS_CHUNK", "GUILD_MEMBERS_CHUNK"]
