"""The marker passes the intents and sharding switches (issue 15 items 5 and 7) to the
replay: ``grant_intents`` and ``require_sharding`` change the close code a scripted
client gets (pytester, a run of its own)."""

from __future__ import annotations

import pytest

from replayer.resources import sample_archive

pytest_plugins = ["pytester"]

SAMPLE = sample_archive("small-bot.rpl")

CLIENT = """
import json
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

def first_answer(url, d):
    with connect(url + "?v=10&encoding=json", compression=None, max_size=None) as ws:
        assert json.loads(ws.recv())["op"] == 10
        ws.send(json.dumps({"op": 2, "d": {"token": "t", "properties": {}, **d}}))
        try:
            return json.loads(ws.recv())["t"]
        except ConnectionClosed as closed:
            return closed.rcvd.code

@pytest.mark.replayer(archive=ARCHIVE, grant_intents="message_content")
def test_grant(replayer_gateway):
    assert first_answer(replayer_gateway.gateway_url, {"intents": 1 << 15}) == "READY"
    assert first_answer(replayer_gateway.gateway_url, {"intents": 1 << 1}) == 4014

@pytest.mark.replayer(archive=ARCHIVE)
def test_default_grant_is_the_recordings(replayer_gateway):
    assert first_answer(replayer_gateway.gateway_url, {"intents": 1 << 1}) == "READY"

@pytest.mark.replayer(archive=ARCHIVE, require_sharding=True)
def test_require_sharding(replayer_gateway):
    assert first_answer(replayer_gateway.gateway_url, {"intents": 1}) == 4011
    assert first_answer(replayer_gateway.gateway_url, {"intents": 1, "shard": [0, 2]}) == "READY"
"""


def test_the_marker_passes_the_switches(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CLIENT.replace("ARCHIVE", repr(str(SAMPLE))))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
