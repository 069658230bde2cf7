"""index.html (the matrix of cases by agents) and one page per case and agent.

Self-contained: inline CSS, no script, no fonts or images from anywhere; the pages open
from the file system. A result has its colour and its word (never colour alone). Every
string from a report or a client's log goes through :func:`html.escape`: a client's log or
close reason is data, never markup. The same reports give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from urllib.parse import quote

from replayer.conform.reports.schema import (
    FAIL,
    INFO,
    MISSING,
    NON_STRICT,
    NOT_FIRED,
    PASS,
    RESULTS,
    Case,
    Report,
)
from replayer.conform.reports.text import ClientLog, broken_rules, xml_safe
from replayer.conform.reports.timeline import format_ms, legend_opcodes, timeline_svg

RESULT_MEANING = {
    PASS: "the client did what the docs require",
    NON_STRICT: "a SHOULD of the docs not met, or a documented timing exceeded",
    FAIL: "a MUST of the docs not met",
    NOT_FIRED: "the planned fault never happened: nothing was judged",
    INFO: "behaviour recorded, nothing judged",
    MISSING: "this agent did not run the case",
}

CSS = """\
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f23;
  margin: 1.5rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid #ddd; }
a { color: #0b57d0; }
.meta { color: #555; margin: 0 0 1rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #cfd4d9; padding: .25rem .5rem; text-align: left;
  vertical-align: top; }
thead th { background: #f6f8fa; }
table.matrix td.cell { text-align: center; font-weight: 600; white-space: nowrap;
  padding: 0; }
table.matrix td.cell a, table.matrix td.cell span { display: block; padding: .25rem .6rem;
  color: inherit; text-decoration: none; }
table.matrix td.cell a:hover, table.matrix td.cell a:focus { outline: 2px solid #1b1f23; }
table.matrix tr.group th { background: #e8ecef; font-size: 1rem; }
td.id { font-variant-numeric: tabular-nums; white-space: nowrap; }
.r-pass { background: #c8e6c9; color: #1b5e20; }
.r-non-strict { background: #fff59d; color: #594a00; }
.r-fail { background: #ffcdd2; color: #b71c1c; }
.r-not-fired { background: #e1bee7; color: #4a148c; }
.r-info { background: #bbdefb; color: #0d47a1; }
.r-missing { background: #f4f4f4; color: #6b6b6b; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: .25rem;
  font-weight: 600; white-space: nowrap; }
.broken { border-left: 4px solid #b71c1c; background: #fff5f5; padding: .5rem 1rem;
  margin: 1rem 0; }
.broken.non-strict { border-left-color: #a08900; background: #fffde7; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
pre { white-space: pre-wrap; word-break: break-word; }
pre.log { background: #101418; color: #e6e6e6; padding: .75rem; max-height: 36rem;
  overflow: auto; font-size: 12px; }
.note { color: #555; font-style: italic; }
figure.timeline { margin: 0; }
svg.timeline { border: 1px solid #dde1e4; background: #fff; max-width: 100%; }
svg.timeline text { font: 11px system-ui, sans-serif; fill: #37474f; paint-order: stroke;
  stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
table.verdicts { width: 100%; }
table.verdicts td { overflow-wrap: anywhere; }
svg.timeline text.close-label { font-weight: 700; fill: #263238; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem 1rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; vertical-align: -.1rem;
  margin-right: .3rem; border: 1px solid #0003; }
"""


def result_class(result: str) -> str:
    """``r-pass``, ``r-non-strict``, ``r-not-fired``, ...: the CSS class of a result."""
    return "r-" + re.sub(r"[^a-z]+", "-", result.lower())


def _e(text: object) -> str:
    """``text`` as HTML text or attribute value: escaped, control characters shown as
    ``\\xNN`` (a client's log has ANSI colours; HTML holds no NUL)."""
    return escape(xml_safe(str(text)), quote=True)


@dataclass(frozen=True)
class Column:
    """One agent of the matrix: its report and the slug naming its pages."""

    report: Report
    slug: str


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # Nothing from the network, whatever a report holds.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
            f"<title>{_e(title)}</title>",
            f"<style>\n{CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _badge(result: str) -> str:
    return (
        f'<span class="badge {result_class(result)}" title="{_e(RESULT_MEANING[result])}">'
        f"{_e(result)}</span>"
    )


def _legend() -> str:
    items = "".join(f"<li>{_badge(r)} {_e(RESULT_MEANING[r])}</li>" for r in RESULTS)
    return f'<ul class="legend results">{items}</ul>'


def index_html(columns: Sequence[Column], case_href: Callable[[Column, Case], str]) -> str:
    """The matrix: rows the cases of every column (grouped, in id order), a column per
    agent, each cell its result linking to ``case_href(column, case)``."""
    rows: dict[str, Case] = {}
    for column in columns:
        for case in column.report.cases:
            rows.setdefault(case.id, case)
    ordered = sorted(rows.values(), key=lambda c: c.sort_key)
    by_id = [{c.id: c for c in column.report.cases} for column in columns]
    tools = sorted({c.report.tool for c in columns if c.report.tool})
    body = [
        "<header>",
        "<h1>Discord gateway conformance</h1>",
        f'<p class="meta">{len(ordered)} cases \N{MULTIPLICATION SIGN} {len(columns)} '
        f"agent{'s' if len(columns) != 1 else ''}"
        + (f" · {_e(', '.join(tools))}" if tools else "")
        + " · results.json schema: docs/conformance/results-schema.md</p>",
        "</header>",
        "<h2>Summary</h2>",
        _summary(columns, len(ordered)),
        _legend(),
        "<h2>Cases</h2>",
        '<table class="matrix">',
        "<thead><tr><th>Case</th><th>Title</th>"
        + "".join(
            f'<th class="agent" data-agent="{_e(c.slug)}" scope="col">{_e(c.report.agent)}</th>'
            for c in columns
        )
        + "</tr></thead>",
        "<tbody>",
    ]
    group: tuple[int, str] | None = None
    for case in ordered:
        if (case.group, case.group_title) != group:
            group = (case.group, case.group_title)
            body.append(
                f'<tr class="group" id="group-{case.group}"><th colspan="{2 + len(columns)}">'
                f"{case.group} · {_e(case.group_title)}</th></tr>"
            )
        cells = []
        for column, cases in zip(columns, by_id, strict=True):
            ran = cases.get(case.id)
            result = MISSING if ran is None else ran.result
            attrs = (
                f'class="cell {result_class(result)}" data-agent="{_e(column.slug)}" '
                f'data-case="{_e(case.id)}" data-result="{_e(result)}"'
            )
            if ran is None:
                cells.append(f'<td {attrs}><span title="not run">{_e(result)}</span></td>')
            else:
                tip = f"{column.report.agent}: {ran.observed}" if ran.observed else ""
                cells.append(
                    f'<td {attrs}><a href="{_e(case_href(column, ran))}" title="{_e(tip)}">'
                    f"{_e(result)}</a></td>"
                )
        body.append(
            f'<tr class="case" data-case="{_e(case.id)}"><td class="id">{_e(case.id)}</td>'
            f"<td>{_e(case.title)}</td>{''.join(cells)}</tr>"
        )
    body += ["</tbody>", "</table>"]
    return _page("replayer conform: report", body)


def _summary(columns: Sequence[Column], n_cases: int) -> str:
    head = "".join(f"<th>{_badge(r)}</th>" for r in RESULTS)
    rows = []
    for column in columns:
        counts = column.report.counts()
        counts[MISSING] += n_cases - len(column.report.cases)
        report = column.report
        about = " · ".join(
            part
            for part in (
                report.started_at,
                format_ms(report.duration_ms) if report.duration_ms else "",
                "strict" if report.strict else "",
            )
            if part
        )
        rows.append(
            f'<tr data-agent="{_e(column.slug)}"><th scope="row">{_e(report.agent)}'
            f'<br><small class="meta">{_e(about)}</small></th>'
            + "".join(f"<td>{counts[r]}</td>" for r in RESULTS)
            + "</tr>"
        )
    return (
        f'<table class="summary"><thead><tr><th>Agent</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def case_html(
    column: Column,
    case: Case,
    *,
    index_href: str,
    log: ClientLog,
    log_href: str | None,
) -> str:
    """One case as one agent ran it."""
    report = column.report
    body = [
        f'<p><a href="{_e(index_href)}">← all cases</a></p>',
        f'<h1><span class="case-id">{_e(case.id)}</span> {_e(case.title)}</h1>',
        f'<p class="meta">{_badge(case.result)} {_e(report.agent)} · group {case.group} '
        f"{_e(case.group_title)}</p>",
    ]
    broken = broken_rules(case) if case.result in (FAIL, NOT_FIRED, NON_STRICT) else ()
    if broken:
        kind = "non-strict" if case.result == NON_STRICT else "fail"
        heading = (
            "The SHOULD the client did not meet"
            if case.result == NON_STRICT
            else "The rule the client broke"
            if case.result == FAIL
            else "What was never judged"
        )
        body.append(f'<section class="broken {kind}"><h2>{_e(heading)}</h2>')
        for v in broken:
            body.append(
                f"<p><strong>{_e(v.name)}</strong> ({_e(v.result or 'open')}) — "
                f"docs: <em>{_e(v.docs or case.docs)}</em></p>"
                f"<p>expected: {_e(v.expected)}<br>observed: {_e(v.observed)}</p>"
            )
        body.append("</section>")
    body += [
        '<dl class="facts">',
        _fact("Docs", case.docs),
        _fact("Archive served", case.archive),
        _fact("Time limit", f"{case.time_limit_s:g} s" if case.time_limit_s is not None else ""),
        _fact("Took", format_ms(case.duration_ms)),
        _fact("Client exit", _exit_text(case)),
        _fact("Rules judged", ", ".join(case.rules)),
        "</dl>",
        "<h2>Injected</h2>",
        _injected(case),
        "<h2>Expected and observed</h2>",
        '<table class="expect"><tbody>'
        f"<tr><th>expected</th><td>{_e(case.expected)}</td></tr>"
        f"<tr><th>observed</th><td>{_e(case.observed)}</td></tr>"
        "</tbody></table>",
        "<h2>Verdicts</h2>",
        _verdicts(case),
        "<h2>Timeline</h2>",
        *_timeline(case),
        "<h2>Client output</h2>",
        *_log(log, log_href),
    ]
    return _page(f"{case.id} {case.title} — {report.agent}", body)


def _fact(name: str, value: str) -> str:
    return f"<dt>{_e(name)}</dt><dd>{_e(value) if value else '—'}</dd>"


def _exit_text(case: Case) -> str:
    if case.exit is None:
        return ""
    parts = []
    if case.exit.code is not None:
        parts.append(f"code {case.exit.code}")
    if case.exit.signal is not None:
        parts.append(f"signal {case.exit.signal}")
    if case.exit.stopped_by:
        parts.append(f"stopped by the {case.exit.stopped_by}")
    return ", ".join(parts)


def _injected(case: Case) -> str:
    if not case.plan:
        return '<p class="note">nothing: no fault is planned in this case</p>'
    items = "".join(f"<li><code>{_e(fault)}</code></li>" for fault in case.plan)
    fired = case.timeline.faults if case.timeline else ()
    when = "".join(
        f"<li>{_e(format_ms(f.t_ms))}"
        + (f" on conn {f.conn}" if f.conn is not None else "")
        + f": <code>{_e(f.what)}</code></li>"
        for f in fired
    )
    text = f'<p>The plan (<code>--fault</code> syntax):</p><ul class="plan">{items}</ul>'
    if when:
        text += f'<p>Carried out:</p><ul class="fired">{when}</ul>'
    return text


def _verdicts(case: Case) -> str:
    if not case.verdicts:
        return '<p class="note">none: this case judges nothing</p>'
    rows = []
    for v in case.verdicts:
        result = v.result or "open"
        badge = _badge(v.result) if v.result else _e(result)
        notes = "".join(f"<br><small>{_e(n)}</small>" for n in v.notes)
        rows.append(
            f"<tr><td>{badge}</td><td>{_e(v.name)}</td><td>{_e(v.expected)}</td>"
            f"<td>{_e(v.observed)}{notes}</td><td>{_e(v.docs)}</td>"
            f"<td>{'' if v.connection is None else v.connection}</td>"
            f"<td>{_e(format_ms(v.t_fault_ms)) if v.t_fault_ms is not None else ''}</td>"
            f"<td>{_e(format_ms(v.reaction_ms)) if v.reaction_ms is not None else ''}</td></tr>"
        )
    return (
        '<table class="verdicts"><thead><tr><th>Result</th><th>Rule</th><th>Expected</th>'
        "<th>Observed</th><th>Docs</th><th>Conn</th><th>Fault at</th><th>Reaction after</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _timeline(case: Case) -> list[str]:
    timeline = case.timeline
    if timeline is None or not (timeline.connections or timeline.faults):
        return ['<p class="note">no timeline: the client never connected</p>']
    swatches = "".join(
        f'<li><span class="swatch" style="background:{colour}"></span>'
        f"{'' if op is None else f'{op} '}{_e(name)}</li>"
        for op, name, colour in legend_opcodes(timeline)
    )
    return [
        f'<figure class="timeline">{timeline_svg(timeline)}',
        "<figcaption>One lane per connection; frames from the server in a lane's upper "
        "half, from the client in its lower half, coloured by opcode; "
        '<span style="color:#c62828">▼</span> a fault injected, '
        '<span style="color:#1565c0">●</span> the client\'s reaction, '
        "a black bar the close with its code. Hover for details.</figcaption>",
        "</figure>",
        f'<ul class="legend opcodes">{swatches}</ul>',
        *_reactions(case),
    ]


def _reactions(case: Case) -> list[str]:
    if case.timeline is None or not case.timeline.reactions:
        return []
    items = "".join(
        f"<li>{_e(format_ms(r.t_ms))}"
        + (f" on conn {r.conn}" if r.conn is not None else "")
        + f": {_e(r.what)}</li>"
        for r in sorted(case.timeline.reactions, key=lambda r: r.t_ms)
    )
    return [f'<p>The client\'s reactions:</p><ul class="reactions">{items}</ul>']


def _log(log: ClientLog, log_href: str | None) -> list[str]:
    parts = []
    if log.note:
        note = _e(log.note)
        if log.truncated and log_href:
            note += f' (<a href="{_e(log_href)}">the whole log</a>)'
        parts.append(f'<p class="note">{note}</p>')
    if log.text:
        parts.append(f'<pre class="log">{_e(log.text)}</pre>')
    elif not log.note:
        parts.append('<p class="note">the client printed nothing</p>')
    return parts


def relative_href(path: Path) -> str:
    """A relative link to ``path`` (a POSIX relative path), each part percent-escaped."""
    return "/".join(quote(part) for part in path.parts)
