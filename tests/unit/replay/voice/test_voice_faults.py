"""The voice fault syntax: what it accepts, what it refuses (one line naming the field),
and every example the docs show parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from replayer.cli.replay import FAULT_HELP
from replayer.replay.faults import FaultPlanError
from replayer.replay.voice import faults as voice_faults
from replayer.replay.voice.faults import (
    ServerUpdate,
    VoiceFaultKind,
    VoicePlan,
    is_voice_fault,
    parse_voice_fault,
)
from replayer.voice.opcodes import VoiceOp

ROOT = Path(__file__).parents[4]
_EXAMPLE = re.compile(r"(?<![\w-])((?:voice|dave)-[a-z-]+(?::[\w-]+)?@[\w=#,.-]+)")


def test_kinds_arguments_and_triggers() -> None:
    f = parse_voice_fault("voice-close:4015@voice=READY")
    assert (f.kind, f.code, f.trigger.server_op, f.trigger.nth) == (
        VoiceFaultKind.CLOSE, 4015, VoiceOp.READY, 1,
    )  # fmt: skip
    f = parse_voice_fault("voice-server-update@voice-op=SPEAKING#2,voice-conn=3")
    assert (f.update, f.trigger.client_op, f.trigger.nth, f.trigger.conn) == (
        ServerUpdate.NEW_ENDPOINT, VoiceOp.SPEAKING, 2, 3,
    )  # fmt: skip
    f = parse_voice_fault("dave-transition:7@rtp=50,times=3,every=10")
    assert (f.transition_id, f.trigger.rtp) == (7, 50)
    assert [g.trigger.rtp for g in VoicePlan((f,)).expanded()] == [50, 60, 70]
    assert parse_voice_fault("voice-drop@voice-op=0").trigger.client_op == VoiceOp.IDENTIFY
    assert f.describe() == "dave-transition id 7 after RTP packet 50"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("voice-close@voice=READY", "needs a code"),
        ("voice-close:4999@voice=READY", "not a voice close code"),
        ("voice-close:3000@voice=READY", "neither a voice code"),
        ("voice-drop", "needs a trigger"),
        ("voice-drop:x@rtp=1", "takes no argument"),
        ("voice-zap@rtp=1", "is not one of voice-close"),
        ("voice-drop@rtp=1,voice=READY", "exactly one of"),
        ("voice-drop@voice=IDENTIFY", "IDENTIFY is not one of"),
        ("voice-drop@voice-op=READY", "READY is not one of"),
        ("voice-drop@rtp=0", "at least 1"),
        ("voice-drop@event=READY", "is not KEY=VALUE"),
        ("voice-server-update:elsewhere@rtp=1", "is not one of new-endpoint"),
        ("dave-transition:70000@rtp=1", "at most 65535"),
        ("voice-drop@rtp=1,rtp=2", "given twice"),
    ],
)
def test_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(FaultPlanError, match=re.escape(says)) as refused:
        parse_voice_fault(text)
    assert "\n" not in str(refused.value)
    assert repr(text) in str(refused.value)


def test_which_faults_are_voice_faults() -> None:
    assert is_voice_fault("voice-close:4015@voice=READY")
    assert is_voice_fault(" dave-epoch@rtp=1")
    assert not is_voice_fault("close:4000@dispatch=1")
    assert not is_voice_fault("reconnect@client-op=VOICE_STATE_UPDATE")


def test_every_documented_voice_example_parses() -> None:
    texts = [
        (ROOT / "docs" / "voice.md").read_text(),
        (ROOT / "docs" / "faults.md").read_text(),
        FAULT_HELP,
        voice_faults.__doc__ or "",
    ]
    examples = {m.group(1).rstrip(".,") for text in texts for m in _EXAMPLE.finditer(text)}
    assert len(examples) >= 8, examples
    kinds = {parse_voice_fault(e).kind for e in examples}
    assert kinds == set(VoiceFaultKind), kinds
