"""The case catalogue: every case can be run (its plan parses and can fire in its archive),
names rules the Judge gives verdicts under, and the selection parser takes every pattern
it documents and refuses anything else in one line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayer.cli.conform import LIST_WIDTH, catalogue_lines
from replayer.conform.catalogue import (
    CATALOGUE,
    GROUPS,
    Case,
    CaseSelectionError,
    bundled_archive,
    fault_rules,
    select,
)
from replayer.conform.reference_client import WRONG_TWIN
from replayer.conform.runner import case_result
from replayer.replay.engine import ReplayOptions
from replayer.replay.reachability import check_reachable
from replayer.replay.script import load_script
from replayer.replay.verdicts import Result, Verdict

# The standing rules' verdict names (replay/verdicts.py, starts.py, answers.py).
STANDING = {
    "heartbeats on schedule",
    "payload rate",
    "RESUMEs on resume_gateway_url",
    "RESUMEs keep the query",
    "new sessions on the gateway URL",
    "back to the gateway URL",
    "reconnect back-off",
    "session starts",
    "identify concurrency",
}
IDS = [c.id for c in CATALOGUE]


def test_ids_are_unique_numbered_and_in_order() -> None:
    assert len(set(IDS)) == len(IDS)
    numbers = [c.number for c in CATALOGUE]
    assert numbers == sorted(numbers)
    for case in CATALOGUE:
        assert re.fullmatch(r"\d+\.\d+", case.id)
        assert case.group == case.number[0]
        assert case.group_title == GROUPS[case.group]
    # Numbered from 1 within each group, without gaps.
    for group in GROUPS:
        ns = [c.number[1] for c in CATALOGUE if c.group == group]
        assert ns == list(range(1, len(ns) + 1)), group


def test_every_group_of_the_issue_has_cases() -> None:
    assert {c.group for c in CATALOGUE} == set(GROUPS)
    closes = " ".join(c.title for c in CATALOGUE if c.group == 5)
    for code in [*range(4000, 4006), *range(4007, 4015), 1000, 1001, 1005, 1006]:
        assert str(code) in closes, code


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_each_case_can_run(case: Case) -> None:
    """Its plan parses and can fire in its archive, its options are ReplayOptions fields,
    and every rule is a verdict name the judge gives (a fault's or a standing rule's)."""
    script = load_script(bundled_archive(case.archive))
    check_reachable(case.fault_plan(), script)
    ReplayOptions(**case.replay_options())
    assert case.rules, "every case listed judges something"
    faults = set(fault_rules(case.plan))
    for rule in case.rules:
        assert rule in faults or rule in STANDING, rule
    assert case.docs
    assert case.expected
    assert case.title
    assert case.time_limit_s > case.min_run_s


def test_every_case_has_a_wrong_twin() -> None:
    assert set(WRONG_TWIN) == set(IDS)


def test_the_list_fits_80_columns() -> None:
    lines = catalogue_lines(CATALOGUE)
    assert max(len(line) for line in lines) <= LIST_WIDTH
    assert lines[-1] == f"{len(CATALOGUE)} cases"
    assert sum(1 for line in lines if re.match(r"\d+\.\d+ ", line)) == len(CATALOGUE)


# --- selection -------------------------------------------------------------------------


def test_select_examples() -> None:
    assert [c.id for c in select(CATALOGUE, "3.*,5.2")] == ["3.1", "3.2", "3.3", "5.2"]
    assert [c.id for c in select(CATALOGUE, "3")] == ["3.1", "3.2", "3.3"]
    assert [c.id for c in select(CATALOGUE, "03.02")] == ["3.2"]
    assert [c.id for c in select(CATALOGUE, "1", "1.2,1.3")] == ["1.1", "1.4"]
    assert select(CATALOGUE) == list(CATALOGUE)
    assert select(CATALOGUE, "*", "*") == []
    assert select(CATALOGUE, "99") == []


_ids = st.sampled_from(IDS)
_groups = st.sampled_from(sorted(GROUPS)).map(str)
_pattern = st.one_of(_ids, _groups, _groups.map(lambda g: g + ".*"), st.just("*"))


@given(st.lists(_pattern, min_size=1, max_size=5), st.lists(_pattern, max_size=3))
def test_select_is_what_the_patterns_name(include: list[str], exclude: list[str]) -> None:
    def named(case: Case, pattern: str) -> bool:
        if pattern == "*":
            return True
        group, _, n = pattern.partition(".")
        return case.group == int(group) and (n in ("", "*") or case.number[1] == int(n))

    chosen = select(CATALOGUE, ",".join(include), ",".join(exclude) if exclude else None)
    expected = [
        c
        for c in CATALOGUE
        if any(named(c, p) for p in include) and not any(named(c, p) for p in exclude)
    ]
    assert chosen == expected


@given(st.text(max_size=30))
def test_a_bad_pattern_is_one_line(text: str) -> None:
    try:
        select(CATALOGUE, text)
    except CaseSelectionError as exc:
        message = str(exc)
        assert message.startswith("--cases: ")
        assert "\n" not in message
        assert len(message) < 200
    else:
        parts = [p.strip() for p in text.split(",")]
        assert all(re.fullmatch(r"\d{1,3}(\.(\d{1,3}|\*))?|\*", p) for p in parts)


@pytest.mark.parametrize("bad", ["3.x", "", "3,,4", "1.2.3", "a", "-1", "3.*5"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(CaseSelectionError, match="is not a case pattern"):
        select(CATALOGUE, None, bad)


# --- a case's result -------------------------------------------------------------------


def _verdict(name: str, result: Result | None) -> Verdict:
    return Verdict(name=name, expected="", result=result)


def test_result_is_the_worst_of_the_rules_verdicts() -> None:
    case = CATALOGUE[IDS.index("8.1")]  # reconnect + RESUMEs on resume_gateway_url
    fault, rule = case.rules
    other = _verdict("heartbeats on schedule", Result.FAIL)  # not this case's rule
    pass_ = [_verdict(fault, Result.PASS), _verdict(rule, Result.PASS), other]
    assert case_result(case, pass_)[0] == "PASS"
    non_strict = [_verdict(fault, Result.PASS), _verdict(rule, Result.NON_STRICT)]
    assert case_result(case, non_strict)[0] == "NON-STRICT"
    failed = [_verdict(fault, Result.FAIL), _verdict(rule, Result.NON_STRICT)]
    assert case_result(case, failed)[0] == "FAIL"
    not_fired = [_verdict(fault, Result.NOT_FIRED), _verdict(rule, Result.PASS)]
    assert case_result(case, not_fired)[0] == "NOT FIRED"


def test_a_rule_without_a_verdict_is_not_fired_and_no_rule_is_info() -> None:
    case = CATALOGUE[IDS.index("8.1")]
    result, judged, missing = case_result(case, [_verdict(case.rules[0], Result.PASS)])
    assert (result, missing) == ("NOT FIRED", [case.rules[1]])
    assert [v.name for v in judged] == [case.rules[0]]
    info = Case("1.9", 1, "x", "t", "d", "small-bot.rpl", (), (), "e")
    assert case_result(info, [_verdict("payload rate", Result.FAIL)])[0] == "INFO"
