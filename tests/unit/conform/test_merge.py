"""Merging runs: several report directories become one matrix of cases by agents, a case
an agent did not run being MISSING; a bad directory is one line naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replayer.conform.reports import (
    ReportError,
    agent_slug,
    merge_reports,
    unique_slugs,
    write_merged,
    write_reports,
)
from tests.report_factory import case, client_log_text, report, sample_report, shown, write_logs
from tests.unit.conform.html_parse import parse_page


def two_runs(tmp_path: Path) -> list[Path]:
    a = sample_report("discord.py 2.7.1")
    b = report(
        "hikari 2.1",
        [
            case("1.1", "connect and IDENTIFY", "FAIL", group_title="CONNECT AND IDENTIFY"),
            case("4.1", "close 4000", "PASS", group_title="CLOSE CODES"),
        ],
    )
    dirs = []
    for name, data in (("a", a), ("b", b)):
        write_logs(tmp_path / name, data)
        write_reports(data, tmp_path / name)
        dirs.append(tmp_path / name)
    return dirs


def test_merge_reads_each_run_in_order(tmp_path: Path) -> None:
    reports = merge_reports(two_runs(tmp_path))
    assert [r["agent"] for r in reports] == ["discord.py 2.7.1", "hikari 2.1"]
    assert [r["report_dir"] for r in reports] == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_the_matrix_is_every_case_by_every_agent_missing_where_not_run(tmp_path: Path) -> None:
    write_merged(merge_reports(two_runs(tmp_path)), tmp_path / "out")
    page = parse_page((tmp_path / "out" / "index.html").read_text(encoding="utf-8"))
    cells = {(c["data-case"], c["data-agent"]): c for c in page.cells}
    ids = ["1.1", "2.1", "2.3", "2.4", "3.2", "3.10", "4.1", "9.1"]
    assert sorted(cells) == sorted((i, a) for i in ids for a in ("discord-py-2-7-1", "hikari-2-1"))
    assert cells["4.1", "discord-py-2-7-1"]["data-result"] == "MISSING"
    assert cells["4.1", "discord-py-2-7-1"]["href"] is None
    assert cells["4.1", "hikari-2-1"]["href"] == "cases/hikari-2-1/4.1.html"
    assert cells["1.1", "hikari-2-1"]["text"] == "FAIL"
    missing = sorted(c for c in cells if cells[c]["data-result"] == "MISSING")
    assert missing == sorted(
        [("4.1", "discord-py-2-7-1")] + [(i, "hikari-2-1") for i in ids if i not in ("1.1", "4.1")]
    )
    assert page.group_headings == [
        "1 · CONNECT AND IDENTIFY",
        "2 · HEARTBEAT",
        "3 · RECONNECT",
        "4 · CLOSE CODES",
        "9 · RECORDED",
    ]
    # Every link leads to a page that is there.
    for cell in page.cells:
        if cell["href"] is not None:
            assert (tmp_path / "out" / cell["href"]).is_file()


def test_merged_case_pages_carry_their_logs_along(tmp_path: Path) -> None:
    write_merged(merge_reports(two_runs(tmp_path)), tmp_path / "out")
    log = tmp_path / "out" / "cases" / "hikari-2-1" / "4.1" / "client.log"
    assert log.read_text(encoding="utf-8") == client_log_text("4.1", "hikari 2.1")
    page = parse_page(
        (tmp_path / "out" / "cases" / "hikari-2-1" / "4.1.html").read_text(encoding="utf-8")
    )
    assert page.log == shown(client_log_text("4.1", "hikari 2.1"))
    assert page.links[0] == "../../index.html"


def test_the_same_agent_twice_gets_two_columns(tmp_path: Path) -> None:
    for name in ("a", "b"):
        data = sample_report("discord.py 2.7.1")
        write_reports(data, tmp_path / name)
    write_merged(merge_reports([tmp_path / "a", tmp_path / "b"]), tmp_path / "out")
    page = parse_page((tmp_path / "out" / "index.html").read_text(encoding="utf-8"))
    assert page.agents == ["discord.py 2.7.1", "discord.py 2.7.1"]
    assert {c["data-agent"] for c in page.cells} == {"discord-py-2-7-1", "discord-py-2-7-1-2"}
    assert (tmp_path / "out" / "cases" / "discord-py-2-7-1-2" / "3.2.html").is_file()


def test_slugs() -> None:
    assert agent_slug("discord.py 2.7.1") == "discord-py-2-7-1"
    assert agent_slug("../../etc") == "etc"
    assert agent_slug("<>") == "agent"
    assert unique_slugs(["a", "A", "a-2", "a"]) == ["a", "a-2", "a-2-2", "a-3"]


def test_a_bad_run_is_one_line_naming_the_file_and_field(tmp_path: Path) -> None:
    dirs = two_runs(tmp_path)
    results = dirs[1] / "results.json"
    data = json.loads(results.read_text(encoding="utf-8"))
    data["cases"][1]["timeline"]["connections"][0]["frames"][0]["t_ms"] = "soon"
    results.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ReportError) as caught:
        merge_reports(dirs)
    assert str(caught.value) == (
        f"{results}: field 'cases[1].timeline.connections[0].frames[0].t_ms': expected a number, got a string"
    )
    with pytest.raises(ReportError, match=r"^.*/nowhere/results.json: no such file"):
        merge_reports([dirs[0], tmp_path / "nowhere"])
    with pytest.raises(ReportError, match="no report directories to merge"):
        merge_reports([])


def test_merging_into_a_runs_own_directory_is_refused(tmp_path: Path) -> None:
    dirs = two_runs(tmp_path)
    before = (dirs[0] / "index.html").read_bytes()
    with pytest.raises(ReportError, match="would overwrite this run's own report"):
        write_merged(merge_reports(dirs), dirs[0])
    assert (dirs[0] / "index.html").read_bytes() == before


def test_a_log_path_out_of_the_run_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    data = report("evil", [case("1.1", "connect", "PASS", group_title="CONNECT")])
    data["cases"][0]["client_output"] = "../secret.txt"
    write_reports(data, tmp_path / "run")
    write_merged(merge_reports([tmp_path / "run"]), tmp_path / "out")
    for page in (
        tmp_path / "run" / "cases" / "1.1.html",
        tmp_path / "out" / "cases" / "evil" / "1.1.html",
    ):
        text = page.read_text(encoding="utf-8")
        assert "TOP SECRET" not in text
        assert "../secret.txt: outside the report directory" in text
    assert "TOP SECRET" not in (tmp_path / "run" / "junit.xml").read_text(encoding="utf-8")
