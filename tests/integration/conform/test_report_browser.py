"""The HTML report in a real headless Chromium (Debian's, driven by Playwright): opened
from the file system it loads without a console error, a page error, a dialog or a
request leaving the directory; the matrix has one cell per case and agent with its word
and its colour; a click opens the case page, whose timeline has a lane per connection and
shows the close codes.

``./dev test`` installs /usr/bin/chromium (apt-get) where it is missing and it can."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from replayer.conform.reports import merge_reports, write_merged, write_reports
from tests.report_factory import HOSTILE, case, report, sample_report, shown, write_logs

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: `./dev test` installs it (apt-get install -y chromium) "
    "when it runs as root with apt-get; elsewhere install Debian's chromium",
)

# getComputedStyle's background of each result's cell (html.py's CSS).
BACKGROUNDS = {
    "PASS": "rgb(200, 230, 201)",
    "NON-STRICT": "rgb(255, 245, 157)",
    "FAIL": "rgb(255, 205, 210)",
    "NOT FIRED": "rgb(225, 190, 231)",
    "INFO": "rgb(187, 222, 251)",
    "MISSING": "rgb(244, 244, 244)",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """What a page did that it must not: console errors, page errors, dialogs, requests
    for anything but a file."""

    page: Page
    problems: list[str] = field(default_factory=list)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context()
    page = context.new_page()
    seen = Watched(page)
    page.on(
        "console",
        lambda m: (
            seen.problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: seen.problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: seen.problems.append(f"dialog: {d.message}"))
    page.on(
        "request",
        lambda r: None if r.url.startswith("file://") else seen.problems.append(f"request {r.url}"),
    )
    yield seen
    context.close()


def merged_report(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """Two agents, the second running two cases only: the merged directory and each
    agent's results by case id (MISSING where it did not run one)."""
    a = sample_report("discord.py 2.7.1")
    b = report(
        "hikari 2.1",
        [
            case("1.1", "connect and IDENTIFY", "FAIL", group_title="CONNECT AND IDENTIFY"),
            case("4.1", "close 4000 " + HOSTILE, "PASS", group_title="CLOSE CODES"),
        ],
    )
    dirs = []
    for name, data in (("a", a), ("b", b)):
        write_logs(tmp_path / name, data)
        write_reports(data, tmp_path / name)
        dirs.append(tmp_path / name)
    write_merged(merge_reports(dirs), tmp_path / "out")
    ids = sorted({c["id"] for c in a["cases"] + b["cases"]})
    results = {}
    for slug, data in (("discord-py-2-7-1", a), ("hikari-2-1", b)):
        ran = {c["id"]: c["result"] for c in data["cases"]}
        results[slug] = {i: ran.get(i, "MISSING") for i in ids}
    return tmp_path / "out", results


def test_the_matrix_in_chromium(tmp_path: Path, watched: Watched) -> None:
    out, results = merged_report(tmp_path)
    page = watched.page
    page.goto((out / "index.html").as_uri())
    cells = page.locator("table.matrix td.cell")
    assert cells.count() == sum(len(r) for r in results.values()) == 16
    for i in range(cells.count()):
        cell = cells.nth(i)
        agent = cell.get_attribute("data-agent") or ""
        case_id = cell.get_attribute("data-case") or ""
        result = results[agent][case_id]
        assert cell.inner_text().strip() == result, (agent, case_id)
        assert cell.get_attribute("class") == f"cell r-{result.lower().replace(' ', '-')}"
        assert cell.evaluate("c => getComputedStyle(c).backgroundColor") == BACKGROUNDS[result]
        assert cell.locator("a").count() == (0 if result == "MISSING" else 1)
    assert page.locator("tr.group th").all_inner_texts() == [
        "1 · CONNECT AND IDENTIFY",
        "2 · HEARTBEAT",
        "3 · RECONNECT",
        "4 · CLOSE CODES",
        "9 · RECORDED",
    ]
    # A hostile title is text in its row, not markup.
    assert page.locator("script, img").count() == 0
    assert (
        page.locator('tr.case[data-case="4.1"] td').nth(1).inner_text()
        == "close 4000 " + shown(HOSTILE).strip()
    )
    assert watched.problems == []


def test_a_click_opens_the_case_page_with_its_timeline(tmp_path: Path, watched: Watched) -> None:
    out, _results = merged_report(tmp_path)
    page = watched.page
    page.goto((out / "index.html").as_uri())
    page.locator('td.cell[data-agent="discord-py-2-7-1"][data-case="3.2"] a').click()
    page.wait_for_url("**/cases/discord-py-2-7-1/3.2.html")
    assert (
        page.locator("h1").inner_text().startswith("3.2 op 7 RECONNECT instead of HELLO <script>")
    )
    assert "The rule the client broke" in page.locator("section.broken").inner_text()
    lanes = page.locator("svg.timeline g.lane")
    assert lanes.count() == 2
    assert [lanes.nth(i).get_attribute("data-conn") for i in range(2)] == ["1", "2"]
    assert page.locator("svg.timeline text.close-label").all_text_contents() == [
        "4999 by client",
        "1000 by server",
    ]
    # The SVG is drawn: the lanes have a size on the page.
    box = lanes.nth(1).bounding_box()
    assert box is not None
    assert box["width"] > 100
    assert box["height"] > 20
    assert (
        page.locator("pre.log").inner_text().startswith("[discord.py 2.7.1] case 3.2: connecting")
    )
    assert page.locator("script, img").count() == 0
    # Back to the matrix by its link.
    page.locator("a", has_text="all cases").click()
    page.wait_for_url("**/out/index.html")
    assert watched.problems == []


def test_a_single_run_report_in_chromium(tmp_path: Path, watched: Watched) -> None:
    data = sample_report()
    write_logs(tmp_path, data, size_bytes=100 * 1024)
    write_reports(data, tmp_path)
    page = watched.page
    page.goto((tmp_path / "index.html").as_uri())
    assert page.locator("td.cell").count() == len(data["cases"])
    page.locator('td.cell[data-case="3.10"] a').click()
    page.wait_for_url("**/cases/3.10.html")
    assert page.locator("svg.timeline g.lane").count() == 2
    assert page.locator("svg.timeline g.fault").count() == 1
    assert page.locator("svg.timeline g.reaction").count() == 1
    note = page.locator("p.note", has_text="the whole log")
    assert note.count() == 1
    note.locator("a").click()
    page.wait_for_url("**/cases/3.10/client.log")
    assert watched.problems == []


def test_the_watch_sees_what_a_bad_page_does(tmp_path: Path, watched: Watched) -> None:
    """What the tests above assert away shows up here: a script error, a console error and
    a request to the network."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><title>bad</title><img src='http://127.0.0.1:9/x.png'>"
        "<script>console.error('boom'); undefinedThing();</script>",
        encoding="utf-8",
    )
    watched.page.goto(bad.as_uri())
    watched.page.wait_for_load_state("load")
    problems = "\n".join(watched.problems)
    assert "request http://127.0.0.1:9/x.png" in problems
    assert "console error: boom" in problems
    assert "page error: " in problems
    assert "undefinedThing is not defined" in problems
