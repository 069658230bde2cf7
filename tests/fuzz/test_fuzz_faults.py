"""Fault plans (TOML) and ``--fault`` text on hostile input: only ``FaultPlanError``, and
what is accepted holds integers that were written as integers."""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from replayer.replay.faults import FaultKind, FaultPlanError, parse_fault
from replayer.replay.plans import load_plan
from replayer.replay.voice.faults import VoiceFaultKind

from .conftest import fuzz_pair, fuzz_target

KEYS = ["kind", "dispatch", "event", "seq", "client-op", "client_op", "t", "phase", "conn",
        "times", "every", "code", "reason", "resumable", "duration", "retry-after", "jitter",
        "other"]  # fmt: skip
KINDS = [k.value for k in FaultKind]

number_text = st.sampled_from(
    ["1", "1.9", "0", "-1", "inf", "nan", "1e400", "9" * 400, "9" * 5000, "3s", "250ms",
     "1.5m", "1_000", "\u0661", "+5", " 7 ", "0x10", "", "#", "READY#2", "hello", "HEARTBEAT#0"]
)  # fmt: skip
toml_scalar = (
    st.integers(1, 100)
    | st.floats(0.5, 100)
    | st.integers()
    | st.floats()
    | st.booleans()
    | number_text
    | st.text(max_size=10)
    | st.sampled_from(KINDS)
)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, int):
        return str(v)
    return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


@st.composite
def plan_text(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    lines, tables = [], []
    if draw(st.booleans()):
        lines.append(f"seed = {toml_value(draw(toml_scalar))}")
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[fault]]")
        # Mostly near-valid (a kind and one trigger) so values get past the shape checks.
        fields: dict[str, Any] = {}
        if draw(st.integers(0, 3)):
            fields["kind"] = draw(st.sampled_from(["reconnect", "stall", "close", "latency"]))
        if draw(st.integers(0, 3)):
            fields[draw(st.sampled_from(["dispatch", "seq", "conn", "t"]))] = draw(toml_scalar)
        fields |= draw(st.dictionaries(st.sampled_from(KEYS), toml_scalar, max_size=3))
        lines += [f'"{k}" = {toml_value(v)}' for k, v in fields.items()]
        tables.append(fields)
    return "\n".join(lines) + "\n", tables


COUNTS = ("dispatch", "seq", "conn", "times", "every")
_DIGITS = re.compile(r"\s*\+?\d+\s*")


def written_as_integer(value: object) -> bool:
    return type(value) is int or (isinstance(value, str) and _DIGITS.fullmatch(value) is not None)


_tmp = tempfile.TemporaryDirectory()
PLAN = Path(_tmp.name) / "plan.toml"


@fuzz_target(FaultPlanError)
def toml_plan(plan: tuple[str, list[dict[str, Any]]], junk: bytes) -> None:
    text, tables = plan
    PLAN.write_bytes(text.encode("utf-8", "surrogatepass") + junk)
    faults = load_plan(PLAN).gateway.faults
    # Accepted: every count was written as an integer and is what the plan says.
    for fault, table in zip(faults, tables, strict=True):
        for key in COUNTS:
            if key in table:
                assert written_as_integer(table[key]), (key, table[key])
        if "dispatch" in table:
            assert fault.trigger.dispatch == int(table["dispatch"])
        assert 1 <= fault.times <= 10_000


VOICE_KINDS = [k.value for k in VoiceFaultKind]
VOICE_KEYS = ["kind", "arg", "code", "voice", "voice-op", "voice_op", "rtp", "voice-conn",
              "voice_conn", "times", "every", "event", "other"]  # fmt: skip
VOICE_COUNTS = ("rtp", "voice-conn", "times", "every")
voice_scalar = toml_scalar | st.sampled_from(
    ["READY", "SPEAKING#2", "HELLO#0", "IDENTIFY", "RESUME#3", "4015", "null", "new-token", "7"]
)


@st.composite
def mixed_plan_text(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """Gateway and voice ``[[fault]]`` tables in one plan, mostly near-valid."""
    lines, tables = [], []
    for _ in range(draw(st.integers(0, 4))):
        lines.append("[[fault]]")
        fields: dict[str, Any] = {}
        if draw(st.booleans()):
            fields["kind"] = draw(st.sampled_from(VOICE_KINDS))
            if draw(st.integers(0, 3)):
                fields[draw(st.sampled_from(["voice", "voice-op", "rtp"]))] = draw(voice_scalar)
            fields |= draw(st.dictionaries(st.sampled_from(VOICE_KEYS), voice_scalar, max_size=3))
        else:
            fields["kind"] = draw(st.sampled_from(["reconnect", "drop", "close"]))
            fields[draw(st.sampled_from(["dispatch", "seq", "conn"]))] = draw(toml_scalar)
            fields |= draw(st.dictionaries(st.sampled_from(KEYS), toml_scalar, max_size=2))
        lines += [f'"{k}" = {toml_value(v)}' for k, v in fields.items()]
        tables.append(fields)
    return "\n".join(lines) + "\n", tables


@fuzz_target(FaultPlanError)
def mixed_toml_plan(plan: tuple[str, list[dict[str, Any]]]) -> None:
    """Voice tables beside gateway ones: only FaultPlanError (one line naming the file and
    the table); accepted, each table lands on its side with its counts as written."""
    text, tables = plan
    PLAN.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        run_plan = load_plan(PLAN)
    except FaultPlanError as exc:
        refused = str(exc)
        if "\n" in refused or not refused.startswith(f"{PLAN}: "):
            raise AssertionError(f"not one line naming the file: {refused!r}") from exc
        raise
    kinds = [str(t.get("kind", "")) for t in tables]
    voice_tables = [t for t, k in zip(tables, kinds, strict=True) if k in VOICE_KINDS]
    assert [f.kind.value for f in run_plan.voice.faults] == [t["kind"] for t in voice_tables]
    assert len(run_plan.gateway.faults) == len(tables) - len(voice_tables)
    for fault, table in zip(run_plan.voice.faults, voice_tables, strict=True):
        spec = {k.replace("_", "-"): v for k, v in table.items()}
        for key in VOICE_COUNTS:
            if key in spec:
                assert written_as_integer(spec[key]), (key, spec[key])
        if "rtp" in spec:
            assert fault.trigger.rtp == int(spec["rtp"])
        assert 1 <= fault.times <= 10_000
        fault.describe()


@st.composite
def fault_text(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(KINDS) | st.text(max_size=6))
    arg = draw(st.none() | number_text | st.text(max_size=6))
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(KEYS), number_text | st.text(max_size=6)), max_size=4)
    )
    head = kind if arg is None else f"{kind}:{arg}"
    sep = draw(st.sampled_from(["@", "@", ""]))
    return head + sep + ",".join(f"{k}={v}" for k, v in pairs)


@fuzz_target(FaultPlanError)
def short_syntax(text: str) -> None:
    fault = parse_fault(text)
    fault.describe()
    given = dict(p.partition("=")[::2] for p in text.partition("@")[2].split(","))
    for key in COUNTS:
        if key in given:
            assert written_as_integer(given[key]), (key, given[key])
    if "dispatch" in given:
        assert fault.trigger.dispatch == int(given["dispatch"])


@fuzz_target(FaultPlanError)
def run_time_syntax(text: str) -> None:
    """A fault injected at run time (POST /_replayer/faults, inject()): no trigger is
    allowed and means now; anything else is the plan syntax's."""
    fault = parse_fault(text, now_ok=True)
    fault.describe()
    if fault.trigger.now:
        assert fault.times == 1
        assert fault.every is None
        assert all(
            value is None
            for value in (fault.trigger.dispatch, fault.trigger.event, fault.trigger.seq,
                          fault.trigger.client_op, fault.trigger.t_ms, fault.trigger.phase,
                          fault.trigger.conn)
        )  # fmt: skip
    else:
        assert parse_fault(text) == fault  # with a trigger: exactly the plan syntax


test_toml_plan, test_toml_plan_long = fuzz_pair(
    toml_plan,
    plan=plan_text() | st.text(max_size=60).map(lambda t: (t, [])),
    junk=st.sampled_from([b"", b"\xff", b"["]),
)
test_mixed_toml_plan, test_mixed_toml_plan_long = fuzz_pair(mixed_toml_plan, plan=mixed_plan_text())
test_short_syntax, test_short_syntax_long = fuzz_pair(
    short_syntax, text=fault_text() | st.text(max_size=60)
)
test_run_time_syntax, test_run_time_syntax_long = fuzz_pair(
    run_time_syntax, text=fault_text() | st.text(max_size=60)
)


@pytest.mark.parametrize("key", COUNTS)
def test_floats_where_integers_are_due_are_refused_not_truncated(key: str, tmp_path: Path) -> None:
    # Issue #14: dispatch = 1.9 in a plan silently became 1.
    plan = tmp_path / "p.toml"
    fields = {"dispatch": "2", key: "1.9"}
    plan.write_text(
        '[[fault]]\nkind = "reconnect"\n' + "".join(f"{k} = {v}\n" for k, v in fields.items())
    )
    with pytest.raises(FaultPlanError, match=rf"field '{key}': expected an integer, got 1\.9"):
        load_plan(plan)
    text = "reconnect@" + ",".join(f"{k}={v}" for k, v in fields.items())
    with pytest.raises(FaultPlanError, match=rf"field '{key}': expected an integer, got '1\.9'"):
        parse_fault(text)
