"""The plugin's run-time helpers in pytest runs of their own (pytester): ``inject`` sends a
fault at the moment the test chooses and it is judged; ``wait_for`` returns the frame it
waited for (frames sent before the call count), and on timeout fails with what it
waited for and the verdict table, not a bare TimeoutError; under pytest-xdist each
worker has its own server."""

from __future__ import annotations

import pytest

from replayer.resources import sample_archive

pytest_plugins = ["pytester"]

SAMPLE = sample_archive("small-bot.rpl")

# A raw client: IDENTIFY, then the test drives the faults with inject / wait_for.
CLIENT = """
import json
import pytest
from websockets.asyncio.client import connect

ARCHIVE = {archive!r}

async def identify(url):
    ws = await connect(url + "?v=10&encoding=json", compression=None, max_size=None)
    assert json.loads(await ws.recv())["op"] == 10
    await ws.send(json.dumps({{"op": 2, "d": {{"token": "t", "properties": {{}}, "intents": 513}}}}))
    return ws

async def drain(ws):
    try:
        async for _ in ws:
            pass
    except Exception:
        pass
"""


def project(pytester: pytest.Pytester, tests: str) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(CLIENT.format(archive=str(SAMPLE)) + tests)


def test_inject_and_wait_for(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
import asyncio

@pytest.mark.replayer(archive=ARCHIVE, heartbeat_interval_ms=60000, verdict_window_ms=20000)
async def test_a_reconnect_now(replayer_gateway):
    ws = await identify(replayer_gateway.gateway_url)
    reader = asyncio.ensure_future(drain(ws))
    ready = await replayer_gateway.wait_for(event="READY", timeout=20)
    assert (ready.direction.label, ready.conn, ready.s) == ("server", 1, 1)
    session, resume_url = ready.d["session_id"], ready.d["resume_gateway_url"]
    identify_payload = await replayer_gateway.wait_for(op="IDENTIFY", timeout=20)  # already sent
    assert identify_payload.d["intents"] == 513
    guild = await replayer_gateway.wait_for(predicate=lambda f: f.t == "GUILD_CREATE", direction="server", timeout=20)
    assert guild.s == 2
    assert replayer_gateway.inject("reconnect")["state"] == "due"
    await replayer_gateway.wait_for(op=7, timeout=20)
    [conn] = replayer_gateway.status()["connections"]
    seq = conn["last_seq"]
    await ws.close(4000)
    await reader
    again = await connect(resume_url + "?v=10&encoding=json", compression=None, max_size=None)
    await again.recv()
    await again.send(json.dumps({"op": 6, "d": {"token": "t", "session_id": session, "seq": seq}}))
    resumed = await replayer_gateway.wait_for(event="RESUMED", timeout=20)
    assert resumed.conn == 2
    status = replayer_gateway.status()
    assert status["verdicts"][0]["result"] == "PASS"
    await again.close(4000)
    [verdict, *_] = replayer_gateway.verdicts()
    assert verdict.name == "reconnect injected at run time, on connection 1"
    assert verdict.passed, replayer_gateway.report()

@pytest.mark.replayer(archive=ARCHIVE)
async def test_nothing_to_inject_on(replayer_gateway):
    assert replayer_gateway.inject("close:4000")["state"] == "not fired"
    [verdict, *_] = replayer_gateway.verdicts()
    assert str(verdict.result) == "NOT FIRED"
    assert not replayer_gateway.passed
""",
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"
    )
    result.assert_outcomes(passed=2)


def test_a_wait_that_times_out_says_what_it_waited_for_with_the_verdicts(
    pytester: pytest.Pytester,
) -> None:
    project(
        pytester,
        """
@pytest.mark.replayer(archive=ARCHIVE, faults=["reconnect@event=READY"], heartbeat_interval_ms=60000,
                      verdict_window_ms=60000)
async def test_a_client_that_never_resumes(replayer_gateway):
    ws = await identify(replayer_gateway.gateway_url)
    await replayer_gateway.wait_for(op="RECONNECT", timeout=20)
    try:
        await replayer_gateway.wait_for(event="RESUMED", timeout=0.5)
    finally:
        await ws.close(4000)
""",
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *WaitTimeout: replayer_gateway.wait_for: no dispatch RESUMED (sent by the replay) "
            "within 0.5 s; * frames on 1 connection; the last: server RECONNECT on connection 1",
            "E *verdicts so far:",
            "E *OPEN reconnect after READY #1: expected a new connection that RESUMEs*",
            "E *0 passed, 0 non-strict, 0 failed, 0 not fired, 1 open",
            "*- replayer verdicts -*",
            "FAIL reconnect after READY #1: expected a new connection that RESUMEs*",
        ]
    )
    assert "def wait_for(" not in result.stdout.str()  # the test's line, not the plugin's


def test_each_xdist_worker_has_its_own_server(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
import os

@pytest.mark.parametrize("n", range(4))
@pytest.mark.replayer(archive=ARCHIVE, heartbeat_interval_ms=60000)
async def test_a_session(replayer_gateway, n):
    ws = await identify(replayer_gateway.gateway_url)
    await replayer_gateway.wait_for(event="READY", timeout=20)
    await ws.close(1000)
    with open(f"port-{n}", "w") as f:
        f.write(f"{os.environ['PYTEST_XDIST_WORKER']} {replayer_gateway.gateway_url}")
    assert replayer_gateway.connections == 1
""",
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "-W", "ignore::DeprecationWarning"
    )
    result.assert_outcomes(passed=4)
    seen = [(pytester.path / f"port-{n}").read_text().split() for n in range(4)]
    assert {worker for worker, _ in seen} == {"gw0", "gw1"}
    assert len({url for _, url in seen}) == 4  # a server per test, on each worker
