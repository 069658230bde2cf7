from __future__ import annotations

import re
from pathlib import Path

import pytest

from replayer.replay.faults import (
    Fault,
    FaultKind,
    FaultPlanError,
    Trigger,
    chaos_plan,
    parse_fault,
)
from replayer.replay.plans import load_plan


@pytest.mark.parametrize(
    ("text", "kind", "trigger", "extra"),
    [
        ("reconnect@event=READY", FaultKind.RECONNECT, Trigger(event="READY"), {}),
        (
            "invalid-session:false@dispatch=5",
            FaultKind.INVALID_SESSION,
            Trigger(dispatch=5),
            {"resumable": False},
        ),
        (
            "invalid-session:true@seq=3",
            FaultKind.INVALID_SESSION,
            Trigger(seq=3),
            {"resumable": True},
        ),
        ("close:4009@seq=12", FaultKind.CLOSE, Trigger(seq=12), {"code": 4009}),
        ("drop@event=guild_create#3", FaultKind.DROP, Trigger(event="GUILD_CREATE", nth=3), {}),
        ("zombie@client-op=HEARTBEAT#2", FaultKind.ZOMBIE, Trigger(client_op=1, nth=2), {}),
        ("heartbeat@t=5s", FaultKind.HEARTBEAT, Trigger(t_ms=5000), {}),
        ("stall:1500ms@dispatch=2", FaultKind.STALL, Trigger(dispatch=2), {"duration_ms": 1500}),
        ("rate-limited@client-op=8", FaultKind.RATE_LIMITED, Trigger(client_op=8), {}),
        ("reject-resume@conn=1", FaultKind.REJECT_RESUME, Trigger(conn=1), {}),
        ("reconnect@conn=2,dispatch=1", FaultKind.RECONNECT, Trigger(dispatch=1, conn=2), {}),
    ],
)
def test_short_syntax(
    text: str, kind: FaultKind, trigger: Trigger, extra: dict[str, object]
) -> None:
    fault = parse_fault(text)
    assert fault.kind is kind
    assert fault.trigger == trigger
    for key, value in extra.items():
        assert getattr(fault, key) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("reconnect", "missing '@'"),
        ("explode@dispatch=1", "field 'kind': 'explode' is not one of"),
        ("close@dispatch=1", "field 'code': a close needs a code"),
        ("close:999@dispatch=1", "field 'code': must be at least 1000"),
        ("close:1006@dispatch=1", "cannot be sent in a close frame"),
        ("reconnect@dispatch=0", "field 'dispatch': must be at least 1"),
        ("reconnect@dispatch=x", "field 'dispatch': expected an integer"),
        ("reconnect@dispatch=1,seq=2", "give one of"),
        ("reconnect@color=red", "unknown field 'color'"),
        ("reconnect@dispatch", "is not KEY=VALUE"),
        ("zombie@client-op=FLY", "field 'client-op': unknown opcode"),
        ("stall@dispatch=1", "a stall needs a duration"),
        ("stall:soon@dispatch=1", "not a duration"),
        ("reconnect:now@dispatch=1", "reconnect takes no argument"),
        ("invalid-session:maybe@dispatch=1", "field 'resumable'"),
        ("drop@event=GUILD_CREATE#0", "must be at least 1"),
    ],
)
def test_bad_faults_name_the_fault_and_field(text: str, message: str) -> None:
    with pytest.raises(FaultPlanError, match=message) as info:
        parse_fault(text)
    assert repr(text) in str(info.value)


def test_repeats() -> None:
    fault = parse_fault("reconnect@dispatch=10,times=3,every=5")
    assert [f.trigger.dispatch for f in (fault.occurrence(k) for k in range(3))] == [10, 15, 20]
    nth = parse_fault("drop@event=GUILD_CREATE#2,times=2")
    assert [nth.occurrence(k).trigger.nth for k in range(2)] == [2, 4]


def test_toml_plan(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        'seed = 7\n\n[[fault]]\nkind = "close"\ncode = 4000\nevent = "GUILD_CREATE#2"\n\n'
        '[[fault]]\nkind = "invalid-session"\nresumable = true\ndispatch = 9\ntimes = 2\nevery = 3\n'
    )
    plan = load_plan(plan_file).gateway
    assert plan.seed == 7
    assert plan.faults[0] == Fault(
        FaultKind.CLOSE,
        Trigger(event="GUILD_CREATE", nth=2),
        code=4000,
        source=plan.faults[0].source,
    )
    assert [f.trigger.dispatch for f in plan.expanded()[1:]] == [9, 12]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[fault]]\nkind = 'close'\ndispatch = 1\n", "fault 1 (close): field 'code'"),
        ("[[fault]]\nkind = 'reconnect'\n", "fault 1 (reconnect): say when"),
        (
            "[[fault]]\nkind = 'reconnect'\ndispatch = 1\n[[fault]]\nkind = 'zap'\n",
            "fault 2 (zap): field 'kind'",
        ),
        ("fault = 3\n", "array of tables"),
        ("faults = []\n", "unknown top-level key 'faults'"),
        ("[[fault]\n", "not valid TOML"),
    ],
)
def test_bad_toml_plans(tmp_path: Path, content: str, message: str) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(content)
    with pytest.raises(FaultPlanError, match=re.escape(message)) as info:
        load_plan(plan_file)
    assert str(plan_file) in str(info.value)


def test_chaos_is_the_same_for_the_same_seed() -> None:
    assert chaos_plan(42, 100) == chaos_plan(42, 100)
    assert chaos_plan(42, 100) != chaos_plan(43, 100)
    plan = chaos_plan(1, 50, count=5)
    positions = [f.trigger.dispatch for f in plan.faults]
    assert positions == sorted(set(positions))
    assert len(positions) == 5
