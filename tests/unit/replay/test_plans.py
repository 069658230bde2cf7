"""A run's plan split into the main gateway's faults and the voice face's, from --fault
texts and TOML plans alike: voice tables are the short syntax's keys, and a bad one is one
line naming the file, the table's index and the key."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from replayer.replay.faults import FaultKind, FaultPlanError
from replayer.replay.plans import RunPlan, combine, load_plan, parse_faults
from replayer.replay.voice.faults import ServerUpdate, VoiceFaultKind, parse_voice_fault
from replayer.voice.opcodes import VoiceOp

PLAN = """seed = 3

[[fault]]
kind = "reconnect"
event = "READY"

[[fault]]
kind = "voice-close"
code = 4015
voice = "READY"

[[fault]]
kind = "voice-server-update"
arg = "null"
voice_op = "SPEAKING#2"
voice_conn = 2

[[fault]]
kind = "dave-transition"
arg = 7
rtp = 50
times = 3
every = 10
"""


def test_a_toml_plan_holds_gateway_and_voice_faults(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    plan = load_plan(path)
    assert plan.gateway.seed == 3
    assert [f.kind for f in plan.gateway.faults] == [FaultKind.RECONNECT]
    close, update, dave = plan.voice.faults
    assert (close.kind, close.code, close.trigger.server_op) == (
        VoiceFaultKind.CLOSE, 4015, VoiceOp.READY,
    )  # fmt: skip
    assert (update.update, update.trigger.client_op, update.trigger.nth, update.trigger.conn) == (
        ServerUpdate.NULL, VoiceOp.SPEAKING, 2, 2,
    )  # fmt: skip
    assert dave.transition_id == 7
    assert [f.trigger.rtp for f in plan.voice.expanded()[2:]] == [50, 60, 70]
    assert close.source == f"{path}: fault 2 (voice-close)"


@pytest.mark.parametrize(
    "text",
    [
        "voice-close:4015@voice=READY",
        "voice-server-update:null@voice-op=SPEAKING#2,voice-conn=2",
        "dave-transition:7@rtp=50,times=3,every=10",
        "voice-drop@voice-op=RESUME",
        "dave-epoch@voice=SESSION_DESCRIPTION",
    ],
)
def test_a_voice_table_means_what_its_short_syntax_means(tmp_path: Path, text: str) -> None:
    head, _, tail = text.partition("@")
    kind, _, arg = head.partition(":")
    lines = [f'kind = "{kind}"'] + ([f'arg = "{arg}"'] if arg else [])
    lines += [f'"{k}" = "{v}"' for k, v in (p.split("=") for p in tail.split(","))]
    path = tmp_path / "plan.toml"
    path.write_text("[[fault]]\n" + "\n".join(lines) + "\n")
    (fault,) = load_plan(path).voice.faults
    assert fault == replace(parse_voice_fault(text), source=fault.source)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        (
            "kind = 'voice-close'\nvoice = 'READY'",
            "fault 2 (voice-close): voice-close needs a code",
        ),
        (
            "kind = 'voice-close'\ncode = 4999\nvoice = 'READY'",
            "fault 2 (voice-close): 4999 is not a voice close code",
        ),
        (
            "kind = 'voice-close'\ncode = 4015.0\nvoice = 'READY'",
            "fault 2 (voice-close): code: expected an integer",
        ),
        ("kind = 'voice-drop'\ncode = 4015\nrtp = 1", "fault 2 (voice-drop): field 'code'"),
        (
            "kind = 'voice-drop'\nrtp = 1\nevent = 'READY'",
            "fault 2 (voice-drop): unknown field 'event'",
        ),
        ("kind = 'voice-drop'\nrtp = 0", "fault 2 (voice-drop): rtp: must be at least 1"),
        ("kind = 'voice-drop'\nrtp = true", "fault 2 (voice-drop): rtp: expected an integer"),
        (
            "kind = 'voice-drop'\nvoice = 'IDENTIFY'",
            "fault 2 (voice-drop): voice: IDENTIFY is not one of",
        ),
        (
            "kind = 'voice-drop'\nvoice_op = ['HEARTBEAT']",
            "fault 2 (voice-drop): voice-op: expected an opcode name",
        ),
        (
            "kind = 'voice-drop'\nrtp = 1\nvoice_conn = -1",
            "fault 2 (voice-drop): voice-conn: must be at least 1",
        ),
        (
            "kind = 'voice-drop'\nrtp = 1\ntimes = 10001",
            "fault 2 (voice-drop): times: must be at most 10000",
        ),
        ("kind = 'voice-drop'", "fault 2 (voice-drop): exactly one of voice=, voice-op=, rtp="),
        (
            "kind = 'voice-zap'\nrtp = 1",
            "fault 2 (voice-zap): 'voice-zap' is not one of voice-close",
        ),
        (
            "kind = 'dave-epoch'\narg = 0\nrtp = 1",
            "fault 2 (dave-epoch): transition id: must be at least 1",
        ),
    ],
)
def test_a_bad_voice_table_is_one_line_naming_file_index_and_key(
    tmp_path: Path, table: str, says: str
) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(f"[[fault]]\nkind = 'drop'\ndispatch = 1\n\n[[fault]]\n{table}\n")
    with pytest.raises(FaultPlanError, match=re.escape(says)) as refused:
        load_plan(path)
    assert str(refused.value).startswith(f"{path}: fault 2 ")
    assert "\n" not in str(refused.value)


def test_fault_texts_split_by_kind_and_plans_combine(tmp_path: Path) -> None:
    texts = ["close:4000@dispatch=1", "voice-drop@rtp=5", "reconnect@event=READY"]
    given = parse_faults(texts)
    assert [f.source for f in given.gateway.faults] == [texts[0], texts[2]]
    assert [f.source for f in given.voice.faults] == [texts[1]]
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    whole = combine([given, load_plan(path), RunPlan()])
    assert len(whole.gateway.faults) == 3
    assert len(whole.voice.faults) == 4
    assert whole.gateway.seed == 3


def test_replays_options_carry_a_plans_voice_faults_to_the_face(tmp_path: Path) -> None:
    from replayer.cli.replay import _prepare
    from replayer.resources import sample_archive

    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    prep = _prepare(sample_archive("voice-bot.rpl"), plan=path, chaos=True, seed=1)
    assert prep.voice_options is not None  # a voice fault turns the face on
    assert prep.voice_options.plan == prep.voice_plan == load_plan(path).voice
    # --chaos adds main-gateway faults only.
    chaos = [f for f in prep.fault_plan.faults if f.source.startswith("chaos")]
    assert len(chaos) == 3
    assert len(prep.voice_plan.faults) == 3
