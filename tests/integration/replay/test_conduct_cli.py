"""Discord's rules through `replayer replay`: on by default, each switch turns its rule
off (docs/gateway-conduct.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys

import pytest
import websockets

from tests.integration.replay.test_replay_process import SAMPLE, finish, start

IDENTIFY = json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": 4097}})
PRESENCE = json.dumps(
    {"op": 3, "d": {"since": None, "activities": [], "status": "online", "afk": False}}
)


async def close_code(url: str, *messages: str, query: str = "?v=10&encoding=json") -> int | None:
    """Send ``messages`` after HELLO; the close code the server sends (None: stays)."""
    async with websockets.connect(url + query, max_queue=None) as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)  # HELLO
            for message in messages:
                await ws.send(message)
            with contextlib.suppress(TimeoutError):
                while True:  # until it closes, or goes quiet for a second
                    await asyncio.wait_for(ws.recv(), 1)
        return ws.close_code if ws.close_code != 1000 else None


@pytest.mark.parametrize(("switch", "code"), [((), 4008), (("--no-rate-limit",), None)])
async def test_rate_limit_and_its_switch(switch: tuple[str, ...], code: int | None) -> None:
    process, url = await start("--exit-when-idle", "--idle-grace", "100ms", *switch)
    assert await close_code(url, IDENTIFY, *[PRESENCE] * 125) == code
    status, err = await finish(process)
    assert status == 0, err


@pytest.mark.parametrize(("switch", "code"), [((), 4012), (("--gateway-versions", "any"), None)])
async def test_versions_and_their_switch(switch: tuple[str, ...], code: int | None) -> None:
    process, url = await start("--exit-when-idle", "--idle-grace", "100ms", *switch)
    assert await close_code(url, IDENTIFY, query="?v=8&encoding=json") == code
    status, err = await finish(process)
    assert status == 0, err


@pytest.mark.parametrize(
    ("switch", "code"),
    [(("--identify-timeout", "500ms"), 4009), (("--identify-timeout", "off"), None)],
)
async def test_identify_timeout_and_its_switch(switch: tuple[str, ...], code: int | None) -> None:
    process, url = await start("--exit-when-idle", "--idle-grace", "100ms", *switch)
    assert await close_code(url) == code
    status, err = await finish(process)
    assert status == 0, err


def test_a_bad_switch_value_is_refused_before_serving() -> None:
    for option, value in (("--gateway-versions", "nine"), ("--session-ttl", "soon")):
        done = subprocess.run(
            [sys.executable, "-m", "replayer", "replay", str(SAMPLE), option, value],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2
        assert option in done.stderr
        assert "Traceback" not in done.stderr
