"""junit.xml: parsed back, its suites, cases, failures, notes and logs are what the report
says, whatever the client printed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replayer.conform.reports import merge_reports, write_merged, write_reports
from replayer.conform.reports.junit import Suite, junit_xml
from replayer.conform.reports.schema import parse_report
from replayer.conform.reports.text import xml_safe
from tests.report_factory import (
    HOSTILE,
    case,
    client_log_text,
    report,
    sample_report,
    shown,
    write_logs,
)


def written(tmp_path: Path, data: dict[str, Any]) -> ET.Element:
    write_logs(tmp_path, data)
    write_reports(data, tmp_path)
    return ET.parse(tmp_path / "junit.xml").getroot()


def by_name(suite: ET.Element) -> dict[str, ET.Element]:
    return {tc.get("name", "").split(" ")[0]: tc for tc in suite.iter("testcase")}


def test_one_suite_one_testcase_per_case_with_counts(tmp_path: Path) -> None:
    data = sample_report()
    root = written(tmp_path, data)
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "discord.py 2.7.1"
    cases = by_name(suite)
    assert sorted(cases) == sorted(c["id"] for c in data["cases"])
    # FAIL and NOT FIRED fail; NON-STRICT, PASS and INFO pass.
    failed = {i for i, tc in cases.items() if tc.find("failure") is not None}
    assert failed == {"3.2", "2.4"}
    assert suite.get("tests") == "7"
    assert suite.get("failures") == root.get("failures") == "2"
    assert suite.get("errors") == "0"
    assert suite.get("skipped") == "0"
    assert suite.get("time") == "123.456"
    # In id order, 3.10 after 3.2.
    assert list(cases) == ["1.1", "2.1", "2.3", "2.4", "3.2", "3.10", "9.1"]


def test_testcase_names_classnames_and_time(tmp_path: Path) -> None:
    suite = written(tmp_path, sample_report()).find("testsuite")
    assert suite is not None
    tc = by_name(suite)["1.1"]
    assert tc.get("classname") == "replayer.conform.CONNECT_AND_IDENTIFY"
    assert tc.get("name") == "1.1 connect and IDENTIFY"
    assert tc.get("time") == "2.345"
    assert by_name(suite)["3.10"].get("classname") == "replayer.conform.RECONNECT"


def test_a_failure_says_expected_and_observed_and_holds_the_verdict_table(tmp_path: Path) -> None:
    suite = written(tmp_path, sample_report()).find("testsuite")
    assert suite is not None
    failure = by_name(suite)["3.2"].find("failure")
    assert failure is not None
    assert failure.get("type") == "FAIL"
    assert (
        failure.get("message")
        == f"expected: a RESUME on a new connection; observed: a fresh IDENTIFY {shown(HOSTILE)}"
    )
    table = failure.text or ""
    assert "FAIL       reconnect-resumes (connection 1)" in table
    assert "expected: a new connection that RESUMEs the session" in table
    assert "docs: Events > Gateway Events > Reconnect" in table
    assert "PASS       RESUMEs on resume_gateway_url" in table
    not_fired = by_name(suite)["2.4"].find("failure")
    assert not_fired is not None
    assert not_fired.get("type") == "NOT FIRED"
    assert "observed: the trigger never came" in (not_fired.get("message") or "")


def test_non_strict_passes_with_a_note_unless_strict(tmp_path: Path) -> None:
    lenient = written(tmp_path / "lenient", sample_report()).find("testsuite")
    assert lenient is not None
    tc = by_name(lenient)["2.3"]
    assert tc.find("failure") is None
    note = tc.findtext("system-out") or ""
    assert note.startswith(
        "NON-STRICT (a pass unless strict): expected: a HEARTBEAT every heartbeat_interval"
    )
    strict = written(tmp_path / "strict", sample_report(strict=True)).find("testsuite")
    assert strict is not None
    failure = by_name(strict)["2.3"].find("failure")
    assert failure is not None
    assert failure.get("type") == "NON-STRICT"
    assert strict.get("failures") == "3"


def test_the_client_log_is_in_system_out_even_when_hostile(tmp_path: Path) -> None:
    suite = written(tmp_path, sample_report()).find("testsuite")
    assert suite is not None
    out = by_name(suite)["1.1"].findtext("system-out")
    assert out == shown(client_log_text("1.1", "discord.py 2.7.1"))
    # The hostile name survives as text.
    name = by_name(suite)["3.2"].get("name") or ""
    assert '<script>alert("x")</script>' in name


def test_a_missing_log_is_said_not_fatal(tmp_path: Path) -> None:
    data = sample_report()
    write_reports(data, tmp_path)  # no logs written
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    out = by_name(suite)["1.1"].findtext("system-out") or ""
    assert out.startswith("client output: cases/1.1/client.log: cannot read it")


def test_merged_one_suite_per_agent_and_missing_is_skipped(tmp_path: Path) -> None:
    a = sample_report("discord.py 2.7.1")
    b = report(
        "hikari 2.1",
        [case("1.1", "connect and IDENTIFY", "FAIL", group_title="CONNECT AND IDENTIFY")],
    )
    for name, data in (("a", a), ("b", b)):
        write_logs(tmp_path / name, data)
        write_reports(data, tmp_path / name)
    write_merged(merge_reports([tmp_path / "a", tmp_path / "b"]), tmp_path / "out")
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["discord.py 2.7.1", "hikari 2.1"]
    hikari = by_name(suites[1])
    assert len(hikari) == 7
    assert hikari["1.1"].find("failure") is not None
    skipped = [i for i, tc in hikari.items() if tc.find("skipped") is not None]
    assert sorted(skipped) == ["2.1", "2.3", "2.4", "3.10", "3.2", "9.1"]
    assert suites[1].get("skipped") == "6"
    assert root.get("tests") == "14"
    assert root.get("failures") == "3"


def test_same_input_same_bytes(tmp_path: Path) -> None:
    data = parse_report(sample_report())
    first = junit_xml([Suite(data, tmp_path)])
    assert junit_xml([Suite(parse_report(sample_report()), tmp_path)]) == first
    assert first.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<testsuites")


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(agent=any_text, title=any_text, observed=any_text, log=any_text)
def test_any_strings_give_a_junit_xml_that_parses_back_to_them(
    tmp_path: Path, agent: str, title: str, observed: str, log: str
) -> None:
    data = report(agent, [case("1.1", title, "FAIL", group_title=title, observed=observed)])
    log_path = tmp_path / "cases" / "1.1" / "client.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(log.encode("utf-8", "surrogatepass"))
    root = ET.fromstring(junit_xml([Suite(parse_report(data), tmp_path)]))
    [suite] = root.findall("testsuite")
    [testcase] = suite.findall("testcase")
    failure = testcase.find("failure")
    assert failure is not None

    def seen(text: str) -> str:  # what an XML reader gives back: \r\n and \r as \n
        return xml_safe(text).replace("\r\n", "\n").replace("\r", "\n")

    assert suite.get("name") == xml_safe(agent)
    assert testcase.get("name") == xml_safe(f"1.1 {title}")
    assert failure.get("message") == xml_safe(
        f"expected: closes with a non-1000 code and RESUMEs at the resume URL; observed: {observed}"
    )
    logged = log.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert (testcase.findtext("system-out") or "") == seen(logged)


def test_a_long_log_is_its_end_with_a_note(tmp_path: Path) -> None:
    data = sample_report()
    write_logs(tmp_path, data, size_bytes=200 * 1024)
    write_reports(data, tmp_path)
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    out = by_name(suite)["1.1"].findtext("system-out") or ""
    assert re.match(
        r"client output: the last 6\d\.\d KiB of 200\.0 KiB shown; the whole log is cases/1\.1/client\.log\n\n",
        out,
    )
    assert out.endswith(shown(client_log_text("1.1", "discord.py 2.7.1")))
    assert "FIRST LINE" not in out
