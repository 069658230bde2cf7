"""results.json read back: a report that follows the schema is read whole; one that does
not is one ReportError naming the file and the field; whatever is accepted renders."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replayer.conform.reports import write_reports
from replayer.conform.reports.html import Column, case_html, index_html
from replayer.conform.reports.junit import Suite, junit_xml
from replayer.conform.reports.schema import (
    ReportError,
    dump_json,
    parse_report,
    read_report,
)
from replayer.conform.reports.text import ClientLog
from replayer.errors import ReplayerError
from tests.report_factory import sample_report


def test_a_sample_report_is_read_whole() -> None:
    report = parse_report(sample_report())
    assert report.agent == "discord.py 2.7.1"
    assert report.tool == "replayer 0.1.0"
    assert report.counts() == {
        "PASS": 3,
        "NON-STRICT": 1,
        "FAIL": 1,
        "NOT FIRED": 1,
        "INFO": 1,
        "MISSING": 0,
    }
    fail = next(c for c in report.cases if c.id == "3.2")
    assert fail.timeline is not None
    assert [c.id for c in fail.timeline.connections] == [1, 2]
    assert fail.timeline.connections[0].close is not None
    assert fail.timeline.connections[0].close.code == 4999
    assert [m.conn for m in fail.timeline.faults] == [1, None]
    assert fail.verdicts[0].result == "FAIL"


def test_unknown_fields_are_kept_out_of_the_way_and_optional_ones_default() -> None:
    data = sample_report()
    data["added_later"] = {"x": 1}
    for c in data["cases"]:
        c["added_later"] = [1, 2]
        del c["timeline"], c["exit"], c["verdicts"], c["plan"]
    report = parse_report(data)
    assert all(c.timeline is None and c.exit is None and c.verdicts == () for c in report.cases)


def _set(data: dict[str, Any], path: list[Any], value: Any) -> None:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        (
            ["schema"],
            "replayer-conform/2",
            "field 'schema': 'replayer-conform/2': this replayer reads replayer-conform/1",
        ),
        (["schema"], "autobahn/1", "field 'schema': 'autobahn/1' is not a replayer-conform report"),
        (["agent"], _DELETE, "field 'agent': expected a string, got null"),
        (["cases"], {}, "field 'cases': expected a list, got an object"),
        (["strict"], "yes", "field 'strict': expected true or false, got a string"),
        (
            ["cases", 1, "result"],
            "MAYBE",
            "field 'cases[1].result': 'MAYBE' is not one of PASS, NON-STRICT, FAIL, NOT FIRED, INFO, MISSING",
        ),
        (["cases", 1, "id"], "3.x", "field 'cases[1].id': '3.x' is not a case id like 3.1"),
        (["cases", 1, "id"], "1.1", "field 'cases[1].id': case 1.1 is listed twice"),
        (["cases", 0, "group"], True, "field 'cases[0].group': expected an integer, got a boolean"),
        (
            ["cases", 0, "duration_ms"],
            "1 s",
            "field 'cases[0].duration_ms': expected a number, got a string",
        ),
        (
            ["cases", 2, "verdicts", 0, "result"],
            "INFO",
            "field 'cases[2].verdicts[0].result': 'INFO' is not one of PASS, NON-STRICT, FAIL, NOT FIRED",
        ),
        (
            ["cases", 2, "timeline", "connections", 0, "close", "code"],
            "4000",
            "field 'cases[2].timeline.connections[0].close.code': expected an integer, got a string",
        ),
        (
            ["cases", 2, "timeline", "connections", 1, "frames", 2, "dir"],
            "up",
            "field 'cases[2].timeline.connections[1].frames[2].dir': 'up' is not one of server, client",
        ),
        (
            ["cases", 2, "timeline", "faults", 0, "fault"],
            None,
            "field 'cases[2].timeline.faults[0].fault': expected a string, got null",
        ),
        (["cases", 2, "plan", 0], 7, "field 'cases[2].plan[0]': expected a string, got an integer"),
    ],
)
def test_a_bad_field_is_one_line_naming_file_and_field(
    path: list[Any], value: Any, says: str
) -> None:
    data = sample_report()
    _set(data, path, value)
    with pytest.raises(ReportError) as caught:
        parse_report(data, path="run1/results.json")
    assert str(caught.value) == f"run1/results.json: {says}"
    assert isinstance(caught.value, ReplayerError)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_not_json_or_not_there(tmp_path: Path) -> None:
    bad = tmp_path / "results.json"
    bad.write_text('{"schema": "replayer-conform/1",\n  "agent": }\n', encoding="utf-8")
    with pytest.raises(
        ReportError, match=r"results.json: not JSON: line 2 column 12: Expecting value$"
    ):
        read_report(bad)
    with pytest.raises(ReportError, match=r"nothing/results.json: no such file"):
        read_report(tmp_path / "nothing" / "results.json")
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ReportError, match=r"results.json: cannot read it"):
        read_report(bad)


def test_results_json_is_stable_and_round_trips(tmp_path: Path) -> None:
    data = sample_report()
    write_reports(data, tmp_path)
    text = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert text == dump_json(json.loads(text))
    assert text.startswith('{\n  "agent": "discord.py 2.7.1",\n  "cases": [\n')
    report, raw = read_report(tmp_path / "results.json")
    assert raw == data
    assert report == parse_report(data, path=str(tmp_path / "results.json"))


def test_a_lone_surrogate_is_written_as_its_escape(tmp_path: Path) -> None:
    data = sample_report()
    data["agent"] = "bot \ud800"
    write_reports(data, tmp_path)
    assert (
        json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["agent"] == "bot \ud800"
    )
    assert "bot \\ud800" in (tmp_path / "index.html").read_text(encoding="utf-8")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _leaf_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            paths += _leaf_paths(item, (*prefix, i))
    return paths


_SAMPLE = sample_report()
_PATHS = _leaf_paths(_SAMPLE)[1:]


def _renders(data: dict[str, Any], tmp: Path) -> None:
    """An accepted report gives junit.xml and every HTML page without an error."""
    report = parse_report(data)
    junit_xml([Suite(report, tmp)])
    column = Column(report, "agent")
    index_html([column], lambda _c, case: f"cases/{case.id}.html")
    for case in report.cases:
        case_html(
            column, case, index_href="../index.html", log=ClientLog("", 0, 0, ""), log_href=None
        )


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_PATHS), value=json_values | st.sampled_from([_DELETE]))
def test_any_one_field_changed_is_read_or_refused_never_a_crash(
    tmp_path: Path, where: tuple[Any, ...], value: Any
) -> None:
    data = copy.deepcopy(_SAMPLE)
    _set(data, list(where), value)
    try:
        parse_report(data)
    except ReportError as exc:
        refusal = str(exc)
    else:
        _renders(data, tmp_path)
        return
    assert refusal.startswith("results.json: field '")


@given(json_values)
def test_any_json_is_read_or_refused(value: Any) -> None:
    with contextlib.suppress(ReportError):
        parse_report(value)


def test_the_documented_example_is_a_report_this_reader_accepts() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "conformance" / "results-schema.md").read_text(
        encoding="utf-8"
    )
    example = doc.split("```json\n", 1)[1].split("```", 1)[0]
    report = parse_report(json.loads(example))
    assert [c.id for c in report.cases] == ["3.1"]
    case = report.cases[0]
    assert case.timeline is not None
    assert case.timeline.connections[0].close is not None
    assert case.timeline.connections[0].close.code == 4000
    # The error line the page shows is the one the reader gives.
    data = json.loads(example)
    data["cases"][0]["timeline"]["connections"][0]["close"]["code"] = "4000"
    with pytest.raises(ReportError) as caught:
        parse_report(data, path="run2/results.json")
    shown = str(caught.value).replace("cases[0]", "cases[4]")
    assert f"error: {shown}" in doc
