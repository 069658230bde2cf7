"""``replayer replay`` as a user runs it: a fault that can never fire is one line before the
server starts; --check fails on FAIL and NOT FIRED, --strict on NON-STRICT too; the JSON
report says each verdict's result and docs section."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from replayer.resources import sample_archive
from tests.clients.conftest import TIMEOUT

SAMPLE = sample_archive("small-bot.rpl")
FAST = ["--speed", "0", "--exit-when-idle", "--idle-grace", "300ms", "--verdict-window", "1s"]


async def replayer(
    *args: str, client: Callable[[str], Awaitable[None]] | None = None
) -> tuple[int, str, str]:
    """Run ``replayer replay SAMPLE ARGS``; once it prints its gateway URL, run ``client``
    against it. Returns (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replayer", "replay", str(SAMPLE), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    out: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while line := (await process.stdout.readline()).decode():
            out.append(line)
            if line.startswith("gateway URL:") and client is not None:
                await client(line.split(":", 1)[1].strip())
        rest, err = await process.communicate()
    return await process.wait(), "".join(out) + rest.decode(), err.decode()


async def send(ws: ClientConnection, op: int, d: Any) -> None:
    await ws.send(json.dumps({"op": op, "d": d}))


async def until_op(ws: ClientConnection, op: int, seen: dict[str, Any]) -> dict[str, Any]:
    while True:
        payload = json.loads(await ws.recv())
        if payload.get("t") == "READY":
            seen["session"] = payload["d"]["session_id"]
        if payload["op"] == 0:
            seen["seq"] = payload["s"]
        if payload["op"] == op:
            return dict(payload)


def resumer(on_resume_url: bool) -> Callable[[str], Awaitable[None]]:
    """A client that obeys op 7 and RESUMEs, on READY's resume URL or (a SHOULD broken)
    on the gateway URL."""

    async def run(url: str) -> None:
        seen: dict[str, Any] = {}
        async with connect(
            url + "?v=10&encoding=json", compression=None, max_size=None, max_queue=None
        ) as ws:
            await until_op(ws, 10, seen)
            await send(ws, 2, {"token": "t", "properties": {}, "intents": 513})
            ready = await until_op(ws, 0, seen)
            resume_url = ready["d"]["resume_gateway_url"]
            await until_op(ws, 7, seen)
            await ws.close(4000)
        again = (resume_url if on_resume_url else url) + "?v=10&encoding=json"
        async with connect(again, compression=None, max_size=None, max_queue=None) as ws:
            await until_op(ws, 10, seen)
            resume = {"token": "t", "session_id": seen["session"], "seq": seen["seq"]}
            await send(ws, 6, resume)
            resumed = await until_op(ws, 0, seen)
            assert resumed["t"] == "RESUMED"
            await ws.close(4000)

    return run


async def test_a_fault_that_can_never_fire_is_refused_before_the_server_starts() -> None:
    status, out, err = await replayer("--fault", "close:4004@seq=40", "--check")
    assert status == 1
    assert "gateway URL" not in out
    assert err.strip().splitlines() == [
        "error: fault 'close:4004@seq=40': field 'seq': 40 is beyond the stream of "
        "small-bot.rpl (23 dispatches), whose s reaches 24 at most with this plan; it could "
        "never fire (--allow-unfired runs it anyway)"
    ]


async def test_an_unfired_fault_fails_check_and_says_not_fired(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    status, _, err = await replayer(
        *FAST, "--fault", "close:4004@seq=40", "--allow-unfired", "--check",
        "--report", str(report), client=_identify_and_leave,
    )  # fmt: skip
    assert status == 1, err
    document = json.loads(report.read_text())
    assert document["passed"] is False
    [unfired] = [v for v in document["verdicts"] if v["name"] == "close 4004 after s=40"]
    assert (unfired["result"], unfired["observed"]) == (
        "NOT FIRED",
        "its trigger never came in this run",
    )
    assert unfired["docs"] == "Topics > Opcodes and Status Codes > Gateway Close Event Codes"
    assert "1 not fired" in document["summary"]
    assert "NOT FIRED" in err


async def _identify_and_leave(url: str) -> None:
    async with connect(
        url + "?v=10&encoding=json", compression=None, max_size=None, max_queue=None
    ) as ws:
        await until_op(ws, 10, {})
        await send(ws, 2, {"token": "t", "properties": {}, "intents": 513})
        await until_op(ws, 0, {})
        await ws.close(4000)


@pytest.mark.parametrize(
    ("on_resume_url", "strict", "status", "result"),
    [(True, True, 0, "PASS"), (False, False, 0, "NON-STRICT"), (False, True, 1, "NON-STRICT")],
)
async def test_check_and_strict(
    tmp_path: Path, on_resume_url: bool, strict: bool, status: int, result: str
) -> None:
    report = tmp_path / "report.json"
    flags = ["--strict"] if strict else []
    got, _, err = await replayer(
        *FAST, "--fault", "reconnect@dispatch=5", "--check", *flags, "--report", str(report),
        client=resumer(on_resume_url),
    )  # fmt: skip
    assert got == status, err
    document = json.loads(report.read_text())
    by_name = {v["name"]: v for v in document["verdicts"]}
    assert by_name["reconnect after dispatch 5"]["result"] == "PASS"
    assert by_name["RESUMEs on resume_gateway_url"]["result"] == result
    assert document["strict"] is strict
    assert document["passed"] is (status == 0)
