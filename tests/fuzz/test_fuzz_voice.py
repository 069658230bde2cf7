"""Voice faults (``--fault voice-...``) and the voice engine's client payloads on hostile
input: only ``FaultPlanError`` from the parser; the engine answers or closes, never raises."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from replayer.replay.faults import FaultPlanError
from replayer.replay.voice.engine import VoiceConnection, VoiceReplay, VoiceSend
from replayer.replay.voice.faults import VoiceFaultKind, parse_voice_fault
from replayer.voice.opcodes import VoiceOp

from .conftest import fuzz_pair, fuzz_target

KINDS = [k.value for k in VoiceFaultKind] + ["voice-", "dave-", "voice-zap"]
ARGS = ["", ":4015", ":4006", ":99999", ":1000", ":null", ":new-endpoint", ":new-token", ":0",
        ":65536", ":1.5", ":-1", ":" + "9" * 400]  # fmt: skip
KEYS = ["voice", "voice-op", "rtp", "voice-conn", "times", "every", "event", ""]
VALUES = ["READY", "SPEAKING#2", "HELLO#0", "SESSION_DESCRIPTION", "0", "1", "-1", "nope",
          "9" * 40, "IDENTIFY#x", "2#3", ""]  # fmt: skip

short_fault = st.builds(
    lambda kind, arg, pairs: f"{kind}{arg}@" + ",".join(f"{k}={v}" for k, v in pairs),
    st.sampled_from(KINDS),
    st.sampled_from(ARGS),
    st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=4),
) | st.text(max_size=40)


@fuzz_target(FaultPlanError)
def short_syntax(text: str) -> None:
    fault = parse_voice_fault(text)
    assert fault.times >= 1
    trigger = fault.trigger
    assert [trigger.server_op, trigger.client_op, trigger.rtp].count(None) == 2
    if fault.kind is VoiceFaultKind.CLOSE:
        assert fault.code is not None
    fault.describe()


payload = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
message = st.one_of(
    st.builds(
        lambda op, d: json.dumps({"op": op, "d": d}),
        st.sampled_from([*map(int, VoiceOp), 12, 99]),
        payload,
    ),
    st.text(max_size=30),
    st.binary(max_size=30),
)


@fuzz_target()
def engine_payloads(messages: list[str | bytes]) -> None:
    replay = VoiceReplay(("127.0.0.1:1",), ("127.0.0.1", 2))
    replay.state_update({"guild_id": "1", "channel_id": "2"}, "3", "main")
    conn = VoiceConnection(replay, version=8)
    conn.start(0)
    for i, data in enumerate(messages):
        for command in conn.receive(data, i):
            if isinstance(command, VoiceSend):
                json.loads(command.data)
        conn.tick(i)
    replay.finish(len(messages))


test_voice_short_syntax, test_voice_short_syntax_long = fuzz_pair(short_syntax, text=short_fault)
test_voice_engine, test_voice_engine_long = fuzz_pair(
    engine_payloads, messages=st.lists(message, max_size=8)
)
