"""The conformance report writers: results.json, junit.xml, index.html and a page per
case, for one run (:func:`write_reports`) or several merged into one matrix of cases by
agents (:func:`merge_reports`, :func:`write_merged`).

A run's directory::

    results.json          the report (docs/conformance/results-schema.md)
    junit.xml             one <testsuite>, one <testcase> per case
    index.html            the matrix (one column)
    cases/<id>.html       one page per case
    cases/<id>/client.log the client's output (written by the runner)

A merged directory has ``index.html``, ``junit.xml`` (a ``<testsuite>`` per agent) and
``cases/<agent>/<id>.html`` with each client log copied next to its page
(``cases/<agent>/<id>/client.log``), so it can be published on its own.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from replayer.conform.reports.html import Column, case_html, index_html, relative_href
from replayer.conform.reports.junit import Suite, junit_xml
from replayer.conform.reports.schema import (
    Case,
    Report,
    ReportError,
    dump_json,
    parse_report,
    read_report,
)
from replayer.conform.reports.text import read_client_log

__all__ = ["ReportError", "merge_reports", "write_merged", "write_reports"]

RESULTS_FILE = "results.json"
# merge_reports adds this key to each report it returns: the directory its logs are in.
REPORT_DIR_KEY = "report_dir"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A lone surrogate (JSON allows "\ud800") is written as its escape, not refused.
    path.write_text(text, encoding="utf-8", errors="backslashreplace", newline="\n")


def write_reports(report: Mapping[str, Any], out_dir: Path) -> None:
    """Write one run's ``results.json``, ``junit.xml``, ``index.html`` and
    ``cases/<id>.html`` into ``out_dir`` (where the runner put the client logs)."""
    parsed = parse_report(report, path=str(out_dir / RESULTS_FILE))
    data = {k: v for k, v in report.items() if k != REPORT_DIR_KEY}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / RESULTS_FILE, dump_json(data))
    (out_dir / "junit.xml").write_bytes(junit_xml([Suite(parsed, out_dir)]))
    column = Column(parsed, agent_slug(parsed.agent))
    _write_text(
        out_dir / "index.html",
        index_html([column], lambda _column, case: relative_href(_case_page(case))),
    )
    for case in parsed.cases:
        log = read_client_log(out_dir, case)
        log_href = None
        if log.path is not None:
            log_href = relative_href(Path("..") / log.path.relative_to(out_dir.resolve()))
        page = case_html(column, case, index_href="../index.html", log=log, log_href=log_href)
        _write_text(out_dir / _case_page(case), page)


def _case_page(case: Case) -> Path:
    return Path("cases") / f"{case.id}.html"


def merge_reports(dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """The reports of several run directories, in order, each checked (a bad one is a
    :class:`ReportError` naming its file and field) and given ``report_dir``."""
    if not dirs:
        raise ReportError("no report directories to merge", path="--merge")
    reports = []
    for directory in dirs:
        _parsed, data = read_report(directory / RESULTS_FILE)
        reports.append({**data, REPORT_DIR_KEY: str(directory)})
    return reports


def _report_dir(report: Mapping[str, Any], i: int) -> Path:
    where = report.get(REPORT_DIR_KEY)
    if not isinstance(where, str):
        raise ReportError("no report_dir: give what merge_reports returned", path=f"reports[{i}]")
    return Path(where)


def write_merged(reports: Sequence[Mapping[str, Any]], out_dir: Path) -> None:
    """Write the matrix of every case of ``reports`` by their agents into ``out_dir``: a
    case an agent did not run is MISSING there."""
    runs: list[tuple[Report, Path]] = []
    for i, report in enumerate(reports):
        directory = _report_dir(report, i)
        runs.append((parse_report(report, path=str(directory / RESULTS_FILE)), directory))
    target = out_dir.resolve()
    for _run, directory in runs:
        if directory.resolve() == target:
            raise ReportError(
                "the merged report would overwrite this run's own report: choose another -o",
                path=str(directory),
            )
    slugs = unique_slugs([run.agent for run, _ in runs])
    columns = [Column(run, slug) for (run, _), slug in zip(runs, slugs, strict=True)]
    every: dict[str, Case] = {}
    for run, _ in runs:
        for case in run.cases:
            every.setdefault(case.id, case)
    suites = []
    for run, directory in runs:
        ran = {case.id for case in run.cases}
        missing = tuple(case for case_id, case in every.items() if case_id not in ran)
        suites.append(Suite(run, directory, missing))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "junit.xml").write_bytes(junit_xml(suites))
    _write_text(
        out_dir / "index.html",
        index_html(columns, lambda column, case: relative_href(_merged_page(column.slug, case))),
    )
    for column, (run, directory) in zip(columns, runs, strict=True):
        for case in run.cases:
            page = _merged_page(column.slug, case)
            log = read_client_log(directory, case)
            log_href = None
            if log.path is not None:
                copy = page.with_suffix("") / "client.log"
                (out_dir / copy).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log.path, out_dir / copy)
                log_href = relative_href(Path(copy.parent.name) / copy.name)
            html = case_html(
                column, case, index_href="../../index.html", log=log, log_href=log_href
            )
            _write_text(out_dir / page, html)


def _merged_page(slug: str, case: Case) -> Path:
    return Path("cases") / slug / f"{case.id}.html"


def agent_slug(agent: str) -> str:
    """A file name for an agent: ``discord.py 2.7.1`` is ``discord-py-2-7-1``."""
    return re.sub(r"[^a-z0-9]+", "-", agent.lower()).strip("-")[:60].strip("-") or "agent"


def unique_slugs(agents: Sequence[str]) -> list[str]:
    """One slug per agent, ``-2``, ``-3`` ... after one already taken."""
    taken: set[str] = set()
    slugs = []
    for agent in agents:
        base = slug = agent_slug(agent)
        n = 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        slugs.append(slug)
    return slugs
