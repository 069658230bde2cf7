"""The plugin's verdict API in a pytest run of its own (pytester): a failed test carries
the verdict table as a report section, ``wait_for_verdicts`` returns once every planned
fault is judged, and a fault that can never fire is one clear error before the test."""

from __future__ import annotations

import pytest

from replayer.resources import sample_archive

pytest_plugins = ["pytester"]

SAMPLE = sample_archive("small-bot.rpl")

# A sync test with a scripted client that ignores op 7 (the verdict must FAIL), or obeys.
CLIENT = """
import json
import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # connect() unmanaged

def identify(url):
    ws = connect(url + "?v=10&encoding=json", compression=None, max_size=None)
    assert json.loads(ws.recv())["op"] == 10
    ws.send(json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": 513}}))
    return ws

def until_op(ws, op):
    while True:
        payload = json.loads(ws.recv())
        if payload["op"] == op:
            return payload
        if payload.get("t") == "READY":
            session = payload["d"]["session_id"], payload["d"]["resume_gateway_url"]
            until_op.session = session
        if payload["op"] == 0:
            until_op.seq = payload["s"]

@pytest.mark.replayer(archive=ARCHIVE, faults=["reconnect@dispatch=3"], verdict_window_ms=500,
                      heartbeat_interval_ms=60000)
def test_a_client(replayer_gateway):
    ws = identify(replayer_gateway.gateway_url)
    until_op(ws, 7)
    if OBEY:
        ws.close(4000)
        session_id, resume_url = until_op.session
        again = connect(resume_url + "?v=10&encoding=json", compression=None, max_size=None)
        again.recv()
        again.send(json.dumps({"op": 6, "d": {"token": "t", "session_id": session_id, "seq": until_op.seq}}))
        verdicts = replayer_gateway.wait_for_verdicts(timeout=20)
        again.close(4000)
    else:
        verdicts = replayer_gateway.wait_for_verdicts(timeout=20)
        ws.close(4000)
    assert verdicts[0].result is not None
    assert replayer_gateway.passed, replayer_gateway.report()
"""


def write_test(pytester: pytest.Pytester, obey: bool) -> None:
    pytester.makepyfile(CLIENT.replace("ARCHIVE", repr(str(SAMPLE))).replace("OBEY", repr(obey)))


def test_a_failed_test_carries_the_verdict_table(pytester: pytest.Pytester) -> None:
    write_test(pytester, obey=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- replayer verdicts -*",
            "FAIL reconnect after dispatch 3: expected a new connection that RESUMEs*"
            "observed nothing within 0.5 s*[Events > Gateway Events > Reconnect*",
            "3 passed, 0 non-strict, 1 failed, 0 not fired",  # + session starts
        ]
    )


def test_wait_for_verdicts_returns_once_the_reaction_is_judged(
    pytester: pytest.Pytester,
) -> None:
    write_test(pytester, obey=True)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "replayer verdicts" not in result.stdout.str()


def test_a_fault_that_cannot_fire_is_refused_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
import pytest

@pytest.mark.replayer(archive={str(SAMPLE)!r}, faults=["reconnect@event=READDY"])
def test_typo(replayer_gateway):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*FaultPlanError: fault 'reconnect@event=READDY': field 'event': READDY never occurs*"]
    )


def test_the_marker_passes_the_rules_switches(pytester: pytest.Pytester) -> None:
    """``options=`` reaches ReplayOptions: v8 is refused (4012) by default, served with
    ``gateway_versions=None``; an unknown option is one usage error."""
    pytester.makepyfile(
        f"""
import json
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

def v8_close_code(url):
    ws = connect(url + "?v=8&encoding=json", compression=None)
    try:
        return json.loads(ws.recv())["op"]
    except ConnectionClosed as closed:
        return closed.rcvd.code
    finally:
        ws.close()

@pytest.mark.replayer(archive={str(SAMPLE)!r})
def test_default(replayer_gateway):
    assert v8_close_code(replayer_gateway.gateway_url) == 4012

@pytest.mark.replayer(archive={str(SAMPLE)!r}, options={{"gateway_versions": None}})
def test_switched_off(replayer_gateway):
    assert v8_close_code(replayer_gateway.gateway_url) == 10  # HELLO

@pytest.mark.replayer(archive={str(SAMPLE)!r}, options={{"rate_limitt": False}})
def test_typo(replayer_gateway):
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*no such replay option rate_limitt*"])
