"""index.html and the case pages, read back with html.parser: the matrix has a cell per
case and agent with its result as word and class, each case page shows what the report
holds, the timeline has a lane per connection, nothing hostile turns into markup, nothing
comes from the network, and the same report gives the same bytes."""

from __future__ import annotations

import html
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.conform.reports import write_reports
from replayer.conform.reports.html import Column, case_html, index_html, result_class
from replayer.conform.reports.schema import parse_report
from replayer.conform.reports.text import ClientLog, xml_safe
from replayer.conform.reports.timeline import timeline_svg
from tests.report_factory import (
    HOSTILE,
    case,
    client_log_text,
    frame,
    reconnect_connections,
    report,
    sample_report,
    shown,
    write_logs,
)
from tests.unit.conform.html_parse import Page, parse_page


def written(tmp_path: Path, *, log_bytes: int | None = None) -> Path:
    data = sample_report()
    write_logs(tmp_path, data, size_bytes=log_bytes)
    write_reports(data, tmp_path)
    return tmp_path


def page(path: Path) -> Page:
    return parse_page(path.read_text(encoding="utf-8"))


def test_the_matrix_has_a_cell_per_case_with_word_class_and_link(tmp_path: Path) -> None:
    index = page(written(tmp_path) / "index.html")
    expected = {c["id"]: c["result"] for c in sample_report()["cases"]}
    assert [c["data-case"] for c in index.cells] == [
        "1.1",
        "2.1",
        "2.3",
        "2.4",
        "3.2",
        "3.10",
        "9.1",
    ]
    for cell in index.cells:
        result = expected[cell["data-case"] or ""]
        assert cell["text"] == result
        assert cell["data-result"] == result
        assert cell["class"] == f"cell {result_class(result)}"
        assert cell["href"] == f"cases/{cell['data-case']}.html"
        assert (tmp_path / (cell["href"] or "")).is_file()
    assert index.agents == ["discord.py 2.7.1"]
    assert index.group_headings == [
        "1 · CONNECT AND IDENTIFY",
        "2 · HEARTBEAT",
        "3 · RECONNECT",
        "9 · RECORDED",
    ]


def test_result_classes() -> None:
    assert [
        result_class(r) for r in ("PASS", "NON-STRICT", "FAIL", "NOT FIRED", "INFO", "MISSING")
    ] == [
        "r-pass",
        "r-non-strict",
        "r-fail",
        "r-not-fired",
        "r-info",
        "r-missing",
    ]


def test_a_failed_case_page_names_the_broken_rule_and_shows_everything(tmp_path: Path) -> None:
    case = page(written(tmp_path) / "cases" / "3.2.html")
    assert case.h1 == "3.2 op 7 RECONNECT instead of HELLO " + shown(HOSTILE)
    assert "The rule the client broke" in case.broken
    assert "reconnect-resumes (FAIL) — docs: Events > Gateway Events > Reconnect" in case.broken
    assert "expected: a new connection that RESUMEs the session" in case.broken
    assert "observed: IDENTIFY on conn 2 " + shown(HOSTILE) in case.broken
    for part in (
        "reconnect @hello",
        "small-bot.rpl",
        "a RESUME on a new connection",
        "a fresh IDENTIFY " + shown(HOSTILE),
        "code 0, stopped by the replayer",
    ):
        assert part in case.text
    assert case.links[0] == "../index.html"
    assert case.log == shown(client_log_text("3.2", "discord.py 2.7.1"))


def test_the_timeline_has_a_lane_per_connection_and_the_close_codes(tmp_path: Path) -> None:
    case = page(written(tmp_path) / "cases" / "3.2.html")
    assert case.lanes == ["1", "2"]
    assert case.close_codes == ["4999", "1000"]
    assert case.close_labels == ["4999 by client", "1000 by server"]
    assert case.tags.count("svg") == 1
    one = page(tmp_path / "cases" / "1.1.html")
    assert one.lanes == ["1"]
    assert one.close_codes == []


def test_frames_faults_and_reactions_are_drawn() -> None:
    report = parse_report(sample_report())
    case = next(c for c in report.cases if c.id == "3.2")
    assert case.timeline is not None
    svg = timeline_svg(case.timeline)
    frames = sum(len(c.frames) for c in case.timeline.connections)
    assert svg.count('<line class="frame"') == frames
    assert svg.count('<g class="fault">') == 2
    assert svg.count('<g class="reaction">') == 1
    # RECONNECT (op 7) has its colour, HELLO its own.
    assert svg.count('data-op="7" data-frames="1"') == 1
    assert re.search(r'data-op="7"[^>]*stroke="#e53935"', svg)
    assert re.search(r'data-op="10"[^>]*stroke="#00acc1"', svg)


def test_frames_on_one_pixel_are_one_tick_that_counts_them() -> None:
    data = sample_report()
    conn = data["cases"][0]["timeline"]["connections"][0]
    flood = [frame(100.0 + i * 0.001, "server", 0, f"EVENT_{i % 5}") for i in range(1000)]
    conn["frames"] = [*conn["frames"], *flood, frame(100.2, "client", 1)]
    case = parse_report(data).cases[0]
    assert case.timeline is not None
    svg = timeline_svg(case.timeline)
    assert svg.count('<line class="frame"') == 5 + 1 + 1
    assert 'data-op="0" data-frames="1000"' in svg
    assert (
        "100.0 ms to 101.0 ms · server · 1000 frames, op 0 DISPATCH (EVENT_0, EVENT_1, EVENT_2 and 2 more)"
        in svg
    )


def test_nothing_hostile_becomes_markup(tmp_path: Path) -> None:
    written(tmp_path)
    for path in [tmp_path / "index.html", *sorted((tmp_path / "cases").glob("*.html"))]:
        text = path.read_text(encoding="utf-8")
        parsed = parse_page(text)
        assert "script" not in parsed.tags, path
        assert "img" not in parsed.tags, path
        assert not [a for a in parsed.attributes if a[1].startswith("on")], path
        assert "<script" not in text, path
        assert "<img" not in text, path


def test_nothing_comes_from_the_network(tmp_path: Path) -> None:
    written(tmp_path)
    for path in [tmp_path / "index.html", *sorted((tmp_path / "cases").glob("*.html"))]:
        parsed = page(path)
        for tag, name, value in parsed.attributes:
            if name in ("href", "src", "xlink:href", "action"):
                assert value is not None
                assert not re.match(r"^[a-z]+:|^//", value), (path, tag, value)
        assert "url(" not in path.read_text(encoding="utf-8")
        assert "@import" not in path.read_text(encoding="utf-8")


def test_a_long_log_shows_its_end_with_a_note(tmp_path: Path) -> None:
    written(tmp_path, log_bytes=200 * 1024)
    case = page(tmp_path / "cases" / "1.1.html")
    assert case.log is not None
    assert case.log.endswith(shown(client_log_text("1.1", "discord.py 2.7.1")))
    assert "FIRST LINE" not in case.log
    assert len(case.log.encode()) <= 64 * 1024
    assert re.search(
        r"the last 6\d\.\d KiB of 200\.0 KiB shown \(the whole log\)",
        case.text,
    )
    assert "../cases/1.1/client.log" in case.links


def test_same_report_same_bytes(tmp_path: Path) -> None:
    first, second = written(tmp_path / "one"), written(tmp_path / "two")
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert len(names) == 3 + 2 * 7
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_crowded_reaction_labels_are_left_out_but_every_dot_and_tip_stays() -> None:
    data = sample_report()
    timeline = data["cases"][1]["timeline"]
    timeline["reactions"] = [
        {"t_ms": 825.0, "conn": 2, "what": "RESUME"},
        {"t_ms": 826.0, "conn": 2, "what": "close 4000"},
        {"t_ms": 826.0, "conn": 1, "what": "IDENTIFY"},
        {"t_ms": 2000.0, "conn": 2, "what": "RESUME again"},
    ]
    case = parse_report(data).cases[1]
    assert case.timeline is not None
    svg = timeline_svg(case.timeline)
    assert svg.count('<g class="reaction">') == 4
    labels = re.findall(r'<text [^>]*fill="#1565c0">([^<]*)</text>', svg)
    assert labels == ["RESUME", "IDENTIFY", "RESUME again"]
    assert "the client on conn 2: close 4000</title>" in svg


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(max_examples=100)
@given(agent=any_text, title=any_text, reason=any_text)
def test_any_strings_read_back_as_text_never_markup(agent: str, title: str, reason: str) -> None:
    data = report(
        agent,
        [
            case(
                "1.1",
                title,
                "PASS",
                group_title="G",
                connections=reconnect_connections(4000, reason),
            )
        ],
    )
    parsed = parse_report(data)
    column = Column(parsed, "a")
    index = parse_page(index_html([column], lambda _c, c: f"cases/{c.id}.html"))
    page_html = case_html(
        column,
        parsed.cases[0],
        index_href="../index.html",
        log=ClientLog("", 0, 0, ""),
        log_href=None,
    )
    page = parse_page(page_html)

    seen = xml_safe  # html.parser gives back the text, control characters shown as escapes
    assert "".join(index.agents) == seen(agent)
    assert page.h1 == seen(f"1.1 {title}")
    assert "script" not in index.tags
    assert "script" not in page.tags
    assert page.lanes == ["1", "2"]
    [tip] = re.findall(r'<g class="close" data-code="4000"><title>([^<]*)</title>', page_html)
    expected = "812.4 ms · close 4000 UNKNOWN_ERROR by the client"
    assert html.unescape(tip) == (f"{expected}: {seen(reason)}" if reason else expected)
