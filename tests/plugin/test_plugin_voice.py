"""The plugin's voice face (issue #18) in a pytest run of its own: ``voice=True`` or a
voice fault in ``faults`` starts it, ``voice_ssl_context()`` trusts its CA, and its
verdicts join the gateway's in the report (a 4014 close the client wrongly reconnects
after: FAIL; one it stays away from: PASS)."""

from __future__ import annotations

import pytest

from replayer.resources import sample_archive

pytest_plugins = ["pytester"]

SAMPLE = sample_archive("sample-small.rpl")

CLIENT = """
import json
import socket
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

def join(url):
    ws = connect(url + "?v=10&encoding=json", compression=None, max_size=None)
    ws.recv()
    ws.send(json.dumps({"op": 2, "d": {"token": "t", "properties": {}, "intents": 641}}))
    while json.loads(ws.recv()).get("t") != "GUILD_CREATE":
        pass
    ws.send(json.dumps({"op": 4, "d": {"guild_id": "81384788765712384", "channel_id": "1",
                                       "self_mute": False, "self_deaf": False}}))
    got = {}
    while len(got) < 2:
        m = json.loads(ws.recv())
        if m.get("t", "") and m["t"].startswith("VOICE"):
            got[m["t"]] = m["d"]
    return ws, got

def identify(gateway, got):
    state, server = got["VOICE_STATE_UPDATE"], got["VOICE_SERVER_UPDATE"]
    v = connect("wss://" + server["endpoint"] + "/?v=8", ssl=gateway.voice_ssl_context())
    assert json.loads(v.recv())["op"] == 8
    v.send(json.dumps({"op": 0, "d": {"server_id": server["guild_id"], "user_id": state["user_id"],
                                      "session_id": state["session_id"], "token": server["token"]}}))
    return v

@pytest.mark.replayer(archive=ARCHIVE, FAULTS,
                      recorded_faults=False, verdict_window_ms=500)
def test_a_voice_client(replayer_gateway):
    ws, got = join(replayer_gateway.gateway_url)
    v = identify(replayer_gateway, got)
    with pytest.raises(ConnectionClosed):
        while True:
            v.recv()  # READY, then the close
    assert v.close_code == 4014
    if RECONNECT:
        again = identify(replayer_gateway, got)
        again.recv()
        again.close()
    verdicts = replayer_gateway.verdicts()
    ws.close(4000)
    assert any(x.name.startswith("voice: voice-close 4014") for x in verdicts)
    assert replayer_gateway.passed, replayer_gateway.report()
"""


PLAN = """
[[fault]]
kind = "voice-close"
code = 4014
voice = "READY"
"""


def write(pytester: pytest.Pytester, reconnect: bool, as_plan: bool = False) -> None:
    """The fault as ``faults=[...]`` text, or (``as_plan``) a ``[[fault]]`` table of a TOML
    plan given as ``plan=``: the same voice fault either way."""
    faults = 'faults=["voice-close:4014@voice=READY"]'
    if as_plan:
        plan = pytester.path / "voice-plan.toml"
        plan.write_text(PLAN)
        faults = f"plan={str(plan)!r}"
    text = CLIENT.replace("ARCHIVE", repr(str(SAMPLE))).replace("RECONNECT", repr(reconnect))
    pytester.makepyfile(text.replace("FAULTS", faults))


@pytest.mark.parametrize("as_plan", [False, True], ids=["faults", "plan"])
def test_a_wrong_voice_client_fails_with_the_voice_verdict(
    pytester: pytest.Pytester, as_plan: bool
) -> None:
    write(pytester, reconnect=True, as_plan=as_plan)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- replayer verdicts -*",
            "FAIL voice: voice-close 4014 after voice READY #1: expected after 4014 Disconnected:"
            " no voice reconnect unless a new VOICE_SERVER_UPDATE comes; observed voice"
            " connection 2 opened with no new VOICE_SERVER_UPDATE*Voice Close Event Codes*",
        ]
    )


def test_a_right_voice_client_passes(pytester: pytest.Pytester) -> None:
    write(pytester, reconnect=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
