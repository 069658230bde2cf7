"""junit.xml: one ``<testsuite>`` per agent, one ``<testcase>`` per case, so CI dashboards
(GitLab, Jenkins, GitHub test reporters) show each case and, for a failure, expected vs
observed.

FAIL and NOT FIRED are ``<failure>``s; NON-STRICT passes with a note in ``<system-out>``
(a failure when the run was ``strict``); INFO passes; MISSING (a merged matrix: the agent
did not run the case) is ``<skipped>``. The client's log goes to ``<system-out>``.
ElementTree escapes; :func:`xml_safe` removes what XML cannot hold at all.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from replayer.conform.reports.schema import (
    FAIL,
    INFO,
    MISSING,
    NON_STRICT,
    NOT_FIRED,
    Case,
    Report,
)
from replayer.conform.reports.text import read_client_log, verdict_table, xml_safe

CLASSNAME_PREFIX = "replayer.conform."
# Dots would make dashboards nest the name; other odd characters read badly there.
_NOT_CLASSNAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Suite:
    """One agent's run as JUnit shows it: its report, where its logs are, and the cases
    of the matrix it did not run (MISSING)."""

    report: Report
    report_dir: Path
    missing: tuple[Case, ...] = ()


def classname(case: Case) -> str:
    """``replayer.conform.<group title>``, the title's spaces and dots as ``_``."""
    title = _NOT_CLASSNAME.sub("_", case.group_title).strip("_") or f"group{case.group}"
    return CLASSNAME_PREFIX + title


def failure_message(case: Case) -> str:
    return f"expected: {case.expected}; observed: {case.observed}"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3f}"


def _failed(case: Case, strict: bool) -> bool:
    return case.result in (FAIL, NOT_FIRED) or (strict and case.result == NON_STRICT)


def _text(value: str) -> str:
    return xml_safe(value)


def junit_xml(suites: Sequence[Suite]) -> bytes:
    """The junit.xml document for ``suites`` (UTF-8, with its XML declaration)."""
    root = ET.Element("testsuites", {"name": "replayer conform"})
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    total_ms = 0.0
    for suite in suites:
        element = _suite(suite)
        root.append(element)
        for key in totals:
            totals[key] += int(element.get(key, "0"))
        total_ms += suite.report.duration_ms
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("skipped", str(totals["skipped"]))
    root.set("time", _seconds(total_ms))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _suite(suite: Suite) -> ET.Element:
    report = suite.report
    missing_ids = {c.id for c in suite.missing}
    cases = sorted((*report.cases, *suite.missing), key=lambda c: c.sort_key)
    failures = sum(1 for c in report.cases if _failed(c, report.strict))
    element = ET.Element(
        "testsuite",
        {
            "name": _text(report.agent),
            "tests": str(len(cases)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(len(missing_ids)),
            "time": _seconds(report.duration_ms),
        },
    )
    if report.started_at:
        element.set("timestamp", _text(report.started_at))
    properties = ET.SubElement(element, "properties")
    for name, value in (
        ("tool", report.tool),
        ("client", report.client_name),
        ("command", " ".join(report.client_command)),
        ("strict", "true" if report.strict else "false"),
    ):
        if value:
            ET.SubElement(properties, "property", {"name": name, "value": _text(value)})
    for case in cases:
        _testcase(element, suite, case, missing=case.id in missing_ids)
    return element


def _testcase(parent: ET.Element, suite: Suite, case: Case, *, missing: bool) -> None:
    testcase = ET.SubElement(
        parent,
        "testcase",
        {
            "classname": classname(case),
            "name": _text(f"{case.id} {case.title}"),
            "time": _seconds(0 if missing else case.duration_ms),
        },
    )
    if missing:
        ET.SubElement(testcase, "skipped", {"message": f"{MISSING}: not run by this agent"})
        return
    notes = []
    if _failed(case, suite.report.strict):
        failure = ET.SubElement(
            testcase, "failure", {"message": _text(failure_message(case)), "type": case.result}
        )
        failure.text = _text(verdict_table(case.verdicts))
    elif case.result == NON_STRICT:
        notes.append(
            f"NON-STRICT (a pass unless strict): {failure_message(case)}\n"
            + verdict_table(case.verdicts)
        )
    elif case.result == INFO:
        notes.append(f"INFO (records behaviour, judges nothing): {case.observed}")
    log = read_client_log(suite.report_dir, case)
    if log.note:
        whole = f"; the whole log is {case.client_output}" if log.truncated else ""
        notes.append(f"client output: {log.note}{whole}")
    if log.text:
        notes.append(log.text)
    if notes:
        ET.SubElement(testcase, "system-out").text = _text("\n\n".join(notes))
